"""The measures of the packs, in the Cabinet template's order (inputs, processes, outputs), and how
each is read from Prometheus.

Titles, indicator ids and national references come from the domain's catalogue
(:mod:`casewatch.domain.catalogue`: ``INDICATORS``, ``REFERENCE_SOURCES``); the ratios are the recording rules of
:mod:`dashboards.measures` (``casewatch:<name>:numerator_la`` / ``denominator_la``); the RAG
thresholds are those of ``prometheus/rules/casewatch_thresholds.yml`` (generated from the domain
catalogue's ``THRESHOLDS``; read by :mod:`dashboards.thresholds`).
Nothing here restates a number.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from casewatch.domain.catalogue import INDICATOR_BY_ID, REFERENCE_SOURCES
from casewatch.domain.indicators import DRIFT_WORKDAYS_DEFAULT
from casewatch.packs.population import england_rate
from dashboards.measures import RATIO_BY_NAME

BLOCKS = (("inputs", "Inputs: demand"), ("processes", "Processes: timeliness and flow"),
          ("outputs", "Outputs: caseload and outcomes"))

def drift_label(limits: Mapping[str, int]) -> str:
    """The drift measure's title with the working days of each case type (CASEWATCH_DRIFT_WORKDAYS)."""
    return f"Drift: no activity for CIN {limits['cin']}, CP {limits['cp']}, LAC {limits['lac']} working days"


@dataclass(frozen=True)
class Measure:
    key: str            # unique within the pack
    indicator: str      # id in the domain catalogue
    block: str          # inputs | processes | outputs
    kind: str           # count (flow), stock (snapshot count), ratio (flow ratio), stock_ratio
    source: str         # metric name (count/stock) or recording-rule measure name (ratios)
    selector: str = ""  # extra label matchers, e.g. 'age_band="19-21"'
    label: str = ""     # wording when it differs from the catalogue's title
    threshold: str = "" # key prefix in the thresholds file
    headline: bool = False
    per_10k: bool = False  # a stock per 10,000 children aged 0-17 (casewatch.packs.population)

    @property
    def code(self) -> str:
        """The id printed before the title (drift, a local measure, has none)."""
        return "" if self.indicator == "DRIFT" else self.indicator

    @property
    def title(self) -> str:
        return self.label or INDICATOR_BY_ID[self.indicator].title

    @property
    def is_ratio(self) -> bool:
        return self.kind in ("ratio", "stock_ratio")

    @property
    def is_flow(self) -> bool:
        return self.kind in ("count", "ratio")

    @property
    def percent(self) -> bool:
        return self.is_ratio and RATIO_BY_NAME[self.source].unit == "percentunit"

    @property
    def higher_is_better(self) -> bool | None:
        if self.is_ratio:
            return RATIO_BY_NAME[self.source].higher_is_better
        return None

    @property
    def reference(self) -> float | None:
        if self.per_10k:
            return england_rate(INDICATOR_BY_ID[self.indicator].national_reference)
        return INDICATOR_BY_ID[self.indicator].national_reference

    @property
    def reference_source(self) -> str:
        if self.per_10k:
            return PER_10K_SOURCES.get(self.indicator, "")
        return REFERENCE_SOURCES.get(self.indicator, "")


# England's rates per 10,000 children: the national count over England's children aged 0-17.
PER_10K_SOURCES = {
    "O1": "England, 31 March 2025, derived: DfE Children in need count per 10,000 children",
    "O2": "England, 31 March 2025, derived: DfE Children in need count per 10,000 children",
    "O4": "England, 31 March 2025, DfE Children looked after",
}


