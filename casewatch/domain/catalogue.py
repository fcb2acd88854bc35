"""The one catalogue of casewatch's figures: every metric the engine exports (its kind and labels),
every indicator (id, title, metrics, definition, national reference with the year and publication it
comes from), and every alert threshold and board band (:data:`THRESHOLDS`, with where its number
comes from). docs/metrics.md, the engine's exposition, the recording rules and boards
(dashboards/measures.py) and the packs (casewatch/packs/catalogue.py) are checked against it by
tests/unit/domain/test_catalogue_agreement.py; none of them restates a metric name's labels or a national
reference. prometheus/rules/casewatch_thresholds.yml is generated from :data:`THRESHOLDS`
(``python -m casewatch.domain.catalogue > prometheus/rules/casewatch_thresholds.yml``), and
docs/definitions.md ("Alert thresholds and board bands") and the alert rules are checked against it.

Pure data: imports nothing of the project.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["P", "Indicator", "INDICATORS", "INDICATOR_BY_ID", "REFERENCE_SOURCES", "FLOW_METRICS",
           "STOCK_METRICS", "MAX_METRICS", "COHORT_METRICS", "INDICATOR_METRICS", "METRIC_LABELS",
           "EVENT_FIELD_LABELS", "metric_kind", "Threshold", "THRESHOLDS", "THRESHOLD_BY_NAME",
           "THRESHOLD_PREFIX", "threshold_text", "thresholds_rule_file"]

P = "casewatch_"

MAX_METRICS = frozenset({P + "unallocated_max_workdays", P + "clocks_max_overdue_workdays",
                         P + "drift_max_workdays"})

# Cohort figures (P4, O9): flows dated on the referral, published only in the matured cohort
# windows of casewatch.domain.aggregate (COHORT_WINDOWS), never in the ordinary windows.
COHORT_METRICS = frozenset({P + "cohort_referrals", P + "cohort_referrals_to_s47", P + "cohort_referrals_to_cp_plan"})

@dataclass(frozen=True)
class Indicator:
    id: str
    title: str
    metrics: tuple[str, ...]
    description: str
    national_reference: float | None = None  # a share 0-1, or a count/rate as stated in the description
    group: str = ""                          # inputs | processes | outputs


def _ind(group: str, id_: str, title: str, metrics: tuple[str, ...], description: str,
         ref: float | None = None) -> Indicator:
    return Indicator(id_, title, tuple(P + m for m in metrics), description, ref, group)


INDICATORS: tuple[Indicator, ...] = (
    _ind("inputs", "I1", "Contacts", ("contacts",), "Contacts received.", None),
    _ind("inputs", "I2", "Contact to referral conversion", ("contacts_to_referral", "contacts"),
         "Contacts with outcome CIN referral / contacts."),
    _ind("inputs", "I3", "Referrals", ("referrals",), "Referrals received (England 2025: 632,830).", 632830),
    _ind("inputs", "I4", "Referrals by source", ("referrals",), "Referrals by T1 source group."),
    _ind("inputs", "I5", "Referrals not meeting threshold", ("referrals_nfa", "referrals"),
         "Referrals marked ReferralNFA / referrals.", 0.065),
    _ind("inputs", "I5s", "Referrals not meeting threshold by referring agency", ("referrals_nfa", "referrals"),
         "Per T1 source group: NFA referrals from the group / referrals from the group (the share of "
         "each agency's referrals returned as not meeting the threshold)."),
    _ind("inputs", "I6", "Assessed, not in need", ("referrals_assessed_not_in_need", "referrals"),
         "CIN episodes closed RC8 or RC9 / referrals.", 0.308),
    _ind("inputs", "I7", "Re-referral rate", ("rereferrals", "referrals"),
         "Referrals with an earlier referral of the same child in the 12 months before / referrals.", 0.226),
    _ind("inputs", "I8", "Factors at assessment", ("assessment_factors", "assessments_completed"),
         "Completed assessments carrying each T4 factor family / completed assessments."),
    _ind("inputs", "I9", "Early help started by agency", ("early_help_started",),
         "Early-help episodes opened, by lead agency group."),
    _ind("inputs", "I10", "Contacts with active early help", ("contacts_early_help_active", "contacts"),
         "Contacts where the child had an open CAF/EHA / contacts."),
    _ind("inputs", "I11", "Contacts closed and logged", ("contacts_closed_and_logged", "contacts"),
         "Contacts closed with NFA or information and advice / contacts."),
    _ind("processes", "P1", "Assessments completed", ("assessments_completed",), "Completed assessments.", 648830),
    _ind("processes", "P2", "Assessment timeliness", ("assessments_completed_in_time", "assessments_completed"),
         "Completed within 45 working days of the referral / completed.", 0.857),
    _ind("processes", "P2b", "Assessments open over 45 working days", ("clocks_overdue",),
         "Open assessment clocks past their due date (process=assessment)."),
    _ind("processes", "P3", "Referral decision within 1 working day",
         ("referral_decisions_in_time", "referral_decisions"), "Referral outcomes within 1 working day / outcomes."),
    _ind("processes", "P4", "Referral to S47 rate (cohort)", ("cohort_referrals_to_s47", "cohort_referrals"),
         "Referrals whose CIN episode had an S47 enquiry / referrals, by referral date, in cohorts matured 3 "
         "months (windows cohort_12m, cohort_quarter). England 2025 36.4% is derived from counts, not "
         "cohort-linked.", 0.364),
    _ind("processes", "P5", "S47 enquiries", ("s47_started",), "S47 enquiries started.", 230590),
    _ind("processes", "P6", "S47 to ICPC rate", ("icpcs", "s47_started"), "ICPCs / S47 enquiries.", 0.313),
    _ind("processes", "P7", "ICPCs", ("icpcs",), "Initial child protection conferences (transfer-ins excluded).",
         72100),
    _ind("processes", "P8", "ICPC timeliness", ("icpcs_in_time", "icpcs"),
         "ICPCs within 15 working days of the last strategy discussion / ICPCs.", 0.814),
    _ind("processes", "P9", "ICPC to CP plan rate", ("icpcs_resulting_in_plan", "icpcs"),
         "ICPCs resulting in a CP plan / ICPCs.", 0.868),
    _ind("processes", "P10", "CP review timeliness", ("cp_reviews_completed_in_time", "cp_reviews_completed"),
         "CP reviews held by the due date (ICPC + 3 months, then + 6 months) / reviews held. "
         "Reference 94% is an old secondary figure (placeholder).", 0.94),
    _ind("processes", "P11", "Child participation", ("child_participation",),
         "ICPCs, CP reviews and LAC reviews with PN1-PN3 (attended) / those excluding PN0."),
    _ind("processes", "P12", "LAC review timeliness", ("lac_reviews_completed_in_time", "lac_reviews_completed"),
         "LAC reviews held by the due date (DECOM + 20 wd, then + 3 months, then + 6 months) / held."),
    _ind("processes", "P13", "LAC statutory visits on time",
         ("statutory_visits_completed_in_time", "statutory_visits_completed"),
         "Visits within the (simplified) reg 28 timescale / visits."),
    _ind("processes", "P14", "Care applications", ("care_applications",), "Court applications issued."),
    _ind("processes", "P14b", "Care proceedings within 26 weeks",
         ("care_proceedings_completed_in_time", "care_proceedings_completed"),
         "Care proceedings concluded (final order) within 26 weeks of the application / concluded; the live "
         "clock (process=care_proceedings) gives open, overdue and due-soon proceedings."),
    _ind("processes", "P15", "LAC legal status mix", ("lac_open",), "LAC by legal status group (V3/V4 excluded)."),
    _ind("processes", "P16", "Workforce composition", ("workforce_fte",),
         "In-post and agency FTE; agency rate = agency / (agency + in-post). England 2025 agency rate 13.0%.", 0.13),
    _ind("outputs", "O1", "CIN open", ("cin_open",), "Open CIN episodes incl. CP and LAC (England 31 Mar 2025).",
         402400),
    _ind("outputs", "O2", "CP plans open", ("cp_plans_open",), "Open CP plans by category.", 49420),
    _ind("outputs", "O3", "CP plans started / ended", ("cp_plans_started", "cp_plans_ended"),
         "CP plans started and ended (England 2025: 61,840 / 62,300)."),
    _ind("outputs", "O4", "LAC", ("lac_open",), "Children looked after, excluding V3/V4 short breaks.", 81770),
    _ind("outputs", "O5", "LAC starts / ceased", ("lac_started", "lac_ceased"),
         "Periods of care started / ceased (England 2025: 32,270 / 34,450)."),
    _ind("outputs", "O6", "Second or subsequent CP plan", ("cp_plans_started_subsequent", "cp_plans_started"),
         "CP plan starts with a previous plan at any time / starts.", 0.245),
    _ind("outputs", "O6b", "Second CP plan within 2 years of the last", ("cp_plans_started_within_2y", "cp_plans_started"),
         "CP plan starts whose child's previous plan ended no more than 2 years before / starts (a previous plan "
         "known only from previous_plans, with no end date in the data, does not count)."),
    _ind("outputs", "O7", "CP plans ended lasting 2+ years", ("cp_plans_ended_2y_plus", "cp_plans_ended"),
         "Plans ending in window that lasted at least 2 years / plans ending.", 0.044),
    _ind("outputs", "O7b", "CP plans open 2+ years", ("cp_plans_open_2y_plus", "cp_plans_open"),
         "Open plans at least 2 years old / open plans.", 0.023),
    _ind("outputs", "O8", "CP plan end routes", ("cp_plans_ended_by_route", "cp_plans_ended"),
         "Plans ended by route (step-down to CIN plan / early help ...) / plans ended."),
    _ind("outputs", "O9", "Conversion rate (cohort form)", ("cohort_referrals_to_cp_plan", "cohort_referrals"),
         "Referrals whose CIN episode reached a CP plan / referrals, by referral date, in cohorts matured 3 "
         "months (windows cohort_12m, cohort_quarter). England about 9.8% (derived from counts, not "
         "cohort-linked).", 0.098),
    _ind("outputs", "O9s", "Conversion rate (simple form)", ("cp_plans_started", "referrals"),
         "CP plans started / referrals in the same window (the form Cabinet reports quote; not the same "
         "children).", 0.098),
    _ind("outputs", "O10", "LAC short-term instability", ("lac_3plus_placements_12m", "lac_open"),
         "LAC with 3+ placements in the previous 12 months / LAC.", 0.10),
    _ind("outputs", "O10b", "LAC with 3+ placements over 2 years", ("lac_3plus_placements_24m", "lac_open"),
         "LAC with 3+ placements in the previous 24 months / LAC.", 0.23),
    _ind("outputs", "O11", "LAC long-term stability", ("lac_long_term_same_placement_2y", "lac_long_term_under16"),
         "Under-16s looked after continuously for 2.5 years or more who have been in the same placement for 2 "
         "years or more / under-16s looked after for 2.5 years or more.", 0.69),
    _ind("outputs", "O12", "LAC with 3+ social workers in 12 months", ("lac_3plus_social_workers_12m", "lac_open"),
         "LAC at the snapshot with 3 or more distinct allocated social workers in the previous 12 months / LAC.",
         0.27),
    _ind("outputs", "O13", "Care leavers in EET", ("care_leavers_eet", "care_leavers"),
         "Care leavers whose activity is F* or P* / care leavers in the age band (19-21: 54%).", 0.54),
    _ind("outputs", "O14", "Care leavers in suitable accommodation",
         ("care_leavers_suitable_accommodation", "care_leavers"),
         "Care leavers whose accommodation code ends in 1 / care leavers in the age band (19-21: 89%).", 0.89),
    _ind("outputs", "O15", "Permanence exits", ("lac_ceased_by_outcome",), "LAC ceased by outcome group."),
    _ind("outputs", "O16", "Unallocated cases", ("unallocated_cases", "unallocated_max_workdays"),
         "Open cases with no allocated worker, by case type (reference 0).", 0.0),
    _ind("outputs", "DRIFT", "Drift",
         ("drift_cases", "drift_max_workdays"),
         "Open CIN / CP / LAC cases with no recorded activity for at least N working days (CIN 20, CP 10, LAC 20 "
         "by default; CASEWATCH_DRIFT_WORKDAYS), by team and case type, and the longest drift in working days."),
    _ind("outputs", "O17", "Vacancy rate", ("workforce_fte",),
         "Vacant FTE / (vacant FTE + in-post FTE), latest snapshot per team.", 0.142),
    _ind("outputs", "O18", "Turnover", ("workforce_leavers_fte", "workforce_fte"),
         "Leavers FTE in 12 months / in-post FTE.", 0.118),
    _ind("outputs", "O19", "Caseload per case-holding FTE", ("open_cases", "workforce_fte"),
         "Open cases / case-holding FTE, by team (England 2025: 15.2).", 15.2),
    _ind("processes", "LIVE", "Live statutory clocks",
         ("clocks_open", "clocks_overdue", "clocks_due_soon", "clocks_max_overdue_workdays"),
         "Open timeliness clocks per process: open, past due, due within 2 working days, most overdue."),
)

FLOW_METRICS = frozenset({P + m for m in (
    "contacts", "contacts_to_referral", "contacts_early_help_active", "contacts_closed_and_logged", "referrals",
    "referrals_nfa", "referrals_assessed_not_in_need", "rereferrals", "assessment_factors", "early_help_started",
    "referral_decisions", "referral_decisions_in_time", "assessments_completed", "assessments_completed_in_time",
    "s47_started", "icpcs", "icpcs_in_time", "icpcs_resulting_in_plan", "cp_reviews_completed",
    "cp_reviews_completed_in_time", "lac_reviews_completed", "lac_reviews_completed_in_time",
    "statutory_visits_completed", "statutory_visits_completed_in_time", "child_participation",
    "care_applications", "cp_plans_started", "cp_plans_started_subsequent", "cp_plans_ended",
    "cp_plans_ended_2y_plus", "cp_plans_ended_by_route", "cp_plans_started_within_2y", "lac_started", "lac_ceased", "lac_ceased_by_outcome",
    "workforce_leavers_fte", "care_proceedings_completed", "care_proceedings_completed_in_time", "cohort_referrals", "cohort_referrals_to_s47", "cohort_referrals_to_cp_plan")})
STOCK_METRICS = frozenset({P + m for m in (
    "cin_open", "cp_plans_open", "cp_plans_open_2y_plus", "lac_open", "lac_3plus_placements_12m",
    "lac_3plus_placements_24m", "lac_long_term_under16", "lac_long_term_same_placement_2y",
    "lac_3plus_social_workers_12m", "care_leavers", "care_leavers_eet", "care_leavers_suitable_accommodation",
    "unallocated_cases", "unallocated_max_workdays", "drift_cases", "drift_max_workdays", "open_cases", "workforce_fte", "clocks_open",
    "clocks_overdue", "clocks_due_soon", "clocks_max_overdue_workdays")})


INDICATOR_BY_ID = {i.id: i for i in INDICATORS}

# Year and publication of each national reference (the values are the indicators' own, above).
REFERENCE_SOURCES = {
    "I3": "England 2025, DfE Children in need", "I5": "England 2025, DfE Children in need",
    "I6": "England 2025, DfE Children in need", "I7": "England 2025, DfE Children in need",
    "P1": "England 2025, DfE Children in need", "P2": "England 2025, derived from DfE Children in need",
    "P5": "England 2025, DfE Children in need", "P6": "England 2025, derived from DfE Children in need",
    "P7": "England 2025, DfE Children in need", "P8": "England 2025, derived from DfE Children in need",
    "P9": "England 2025, derived from DfE Children in need",
    "P10": "England 2014-15, secondary source (placeholder)",
    "P16": "England 2025, DfE Children's social work workforce",
    "O1": "England, 31 March 2025, DfE Children in need", "O2": "England, 31 March 2025, DfE Children in need",
    "O4": "England, 31 March 2025, DfE Children looked after",
    "O6": "England 2025, DfE Children in need", "O7": "England 2025, DfE Children in need",
    "O7b": "England, 31 March 2025, DfE Children in need",
    "O9s": "England 2025, derived from DfE Children in need",
    "O10": "England 2025, DfE Children looked after",
    "O11": "England 2025, DfE Children looked after (placement stability)",
    "O12": "England 2024, DfE Children looked after (social workers in the year)",
    "O13": "England 2025, ages 19-21, DfE Children looked after",
    "O14": "England 2025, ages 19-21, DfE Children looked after",
    "O16": "expectation", "O17": "England, 30 September 2025, DfE Children's social work workforce",
    "O18": "England 2025, DfE Children's social work workforce",
    "O19": "England 2025, DfE Children's social work workforce",
}

INDICATOR_METRICS = FLOW_METRICS | STOCK_METRICS

_FLOW_LABELS = ("la", "team", "window")
_STOCK_LABELS = ("la", "team")
# The labels a metric carries beyond la, team (and window for flows), as docs/metrics.md lists them.
_EXTRA_LABELS = {
    "referrals": ("source_group",), "referrals_nfa": ("source_group",), "early_help_started": ("source_group",),
    "assessment_factors": ("factor_family",), "child_participation": ("meeting", "attended"),
    "cp_plans_ended_by_route": ("end_route",), "lac_ceased_by_outcome": ("outcome_group",),
    "cp_plans_open": ("category",), "lac_open": ("legal_status_group",),
    "care_leavers": ("age_band",), "care_leavers_eet": ("age_band",),
    "care_leavers_suitable_accommodation": ("age_band",),
    "unallocated_cases": ("case_type",), "unallocated_max_workdays": ("case_type",),
    "drift_cases": ("case_type",), "drift_max_workdays": ("case_type",),
    "workforce_fte": ("measure",),
    "clocks_open": ("process",), "clocks_overdue": ("process",), "clocks_due_soon": ("process",),
    "clocks_max_overdue_workdays": ("process",),
}
_NO_TEAM = frozenset({P + "assessment_factors"})  # counted per LA only


def _metric_labels(metric: str) -> tuple[str, ...]:
    base = _FLOW_LABELS if metric in FLOW_METRICS else _STOCK_LABELS
    if metric in _NO_TEAM:
        base = tuple(label for label in base if label != "team")
    return base + _EXTRA_LABELS.get(metric[len(P):], ())


METRIC_LABELS: dict[str, tuple[str, ...]] = {m: _metric_labels(m) for m in sorted(INDICATOR_METRICS)}


def metric_kind(metric: str) -> str:
    """flow | cohort | stock | max (a stock combined across workers with max, not sum)."""
    if metric in COHORT_METRICS:
        return "cohort"
    if metric in FLOW_METRICS:
        return "flow"
    return "max" if metric in MAX_METRICS else "stock"


# Labels whose values come straight from event fields: the exposition publishes a value outside the
# allowed list as ``other``. The allowed values: the configured list (None) or the code list of that
# name in every collection year, plus the extra values the engine itself writes.
EVENT_FIELD_LABELS: dict[str, tuple[str | None, frozenset[str]]] = {
    "la": (None, frozenset()),
    "team": (None, frozenset()),
    "category": ("abuse_category", frozenset({"not_recorded"})),  # feeds without a category
    "end_route": ("cp_end_route", frozenset()),
    "case_type": ("case_type", frozenset()),
    "age_band": ("care_leaver_age_band", frozenset({"unknown"})),
}


# -- alert thresholds and board bands ------------------------------------------------------------
# Each is a constant series casewatch:threshold:<name> (prometheus/rules/casewatch_thresholds.yml,
# generated below): the alert rules compare against it and the boards and packs draw their
# red/amber/green bands from it. ``_warn`` is amber (a warning), ``_page`` red (pages the on-call
# manager). docs/definitions.md, "Alert thresholds and board bands", lists them with their basis.

THRESHOLD_PREFIX = "casewatch:threshold:"


@dataclass(frozen=True)
class Threshold:
    name: str            # the series is THRESHOLD_PREFIX + name
    value: float
    unit: str            # share (0-1) | count | working days | factor | seconds
    fires: str           # when the figure is "below" / "above" / "at or above" the value
    meaning: str         # what it bands or gates (the rule file's comment)
    basis: str           # where the number comes from
    indicator: str = ""  # the indicator (INDICATORS) whose figure it bands, if any


def _national(indicator_id: str) -> str:
    ref = INDICATOR_BY_ID[indicator_id].national_reference
    return f"{indicator_id} national reference {ref * 100:g}%"


_LOCAL = "a casewatch default: a local choice a council may change"

THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("min_denominator", 10, "count", "at or above",
              "Completions in the window a timeliness or rate alert needs (fewer is insufficient data)", _LOCAL),
    Threshold("assessment_timeliness_warn", 0.85, "share", "below",
              "P2 assessments within 45 working days of referral (28d)", f"just under the {_national('P2')}", "P2"),
    Threshold("assessment_timeliness_page", 0.75, "share", "below",
              "P2 assessments within 45 working days of referral (28d)", "10 points under the warning", "P2"),
    Threshold("icpc_timeliness_warn", 0.80, "share", "below",
              "P8 ICPCs within 15 working days of the strategy discussion (28d)", f"just under the {_national('P8')}",
              "P8"),
    Threshold("icpc_timeliness_page", 0.70, "share", "below",
              "P8 ICPCs within 15 working days of the strategy discussion (28d)", "10 points under the warning", "P8"),
    Threshold("cp_review_timeliness_warn", 0.95, "share", "below", "P10 CP reviews on time (12m)",
              f"around the {_national('P10')} (an old figure); most councils aim for 100%", "P10"),
    Threshold("lac_review_timeliness_warn", 0.95, "share", "below", "P12 LAC reviews on time (12m)",
              "no national figure; the local aim is about 100%", "P12"),
    Threshold("rereferral_warn", 0.25, "share", "above", "I7 re-referrals within 12 months (12m)",
              f"just over the {_national('I7')}", "I7"),
    Threshold("rereferral_page", 0.30, "share", "above", "I7 re-referrals within 12 months (12m)",
              "5 points over the warning", "I7"),
    Threshold("cp_plan_subsequent_warn", 0.27, "share", "above",
              "O6 second or subsequent CP plans (12m; board band, no alert)", f"just over the {_national('O6')}", "O6"),
    Threshold("cp_plan_ended_2y_plus_warn", 0.06, "share", "above",
              "O7 CP plans ended after 2+ years (12m; board band, no alert)", f"just over the {_national('O7')}",
              "O7"),
    Threshold("lac_3plus_placements_12m_warn", 0.11, "share", "above",
              "O10 looked-after children with 3+ placements in 12 months (board band, no alert)",
              f"just over the {_national('O10')}", "O10"),
    Threshold("lac_long_term_stability_warn", 0.65, "share", "below",
              "O11 under-16s looked after 2.5+ years in the same placement 2+ years (board band, no alert)",
              f"just under the {_national('O11')}", "O11"),
    Threshold("care_leavers_eet_warn", 0.50, "share", "below",
              "O13 care leavers aged 19-21 in education, employment or training (board band, no alert)",
              f"just under the {_national('O13')}", "O13"),
    Threshold("care_leavers_suitable_accommodation_warn", 0.85, "share", "below",
              "O14 care leavers aged 19-21 in suitable accommodation (board band, no alert)",
              f"just under the {_national('O14')}", "O14"),
    Threshold("vacancy_rate_warn", 0.15, "share", "above", "O17 social worker vacancy rate",
              f"just over the {_national('O17')}", "O17"),
    Threshold("vacancy_rate_page", 0.20, "share", "above", "O17 social worker vacancy rate",
              "5 points over the warning", "O17"),
    Threshold("caseload_warn", 18, "count", "above", "O19 open cases per case-holding FTE (team)",
              "about 3 over the O19 national reference 15.2", "O19"),
    Threshold("caseload_page", 22, "count", "above", "O19 open cases per case-holding FTE (team)",
              "4 over the warning", "O19"),
    Threshold("overdue_clocks_page", 0, "count", "above",
              "Open ICPC clocks past 15 working days, open first LAC review clocks past 20 working days",
              "any overdue one pages: the statutory timescales (docs/definitions.md, \"Statutory clocks\")"),
    Threshold("cp_review_overdue_working_days_page", 5, "working days", "above",
              "The most overdue open CP review, working days past its due date", _LOCAL),
    Threshold("assessment_overdue_working_days_page", 15, "working days", "above",
              "The most overdue open assessment, working days past its 45-working-day due date",
              "a casewatch default: page once an assessment is more than 60 working days from the referral, "
              "15 past the 45-working-day timescale"),
    Threshold("unallocated_cp_working_days_page", 1, "working days", "at or above",
              "A child protection case without an allocated social worker, working days", _LOCAL),
    Threshold("referral_surge_factor", 1.3, "factor", "above",
              "Referral surge: the authority's 28-day referrals over this multiple of their 12-week average", _LOCAL),
    Threshold("referral_surge_min_count", 20, "count", "at or above",
              "Referral surge: at least this many referrals in the 28 days (no surge on small numbers)", _LOCAL),
    Threshold("dead_letters_15m_warn", 10, "count", "above",
              "Dead-lettered engine events, or events rejected at ingest, in 15 minutes", _LOCAL),
    Threshold("silence_seconds_warn", 7200, "seconds", "above",
              "Pipeline silent: seconds without a new case event during core working hours", _LOCAL),
)

THRESHOLD_BY_NAME: dict[str, Threshold] = {t.name: t for t in THRESHOLDS}


def threshold_text(t: Threshold) -> str:
    """A threshold's value as written in docs/definitions.md: ``85%``, ``10``, ``5 wd``, ``×1.3``, ``7200 s``."""
    if t.unit == "share":
        return f"{t.value * 100:g}%"
    return {"working days": f"{t.value:g} wd", "factor": f"×{t.value:g}", "seconds": f"{t.value:g} s"}.get(
        t.unit, f"{t.value:g}")


