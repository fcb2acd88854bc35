"""The casewatch Grafana boards, as code.

* Workload pressure — the fortnightly meeting board.
* Activity and performance — Inputs / Processes / Outputs, as in the Stockton cabinet template,
  each ratio against its national reference value; and its *published* variant with small-number
  suppression (counts 1–5 shown as "<6", percentages with a numerator or denominator under 6 hidden).
* Timeliness and overdue work — per statutory process: open clocks, overdue, due within 2 wd.
* Pipeline health — events/s, consumer lag, dead letters, age of newest event, workers up.
"""
from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, timeseries
from grafana_foundation_sdk.builders.dashboard import AnnotationQuery
from grafana_foundation_sdk.builders.prometheus import Dataquery

from dashboards.builder import (AMBER, BLUE, GREEN, NO_VALUE_COUNT, NO_VALUE_RATIO, NO_VALUE_SUPPRESSED, RED, Board,
                                PanelBuilder, bargauge_panel, custom_variable, query, query_variable, row,
                                stat_panel, suppressed_count_mapping, tag_annotation, timeseries_panel)
from dashboards.local_changes import ANNOTATION_TAG, load_local_changes, month_end_instants, three_months_expr
from dashboards.measures import RATIO_BY_NAME, RATIOS, SUPPRESS_BELOW, Ratio
from dashboards.thresholds import load_thresholds

UID_WORKLOAD = "casewatch-workload"
UID_ACTIVITY = "casewatch-activity"
UID_PUBLISHED = "casewatch-activity-published"
UID_TIMELINESS = "casewatch-timeliness"
UID_PIPELINE = "casewatch-pipeline"

SEL = 'la=~"$la", team=~"$team"'
LA = 'la=~"$la"'
WIN = 'window="$window"'

def var_la():
    return query_variable("la", "Local authority", "label_values(casewatch_cin_open, la)")


def var_team():
    return query_variable("team", "Team", 'label_values(casewatch_cin_open{la=~"$la"}, team)')


def var_window():
    return custom_variable("window", "Window", ("12m", "28d", "fytd", "month", "quarter"), default="12m")

# The suppression rule for published counts: 1..5 shown as "<6"; 0 stays 0 (DfE practice).
SUPPRESSED_COUNT = suppressed_count_mapping(SUPPRESS_BELOW)

PROCESS_TITLES = {
    "referral_decision": "Referral decision (1 working day)",
    "assessment": "Assessment (45 working days from referral)",
    "icpc": "ICPC (15 working days from the strategy discussion)",
    "cp_review": "CP review (3 months, then 6-monthly)",
    "lac_review_first": "First LAC review (20 working days)",
    "lac_review": "Later LAC reviews (3 months, then 6-monthly)",
    "statutory_visit": "LAC statutory visits",
    "care_proceedings": "Care proceedings (26 weeks from the application)",
}


CLOCKS = "When each clock starts, stops and is due: docs/definitions.md (Statutory clocks)."


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%".replace(".0%", "%")


def _reference_text(r: Ratio) -> str:
    if r.reference is None:
        return "No national reference value is published (docs/definitions.md)."
    shown = _percent(r.reference) if r.unit == "percentunit" else f"{r.reference:g}"
    return f"England 2025: {shown} (docs/definitions.md)."


def rag_steps(r: Ratio, thresholds: dict[str, float]) -> list[tuple[float | None, str]] | None:
    """Red/amber/green bands from the thresholds file (None when the measure has none)."""
    warn, page = thresholds.get(f"{r.name}_warn"), thresholds.get(f"{r.name}_page")
    if warn is None and page is None:
        return None
    if r.higher_is_better:
        steps: list[tuple[float | None, str]] = [(None, RED if page is not None else AMBER)]
        if page is not None:
            steps.append((page, AMBER))
        if warn is not None:
            steps.append((warn, GREEN))
        return steps
    steps = [(None, GREEN)]
    if warn is not None:
        steps.append((warn, AMBER))
    if page is not None:
        steps.append((page, RED))
    return steps