CABINET_MEASURES: tuple[Measure, ...] = (
    # --- inputs ---
    Measure("contacts", "I1", "inputs", "count", "casewatch_contacts"),
    Measure("contact_referral_conversion", "I2", "inputs", "ratio", "contact_referral_conversion"),
    Measure("referrals", "I3", "inputs", "count", "casewatch_referrals", headline=True),
    Measure("referral_nfa", "I5", "inputs", "ratio", "referral_nfa"),
    Measure("assessed_not_in_need", "I6", "inputs", "ratio", "assessed_not_in_need"),
    Measure("rereferral", "I7", "inputs", "ratio", "rereferral", threshold="rereferral"),
    Measure("early_help_started", "I9", "inputs", "count", "casewatch_early_help_started"),
    Measure("contacts_early_help_active", "I10", "inputs", "ratio", "contacts_early_help_active"),
    # --- processes ---
    Measure("assessments_completed", "P1", "processes", "count", "casewatch_assessments_completed"),
    Measure("assessment_timeliness", "P2", "processes", "ratio", "assessment_timeliness",
            threshold="assessment_timeliness", headline=True),
    Measure("referral_decision_timeliness", "P3", "processes", "ratio", "referral_decision_timeliness"),
    Measure("s47_started", "P5", "processes", "count", "casewatch_s47_started"),
    Measure("s47_to_icpc", "P6", "processes", "ratio", "s47_to_icpc"),
    Measure("icpcs", "P7", "processes", "count", "casewatch_icpcs"),
    Measure("icpc_timeliness", "P8", "processes", "ratio", "icpc_timeliness", threshold="icpc_timeliness",
            headline=True),
    Measure("icpc_to_plan", "P9", "processes", "ratio", "icpc_to_plan"),
    Measure("cp_review_timeliness", "P10", "processes", "ratio", "cp_review_timeliness",
            threshold="cp_review_timeliness"),
    Measure("child_participation", "P11", "processes", "ratio", "child_participation"),
    Measure("lac_review_timeliness", "P12", "processes", "ratio", "lac_review_timeliness",
            threshold="lac_review_timeliness"),
    Measure("statutory_visit_timeliness", "P13", "processes", "ratio", "statutory_visit_timeliness"),
    Measure("care_applications", "P14", "processes", "count", "casewatch_care_applications"),
    Measure("agency_rate", "P16", "processes", "stock_ratio", "agency_rate",
            label="Agency social workers (share of FTE)"),
    # --- outputs ---
    Measure("cin_open", "O1", "outputs", "stock", "casewatch_cin_open", label="Children in need (open)"),
    Measure("cin_open_rate", "O1", "outputs", "stock", "casewatch_cin_open", per_10k=True,
            label="Children in need per 10,000 children"),
    Measure("cp_plans_open", "O2", "outputs", "stock", "casewatch_cp_plans_open", headline=True),
    Measure("cp_plans_open_rate", "O2", "outputs", "stock", "casewatch_cp_plans_open", per_10k=True,
            label="CP plans open per 10,000 children"),
    Measure("cp_plans_started", "O3", "outputs", "count", "casewatch_cp_plans_started", label="CP plans started"),
    Measure("cp_plans_ended", "O3", "outputs", "count", "casewatch_cp_plans_ended", label="CP plans ended"),
    Measure("lac_open", "O4", "outputs", "stock", "casewatch_lac_open", label="Looked-after children",
            headline=True),
    Measure("lac_open_rate", "O4", "outputs", "stock", "casewatch_lac_open", per_10k=True,
            label="Looked-after children per 10,000 children"),
    Measure("lac_started", "O5", "outputs", "count", "casewatch_lac_started", label="Started to be looked after"),
    Measure("lac_ceased", "O5", "outputs", "count", "casewatch_lac_ceased", label="Ceased to be looked after"),
    Measure("cp_plan_subsequent", "O6", "outputs", "ratio", "cp_plan_subsequent", threshold="cp_plan_subsequent"),
    Measure("cp_plan_within_2y", "O6b", "outputs", "ratio", "cp_plan_within_2y",
            label="Second CP plans within 2 years of the last plan's end"),
    Measure("cp_plan_ended_2y_plus", "O7", "outputs", "ratio", "cp_plan_ended_2y_plus",
            threshold="cp_plan_ended_2y_plus"),
    Measure("cp_plan_open_2y_plus", "O7b", "outputs", "stock_ratio", "cp_plan_open_2y_plus"),
    Measure("step_down_cin", "O8", "outputs", "ratio", "cp_plan_end_route_share", 'end_route="cin_plan"',
            label="CP plans ended: step-down to a CIN plan"),
    Measure("step_down_early_help", "O8", "outputs", "ratio", "cp_plan_end_route_share", 'end_route="early_help"',
            label="CP plans ended: step-down to early help"),
    Measure("conversion_simple", "O9s", "outputs", "ratio", "conversion_simple"),
    Measure("lac_3plus_placements_12m", "O10", "outputs", "stock_ratio", "lac_3plus_placements_12m",
            threshold="lac_3plus_placements_12m"),
    Measure("lac_long_term_stability", "O11", "outputs", "stock_ratio", "lac_long_term_stability",
            label="Under-16s looked after 2.5+ years in the same placement for 2+ years",
            threshold="lac_long_term_stability"),
    Measure("lac_3plus_social_workers_12m", "O12", "outputs", "stock_ratio", "lac_3plus_social_workers_12m",
            label="Looked-after children with 3 or more social workers in 12 months"),
    Measure("care_leavers_eet", "O13", "outputs", "stock_ratio", "care_leavers_eet", 'age_band="19-21"',
            label="Care leavers aged 19-21 in education, employment or training", threshold="care_leavers_eet"),
    Measure("care_leavers_suitable_accommodation", "O14", "outputs", "stock_ratio",
            "care_leavers_suitable_accommodation", 'age_band="19-21"',
            label="Care leavers aged 19-21 in suitable accommodation",
            threshold="care_leavers_suitable_accommodation"),
    Measure("unallocated_cases", "O16", "outputs", "stock", "casewatch_unallocated_cases", headline=True,
            threshold="unallocated"),
    Measure("drift_cases", "DRIFT", "outputs", "stock", "casewatch_drift_cases",
            label=drift_label(DRIFT_WORKDAYS_DEFAULT)),
    Measure("vacancy_rate", "O17", "outputs", "stock_ratio", "vacancy_rate", threshold="vacancy_rate",
            headline=True),
    Measure("turnover", "O18", "outputs", "ratio", "turnover", label="Social worker turnover (leavers FTE / in-post FTE)"),
    Measure("caseload", "O19", "outputs", "stock_ratio", "caseload", threshold="caseload"),
)


