"""The fortnightly workload-pressures sheet: one A4 landscape page as of a day.

Per team: open cases, case-holding FTE, caseload per FTE against the thresholds, vacancy rate and
agency share; unallocated cases by case type with the longest wait in working days; overdue and
due-soon statutory work by process; referrals in the last 28 days against the same 28 days a year
earlier; drift (open cases with no recorded activity for the configured working days, by case type and
team, with the longest drift). All read from Prometheus on the day (snapshots and ``window="28d"``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from casewatch.packs.marks import Mark, fmt, mark_unallocated, mark_value, thresholds
from casewatch.packs.source import PrometheusSource, same_day_last_year

PROCESS_TITLES = {"referral_decision": "Referral decision (1 wd)", "assessment": "Assessment (45 wd)",
                  "icpc": "ICPC (15 wd)", "cp_review": "CP review", "lac_review_first": "First LAC review (20 wd)",
                  "lac_review": "LAC review", "statutory_visit": "Statutory visit"}
CASE_TYPE_TITLES = {"cp": "Child protection", "lac": "Looked after", "cin": "Child in need",
                    "care_leaver": "Care leaver"}
DRIFT_TITLES = {"cp": "CP plan", "lac": "Looked after", "cin": "Child in need"}


@dataclass
class WorkloadSheet:
    la: str
    as_of: date
    teams: list[dict]
    totals: dict
    unallocated: list[dict]
    unallocated_mark: Mark
    clocks: list[dict]
    referrals: dict
    drift: list[dict]
    missing: list[str]
    generated_at: str
    queries: int


def build(src: PrometheusSource, la: str, as_of: date) -> WorkloadSheet:
    limits = thresholds()
    sel = f'la="{la}"'
    open_cases = src.by(f"sum by (team) (casewatch_open_cases{{{sel}}})", as_of, "team")
    drift_team = src.by(f"sum by (team) (casewatch_drift_cases{{{sel}}})", as_of, "team")
    fte = {m: src.by(f'sum by (team) (casewatch_workforce_fte{{{sel}, measure="{m}"}})', as_of, "team")
           for m in ("case_holding", "inpost", "vacancy", "agency")}
    caseload = src.by(f"casewatch:caseload:ratio{{{sel}}}", as_of, "team")
    vacancy = src.by(f"casewatch:vacancy_rate:ratio{{{sel}}}", as_of, "team")
    agency = src.by(f"casewatch:agency_rate:ratio{{{sel}}}", as_of, "team")
    missing: list[str] = []
    if not src.has_data(la, as_of):
        missing.append(f"Prometheus holds no casewatch figure of {la} on {as_of:%d %B %Y}: is the engine "
                       f"caught up, or the history backfilled?")
    zero = 0.0 if src.has_data(la, as_of) else None   # an absent series on a day with figures is 0
    team_names = sorted(set(open_cases) | set(fte["case_holding"]) | set(fte["inpost"]))
    teams = []
    for team in team_names:
        teams.append({
            "team": team.replace("_", " "),
            "open_cases": fmt(open_cases.get(team, zero)),
            "drift": fmt(drift_team.get(team, zero)),
            "case_holding": fmt(fte["case_holding"].get(team), decimals=1),
            "caseload": fmt(caseload.get(team), decimals=1),
            "caseload_mark": mark_value(caseload.get(team), "caseload", False, limits),
            "inpost": fmt(fte["inpost"].get(team), decimals=1),
            "vacancy_fte": fmt(fte["vacancy"].get(team), decimals=1),
            "vacancy_rate": fmt(vacancy.get(team), percent=True),
            "vacancy_mark": mark_value(vacancy.get(team), "vacancy_rate", False, limits),
            "agency_rate": fmt(agency.get(team), percent=True)})
    if not team_names:
        missing.append(f"No team figures in Prometheus on {as_of:%d %B %Y} (open cases, workforce)")
    la_caseload = src.scalar(f"casewatch:caseload:ratio_la{{{sel}}}", as_of)
    la_vacancy = src.scalar(f"casewatch:vacancy_rate:ratio_la{{{sel}}}", as_of)
    totals = {"open_cases": fmt(sum(open_cases.values()) if open_cases else None),
              "drift": fmt(sum(drift_team.values()) if drift_team else zero),
              "case_holding": fmt(sum(fte["case_holding"].values()) if fte["case_holding"] else None, decimals=1),
              "caseload": fmt(la_caseload, decimals=1),
              "caseload_mark": mark_value(la_caseload, "caseload", False, limits),
              "inpost": fmt(sum(fte["inpost"].values()) if fte["inpost"] else None, decimals=1),
              "vacancy_fte": fmt(sum(fte["vacancy"].values()) if fte["vacancy"] else None, decimals=1),
              "vacancy_rate": fmt(la_vacancy, percent=True),
              "vacancy_mark": mark_value(la_vacancy, "vacancy_rate", False, limits),
              "agency_rate": fmt(src.scalar(f"casewatch:agency_rate:ratio_la{{{sel}}}", as_of), percent=True)}

    unalloc = src.by(f"sum by (case_type) (casewatch_unallocated_cases{{{sel}}})", as_of, "case_type")
    wait = src.by(f"max by (case_type) (casewatch_unallocated_max_workdays{{{sel}}})", as_of, "case_type")
    unallocated = [{"type": CASE_TYPE_TITLES[t], "count": fmt(unalloc.get(t, zero)),
                    "wait": fmt(wait.get(t)) if unalloc.get(t) else "–"}
                   for t in CASE_TYPE_TITLES]

    overdue = src.by(f"sum by (process) (casewatch_clocks_overdue{{{sel}}})", as_of, "process")
    due_soon = src.by(f"sum by (process) (casewatch_clocks_due_soon{{{sel}}})", as_of, "process")
    open_ = src.by(f"sum by (process) (casewatch_clocks_open{{{sel}}})", as_of, "process")
    worst = src.by(f"max by (process) (casewatch_clocks_max_overdue_workdays{{{sel}}})", as_of, "process")
    clocks = [{"process": title, "open": fmt(open_.get(p, zero)), "overdue": fmt(overdue.get(p, zero)),
               "due_soon": fmt(due_soon.get(p, zero)), "worst": fmt(worst.get(p, zero)),
               "flag": bool(overdue.get(p))}
              for p, title in PROCESS_TITLES.items()]

    drifting = src.by(f"sum by (case_type) (casewatch_drift_cases{{{sel}}})", as_of, "case_type")
    longest = src.by(f"max by (case_type) (casewatch_drift_max_workdays{{{sel}}})", as_of, "case_type")
    drift = [{"type": title, "limit": src.drift_limits[t], "count": fmt(drifting.get(t, zero)),
              "longest": fmt(longest.get(t)) if drifting.get(t) else "–"}
             for t, title in DRIFT_TITLES.items()]

    year_ago = same_day_last_year(as_of)
    now = src.scalar(f'sum(casewatch_referrals{{{sel}, window="28d"}})', as_of)
    then = src.scalar(f'sum(casewatch_referrals{{{sel}, window="28d"}})', year_ago)
    if now is None and zero is not None:
        now = 0.0
    if then is None and src.has_data(la, year_ago):
        then = 0.0
    if now is None:
        missing.append(f"No referral figures in Prometheus for the 28 days to {as_of:%d %B %Y}")
    if then is None:
        missing.append(f"No referral figures in Prometheus for the 28 days to {year_ago:%d %B %Y}")
    change = None
    if now is not None and then:
        change = f"{(now - then) / then * 100:+.0f}%".replace("-", "−")
    referrals = {"now": fmt(now), "then": fmt(then), "change": change or "–", "year_ago": year_ago}
    return WorkloadSheet(la, as_of, teams, totals, unallocated,
                         mark_unallocated(unalloc if zero is not None else None), clocks,
                         referrals, drift, missing,
                         datetime.now(timezone.utc).strftime("%d %B %Y %H:%M UTC"), len(src.log))