RATIO_NO_VALUE_TEXT = f"Shows {NO_VALUE_RATIO} when the denominator is 0."
# Two pipeline figures that are neither counts nor ratios.
NO_VALUE_NO_EVENTS = "no events"
NO_VALUE_UNKNOWN = "unknown"

COHORT_WIN = 'window=~"cohort_12m|cohort_quarter"'
COHORT_MATURITY = ("Cohort form: referrals received in the 12 months to 3 months ago (cohort_12m) and in the "
                   "latest calendar quarter that ended at least 3 months ago (cohort_quarter), each counted "
                   "with what has happened to them since; a cohort is shown only once it has matured 3 months.")


def _selector(r: Ratio, la_only: bool, window: str | None = WIN) -> str:
    parts = [LA if la_only else SEL]
    if r.cohort:
        parts.append(COHORT_WIN)
    elif "window" in r.numerator_by and window:
        parts.append(window)
    return "{" + ", ".join(parts) + "}"


def _extra_legend(r: Ratio) -> str:
    return "".join(f" {{{{{label}}}}}" for label in r.extra if label != "window") + (" {{window}}" if r.cohort else "")


def _reference_target(r: Ratio) -> list[Dataquery]:
    if r.reference is None:
        return []
    return [query(f"vector({r.reference:g})", legend="England 2025")]


def ratio_trend(r: Ratio, thresholds: dict[str, float], published: bool = False) -> timeseries.Panel:
    targets: list[Dataquery] = []
    if published:
        targets.append(query(f"{r.record('ratio_la_published')}{_selector(r, True)}",
                              legend="{{la}}" + _extra_legend(r)))
    else:
        if not r.la_only:  # (plans start in CP teams, referrals arrive in assessment teams: no team ratio)
            targets.append(query(f"{r.record('ratio')}{_selector(r, False)}",
                                  legend="{{team}}" + _extra_legend(r)))
        targets.append(query(f"{r.record('ratio_la')}{_selector(r, True)}",
                              legend="{{la}} whole authority" + _extra_legend(r)))
    targets += _reference_target(r)
    steps = rag_steps(r, thresholds)
    description = f"{r.indicator}: {r.title}. {_reference_text(r)}"
    if r.cohort:
        description += " " + COHORT_MATURITY
    if published:
        description += (f" Published view: hidden where the numerator or the denominator is under"
                        f" {SUPPRESS_BELOW} (shown as \"{NO_VALUE_SUPPRESSED}\").")
    else:
        description += f" {RATIO_NO_VALUE_TEXT}"
    return timeseries_panel(f"{r.indicator} {r.title}", targets, width=8, height=7, unit=r.unit,
                            no_value=NO_VALUE_SUPPRESSED if published else NO_VALUE_RATIO,
                            description=description, steps=steps, threshold_lines=steps is not None,
                            dashed_legends=("England 2025",) if r.reference is not None else (),
                            max_value=1 if r.unit == "percentunit" else None)


def ratio_stat(r: Ratio, thresholds: dict[str, float], window: str | None) -> stat.Panel:
    """The ratio for the selected teams, summed from the recorded numerator and denominator."""
    sel = _selector(r, False, window=f'window="{window}"' if window else None)
    den_sel = sel if "window" in r.by else "{" + SEL + "}"
    expr = (f"sum({r.record('numerator')}{sel}) / (sum({r.record('denominator')}{den_sel}) > 0)")
    title = f"{r.indicator} {r.title}" + (f" ({window})" if window else "")
    return stat_panel(title, [query(expr, legend=r.indicator)], width=4, height=5, no_value=NO_VALUE_RATIO,
                      unit=r.unit, decimals=1,
                      description=f"{r.title}. {_reference_text(r)} {RATIO_NO_VALUE_TEXT}",
                      steps=rag_steps(r, thresholds) or [(None, BLUE)])