def _role(name: str) -> str:
    if name.endswith("_page"):
        return "red, pages the on-call manager"
    if name.endswith("_warn"):
        return "amber, a warning"
    return "a condition of its alerts"


def thresholds_rule_file() -> str:
    """The text of prometheus/rules/casewatch_thresholds.yml: one constant recording rule per
    threshold, in the order of :data:`THRESHOLDS`."""
    lines = [
        "# GENERATED from casewatch/domain/catalogue.py (THRESHOLDS): do not edit by hand. To change a",
        "# threshold, edit the catalogue, then run",
        "#   python -m casewatch.domain.catalogue > prometheus/rules/casewatch_thresholds.yml",
        "# reload Prometheus and run `casewatch dashboards build` (the boards' bands read this file).",
        "# docs/definitions.md (\"Alert thresholds and board bands\") lists each one and where its number",
        "# comes from; tests/unit/domain/test_catalogue_agreement.py checks this file, that page and the",
        "# alert rules against the catalogue.",
        "#",
        "# Each threshold is a constant series: the alert rules compare against it",
        "# (`ratio < on() group_left() casewatch:threshold:...`) and the boards and packs draw their",
        "# red/amber/green bands from it. Ratios are fractions 0-1.",
        "groups:",
        "  - name: casewatch_thresholds",
        "    rules:",
    ]
    for t in THRESHOLDS:
        lines.append(f"      # {t.meaning}.")
        lines.append(f"      # {t.fires.capitalize()} {threshold_text(t)}: {_role(t.name)}. Basis: {t.basis}.")
        lines.append(f"      - record: {THRESHOLD_PREFIX}{t.name}")
        lines.append(f"        expr: vector({t.value:g})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # writes nothing itself: the caller redirects the text into the rule file
    print(thresholds_rule_file(), end="")