def cabinet_measures(drift_limits: Mapping[str, int]) -> tuple[Measure, ...]:
    """:data:`CABINET_MEASURES` with the deployment's drift limits in the drift measure's title."""
    return tuple(replace(m, label=drift_label(drift_limits)) if m.key == "drift_cases" else m
                 for m in CABINET_MEASURES)

# Breakdowns shown as tables (this period; a total row and its parts).
@dataclass(frozen=True)
class Breakdown:
    key: str
    indicator: str
    block: str
    kind: str          # count | stock
    metric: str
    label_name: str
    title: str

    @property
    def code(self) -> str:
        return "" if self.indicator == "DRIFT" else self.indicator


BREAKDOWNS: tuple[Breakdown, ...] = (
    Breakdown("referrals_by_source", "I4", "inputs", "count", "casewatch_referrals", "source_group",
              "Referrals by referring agency"),
    Breakdown("lac_by_legal_status", "P15", "processes", "stock", "casewatch_lac_open", "legal_status_group",
              "Looked-after children by legal status"),
    Breakdown("permanence_exits", "O15", "outputs", "count", "casewatch_lac_ceased_by_outcome", "outcome_group",
              "Ceased to be looked after, by outcome"),
    Breakdown("unallocated_by_type", "O16", "outputs", "stock", "casewatch_unallocated_cases", "case_type",
              "Unallocated cases by case type"),
    Breakdown("drift_by_type", "DRIFT", "outputs", "stock", "casewatch_drift_cases", "case_type",
              "Drifting cases by case type"),
)

# What the Cabinet template asks for that casewatch's series cannot give yet.
NOT_YET_AVAILABLE = (
    "Contacts by agency and referral reasons by factor per period (factors exist only for completed assessments)",
    "O11 counts an adoptive placement as a new placement (the DfE may count it with the one before it)",
)