# ---------------------------------------------------------------------------------------------
# Counts for the activity boards: (row, indicator, title, expression by grouping, kind)
# ---------------------------------------------------------------------------------------------
COUNTS = [
    ("Inputs", "I1", "Contacts", "casewatch_contacts", (), True, True),
    ("Inputs", "I3", "Referrals", "casewatch_referrals", (), True, True),
    ("Inputs", "I4", "Referrals by source", "casewatch_referrals", ("source_group",), True, True),
    ("Inputs", "I5", "Referrals not meeting the threshold (NFA) by referring agency", "casewatch_referrals_nfa",
     ("source_group",), True, True),
    ("Inputs", "I8", "Completed assessments by factor", "casewatch_assessment_factors", ("factor_family",), True, False),
    ("Inputs", "I9", "Early help (CAF/EHA) started by lead agency", "casewatch_early_help_started", ("source_group",), True, True),
    ("Processes", "P1", "Assessments completed", "casewatch_assessments_completed", (), True, True),
    ("Processes", "P5", "S47 enquiries started", "casewatch_s47_started", (), True, True),
    ("Processes", "P7", "ICPCs held", "casewatch_icpcs", (), True, True),
    ("Processes", "P14", "Care applications issued", "casewatch_care_applications", (), True, True),
    ("Processes", "P16", "Workforce FTE", "casewatch_workforce_fte", ("measure",), False, True),
    ("Outputs", "O1", "Children in need (open episodes)", "casewatch_cin_open", (), False, True),
    ("Outputs", "O2", "CP plans open by category", "casewatch_cp_plans_open", ("category",), False, True),
    ("Outputs", "O3", "CP plans started", "casewatch_cp_plans_started", (), True, True),
    ("Outputs", "O3", "CP plans ended", "casewatch_cp_plans_ended", (), True, True),
    ("Outputs", "O4", "Looked-after children", "casewatch_lac_open", (), False, True),
    ("Outputs", "O5", "LAC periods started", "casewatch_lac_started", (), True, True),
    ("Outputs", "O5", "LAC periods ended", "casewatch_lac_ceased", (), True, True),
    ("Outputs", "O15", "LAC ceased by outcome", "casewatch_lac_ceased_by_outcome", ("outcome_group",), True, True),
    ("Outputs", "O16", "Unallocated cases by case type", "casewatch_unallocated_cases", ("case_type",), False, True),
]


def count_panel(indicator: str, title: str, metric: str, split: tuple[str, ...], windowed: bool,
                has_team: bool, published: bool) -> stat.Panel | bargauge.Panel:
    parts = [LA if (published or not has_team) else SEL]
    if windowed:
        parts.append(WIN)
    selector = "{" + ", ".join(parts) + "}"
    by = ", ".join(split)
    expr = f"sum by ({by}) ({metric}{selector})" if split else f"sum({metric}{selector})"
    legend = "{{" + split[0] + "}}" if split else indicator
    description = f"{indicator}: {title} (docs/definitions.md)."
    if published:
        description += f" Published view: counts from 1 to {SUPPRESS_BELOW - 1} are shown as <{SUPPRESS_BELOW}."
    # A count with no series is 0 on the published board too: counts are suppressed by the mapping
    # (1-5 shown as <6), never dropped.
    make = bargauge_panel if split else stat_panel
    return make(f"{indicator} {title}", [query(expr, legend=legend)], no_value=NO_VALUE_COUNT,
                width=8 if split else 4, height=7 if split else 5, unit="none",
                decimals=1 if metric == "casewatch_workforce_fte" else 0, description=description,
                mappings=SUPPRESSED_COUNT if published else [])


# Dated local changes (dashboards/local_changes.yaml), pushed to Grafana as tagged annotations.
def local_changes_annotation() -> AnnotationQuery:
    return tag_annotation("Local changes", ANNOTATION_TAG, "purple")


def before_after_panels() -> list[bargauge.Panel]:
    """Referrals and NFA referrals by agency: the three calendar months before the month of the
    latest local change against the three months after it."""
    changes = load_local_changes()
    if not changes:
        return []
    latest = changes[-1]
    before, after = month_end_instants(latest)
    panels = []
    for metric, title in (("casewatch_referrals", "Referrals"),
                          ("casewatch_referrals_nfa", "Referrals not meeting the threshold")):
        panels.append(bargauge_panel(
            f"{title} by agency: 3 months before and after {latest.title} ({latest.date:%d %b %Y})",
            [query(three_months_expr(metric, LA, before), legend="{{source_group}} before"),
             query(three_months_expr(metric, LA, after), legend="{{source_group}} after")],
            width=12, height=9, unit="none", decimals=0, no_value=NO_VALUE_COUNT,
            description=f"The latest dated local change ({latest.la}, {latest.date.isoformat()}: {latest.title}). "
                        "Before = the three calendar months before the month of the change, after = the three "
                        "months after it (the month of the change is in neither); each month's figure is its "
                        "month-to-date count on its last day. Empty until Prometheus holds those months."))
    return panels


def activity_board(published: bool = False) -> Board:
    thresholds = load_thresholds()
    panels: list[PanelBuilder] = []
    for section in ("Inputs", "Processes", "Outputs"):
        panels.append(row(section))
        for r_section, indicator, title, metric, split, windowed, has_team in COUNTS:
            if r_section == section:
                panels.append(count_panel(indicator, title, metric, split, windowed, has_team, published))
        for r in RATIOS:
            if r.row == section:
                panels.append(ratio_trend(r, thresholds, published))
    if published:
        return Board(UID_PUBLISHED, "Activity and performance (published)",
                     "Inputs, processes and outputs for the whole authority with small-number "
                     f"suppression: counts 1-{SUPPRESS_BELOW - 1} show as <{SUPPRESS_BELOW}, "
                     f"percentages with a numerator or denominator under {SUPPRESS_BELOW} are hidden. "
                     "Use this view for anything shared beyond case-holding managers.",
                     panels, [var_la(), var_window()], tags=("casewatch", "published"),
                     folder="casewatch published", annotations=(local_changes_annotation(),))
    panels.append(row("Dated local changes"))
    panels.extend(before_after_panels())
    return Board(UID_ACTIVITY, "Activity and performance",
                 "Inputs (demand), processes (timeliness) and outputs (caseload profile and "
                 "outcomes), each ratio against its national reference value. Purple marks: dated local "
                 "changes (dashboards/local_changes.yaml).",
                 panels, [var_la(), var_team(), var_window()], annotations=(local_changes_annotation(),))


def workload_board() -> Board:
    t = load_thresholds()
    r = RATIO_BY_NAME
    count = NO_VALUE_COUNT
    panels: list[PanelBuilder] = [row("Demand")]
    for metric, title in (("casewatch_referrals", "Referrals"), ("casewatch_contacts", "Contacts")):
        current = f'sum({metric}{{{SEL}, window="28d"}})'
        panels.append(timeseries_panel(
            f"{title} in the last 28 days against the same period last year",
            [query(current, legend="this year"),
             query(f'sum({metric}{{{SEL}, window="28d"}} offset 52w)', legend="same period last year")],
            width=12, height=8, unit="none", no_value=count,
            description="Rolling 28-day count, and the same count 52 weeks earlier.",
            dashed_legends=("same period last year",)))
    for metric, title in (("casewatch_referrals", "Referrals"),
                          ("casewatch_referrals_nfa", "Referrals not meeting the threshold"),
                          ("casewatch_cp_plans_started", "CP plans started")):
        panels.append(timeseries_panel(
            f"{title} by calendar month and quarter",
            [query(f'sum({metric}{{{SEL}, window="month"}})', legend="month to date"),
             query(f'sum({metric}{{{SEL}, window="quarter"}})', legend="quarter to date")],
            width=8, height=7, unit="none", no_value=count,
            description="Counted by event date from the 1st of the month (quarter: 1 January, April, July "
                        "or October) to the day shown; the value on a month's or quarter's last day is that "
                        "period's figure."))
    panels.append(row("Open cases"))
    for metric, title, definition in (
            ("casewatch_cin_open", "Children in need", "O1: open CIN episodes"),
            ("casewatch_cp_plans_open", "CP plans", "O2: open child protection plans"),
            ("casewatch_lac_open", "Looked-after children", "O4: open periods of care"),
            ("casewatch_care_leavers", "Care leavers", "Care leavers, the denominator of O13 and O14")):
        panels.append(stat_panel(title, [query(f"sum({metric}{{{SEL}}})", legend=title)],
                                 width=4, height=5, unit="none", decimals=0, no_value=count,
                                 description=f"{definition} (docs/definitions.md)."))
    panels.append(timeseries_panel("Open cases over time", [
        query(f"sum({m}{{{SEL}}})", legend=lbl) for m, lbl in (
            ("casewatch_cin_open", "CIN"), ("casewatch_cp_plans_open", "CP"), ("casewatch_lac_open", "LAC"))
    ], width=8, height=5, unit="none", no_value=count))
    panels.append(row("Caseload and staffing"))
    caseload = r["caseload"]
    panels.append(bargauge_panel(
        "Caseload per case-holding FTE by team",
        [query(f"{caseload.record('ratio')}{{{SEL}}}", legend="{{team}}")],
        width=8, height=8, unit="short", decimals=1, steps=rag_steps(caseload, t), no_value=NO_VALUE_RATIO,
        description=f"O19: open cases / case-holding FTE. {_reference_text(caseload)} {RATIO_NO_VALUE_TEXT}"))
    panels.append(bargauge_panel(
        "Unallocated cases by case type",
        [query(f"sum by (case_type) (casewatch_unallocated_cases{{{SEL}}})", legend="{{case_type}}")],
        width=8, height=8, unit="none", decimals=0, steps=[(None, GREEN), (1, RED)], no_value=count,
        description="O16: open cases with no allocated social worker (held by a manager is not allocated; "
                    "docs/definitions.md)."))
    panels.append(bargauge_panel(
        "Longest unallocated (working days)",
        [query(f"max by (case_type) (casewatch_unallocated_max_workdays{{{SEL}}})", legend="{{case_type}}")],
        width=8, height=8, unit="none", decimals=0, steps=[(None, GREEN), (1, RED)], no_value=count,
        description="O16: working days the longest-unallocated open case of each type has waited."))
    panels.append(bargauge_panel(
        "Drift: open cases with no recorded activity, by team",
        [query(f"sum by (team, case_type) (casewatch_drift_cases{{{SEL}}})", legend="{{team}} {{case_type}}")],
        width=8, height=8, unit="none", decimals=0, steps=[(None, GREEN), (1, AMBER)], no_value=count,
        description="Open CIN, CP and LAC cases with no recorded activity for at least 20 (CIN), "
                    "10 (CP) or 20 (LAC) working days (configurable), counted under the child's "
                    "most intensive open case and the team of its latest event (docs/definitions.md, Drift)."))
    panels.append(bargauge_panel(
        "Longest drift (working days)",
        [query(f"max by (case_type) (casewatch_drift_max_workdays{{{SEL}}})", legend="{{case_type}}")],
        width=8, height=8, unit="none", decimals=0, steps=[(None, GREEN), (1, AMBER)], no_value=count,
        description="Working days since the last recorded activity of the longest-drifting case "
                    "(0 when no case drifts; docs/definitions.md, Drift)."))
    panels.append(ratio_stat(r["vacancy_rate"], t, None))
    panels.append(ratio_stat(r["agency_rate"], t, None))
    panels.append(bargauge_panel(
        "Vacant and agency FTE",
        [query(f'sum by (measure) (casewatch_workforce_fte{{{SEL}, measure=~"vacancy|agency|inpost"}})',
               legend="{{measure}}")],
        width=8, height=5, unit="none", decimals=1, no_value=count))
    panels.append(ratio_stat(r["turnover"], t, "12m"))
    panels.append(row("Timeliness"))
    for name, window in (("assessment_timeliness", "28d"), ("icpc_timeliness", "28d"),
                         ("referral_decision_timeliness", "28d"), ("cp_review_timeliness", "12m"),
                         ("lac_review_timeliness", "12m"), ("statutory_visit_timeliness", "28d"),
                         ("care_proceedings_timeliness", "12m")):
        panels.append(ratio_stat(r[name], t, window))
    panels.append(bargauge_panel(
        "Overdue statutory work",
        [query(f"sum by (process) (casewatch_clocks_overdue{{{SEL}}})", legend="{{process}}")],
        width=12, height=7, unit="none", decimals=0, steps=[(None, GREEN), (1, RED)], no_value=count,
        description=f"Open statutory clocks past their due date, by process. {CLOCKS}"))
    return Board(UID_WORKLOAD, "Workload pressure",
                 "The fortnightly workload meeting: demand against last year, open cases, caseload, "
                 "unallocated work, staffing and timeliness (red/amber/green from the alert thresholds). "
                 "Purple marks: dated local changes (dashboards/local_changes.yaml).",
                 panels, [var_la(), var_team()], time_from="now-1y", annotations=(local_changes_annotation(),))


def timeliness_board() -> Board:
    count = NO_VALUE_COUNT
    panels: list[PanelBuilder] = [row("Overdue now")]
    panels.append(bargauge_panel(
        "Overdue by process",
        [query(f"sum by (process) (casewatch_clocks_overdue{{{SEL}}})", legend="{{process}}")],
        width=12, height=7, unit="none", decimals=0, steps=[(None, GREEN), (1, RED)], no_value=count,
        description=f"Open statutory clocks past their due date. {CLOCKS}"))
    panels.append(bargauge_panel(
        "Due within 2 working days by process",
        [query(f"sum by (process) (casewatch_clocks_due_soon{{{SEL}}})", legend="{{process}}")],
        width=12, height=7, unit="none", decimals=0, steps=[(None, GREEN), (1, AMBER)], no_value=count,
        description=f"Open statutory clocks due today or within the next 2 working days. {CLOCKS}"))
    for process, title in PROCESS_TITLES.items():
        psel = f'{SEL}, process="{process}"'
        panels.append(row(title))
        panels.append(bargauge_panel(
            "Open by team", [query(f"sum by (team) (casewatch_clocks_open{{{psel}}})", legend="{{team}}")],
            width=6, height=6, unit="none", decimals=0, no_value=count,
            description=f"{title}: open clocks. {CLOCKS}"))
        panels.append(bargauge_panel(
            "Overdue by team", [query(f"sum by (team) (casewatch_clocks_overdue{{{psel}}})", legend="{{team}}")],
            width=6, height=6, unit="none", decimals=0, steps=[(None, GREEN), (1, RED)], no_value=count,
            description=f"{title}: open clocks past their due date. {CLOCKS}"))
        panels.append(bargauge_panel(
            "Due within 2 working days by team",
            [query(f"sum by (team) (casewatch_clocks_due_soon{{{psel}}})", legend="{{team}}")],
            width=6, height=6, unit="none", decimals=0, steps=[(None, GREEN), (1, AMBER)], no_value=count,
            description=f"{title}: open clocks due today or within the next 2 working days. {CLOCKS}"))
        panels.append(stat_panel(
            "Most overdue (working days past due)",
            [query(f"max(casewatch_clocks_max_overdue_workdays{{{psel}}})", legend="working days")],
            width=6, height=6, unit="none", decimals=0, steps=[(None, GREEN), (1, RED)], no_value=count,
            description=f"{title}: working days past the due date of the most overdue open clock. {CLOCKS}"))
    return Board(UID_TIMELINESS, "Timeliness and overdue work",
                 "Open statutory clocks per process and team: overdue now and due within the next 2 "
                 "working days (England working days).", panels, [var_la(), var_team()], time_from="now-7d")


def pipeline_board() -> Board:
    count = NO_VALUE_COUNT
    panels: list[PanelBuilder] = [
        row("Flow"),
        timeseries_panel("Events applied per second by type",
                         [query(f"sum by (event_type) (rate(casewatch_events_processed_total{{{LA}}}[5m]))",
                                legend="{{event_type}}")], width=12, height=8, unit="ops", no_value=count),
        timeseries_panel("Consumer lag by partition",
                         [query("sum by (partition) (casewatch_consumer_lag_messages)",
                                legend="partition {{partition}}")], width=12, height=8, unit="none", no_value=count),
        timeseries_panel("Dead-lettered events (15 min)",
                         [query("sum by (stage, reason) (increase(casewatch_events_dead_lettered_total[15m]))",
                                legend="{{stage}} {{reason}}")], width=8, height=7, unit="none", no_value=count),
        timeseries_panel("Ingest events by outcome (15 min)",
                         [query("sum by (outcome) (increase(casewatch_ingest_events_total[15m]))",
                                legend="{{outcome}}")], width=8, height=7, unit="none", no_value=count),
        timeseries_panel("Duplicate events ignored (15 min)",
                         [query("sum(increase(casewatch_events_duplicate_total[15m]))", legend="duplicates")],
                         width=8, height=7, unit="none", no_value=count),
        row("Health"),
        stat_panel("Age of the newest event",
                   [query("time() - max(casewatch_newest_event_timestamp_seconds)", legend="age")],
                   width=6, height=5, unit="s", decimals=0, steps=[(None, GREEN), (3600, AMBER), (7200, RED)],
                   no_value=NO_VALUE_NO_EVENTS,
                   description=f"Time since the newest event applied was recorded (docs/metrics.md; "
                               f"{NO_VALUE_NO_EVENTS} until the engine has applied one)."),
        stat_panel("Engine workers up",
                   [query('sum(up{job="casewatch-engine"})', legend="up")],
                   width=6, height=5, unit="none", decimals=0, steps=[(None, RED), (1, GREEN)], no_value=count),
        stat_panel("Assigned partitions",
                   [query("sum(casewatch_assigned_partitions)", legend="partitions")],
                   width=6, height=5, unit="none", decimals=0, no_value=count),
        stat_panel("Children tracked",
                   [query("sum(casewatch_children_tracked)", legend="children")],
                   width=6, height=5, unit="none", decimals=0, no_value=count),
        stat_panel("Bank-holiday calendar covers until",
                   [query("min(casewatch_calendar_covered_until_year)", legend="year")],
                   width=6, height=5, unit="none", decimals=0, no_value=NO_VALUE_UNKNOWN,
                   description=f"The last year the engine's bank-holiday calendar knows ({NO_VALUE_UNKNOWN} "
                               "until an engine worker reports it)."),
        timeseries_panel("Alert mails sent and failed (1 h)",
                         [query("sum by (outcome) (increase(casewatch_notifier_mails_total[1h]))",
                                legend="{{outcome}}")], width=12, height=5, unit="none", no_value=count),
    ]
    return Board(UID_PIPELINE, "Pipeline health",
                 "Is the casewatch pipeline keeping up: events applied, consumer lag, dead letters, "
                 "freshness, workers.", panels,
                 [query_variable("la", "Local authority", "label_values(casewatch_events_processed_total, la)")],
                 time_from="now-6h", refresh="30s")


def all_boards() -> list[Board]:
    return [workload_board(), activity_board(), activity_board(published=True), timeliness_board(),
            pipeline_board()]
