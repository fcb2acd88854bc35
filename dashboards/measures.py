"""The ratio measures the boards and alerts share, and the Prometheus recording rules that build them.

The engine exports numerators and denominators only (docs/metrics.md). For every ratio here,
``recording_rules()`` emits, in one rule group (rules in a group run in order, so later rules see
this evaluation's results):

* ``casewatch:<name>:numerator`` / ``:denominator`` — team level sums (summed over engine workers,
  each of which exports only the partitions it owns),
* ``casewatch:<name>:ratio`` — numerator / denominator, absent when the denominator is 0,
* ``casewatch:<name>:numerator_la`` / ``:denominator_la`` / ``:ratio_la`` — the whole authority,
* ``casewatch:<name>:ratio_published`` / ``:ratio_la_published`` — the same ratio, dropped when the
  numerator or the denominator is under 6 (docs/definitions.md "Small numbers", DfE practice: 1–5 is suppressed).

The indicator numbers (I2, P8, O17 …) are those of docs/definitions.md; each ratio's national reference
is its indicator's in the one catalogue, :mod:`casewatch.domain.catalogue`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from casewatch.domain.catalogue import INDICATOR_BY_ID

# Counts 1..SUPPRESS_BELOW-1 are never published; percentages with a numerator or denominator under
# this are hidden.
SUPPRESS_BELOW = 6

FLOW = ("la", "team", "window")
SNAPSHOT = ("la", "team")


@dataclass(frozen=True)
class Ratio:
    name: str                 # slug used in the record names
    indicator: str            # indicator id of docs/definitions.md
    title: str                # wording of the DfE / Working Together definition
    numerator: str            # PromQL selector
    denominator: str          # PromQL selector
    by: tuple[str, ...] = FLOW          # labels of the denominator
    extra: tuple[str, ...] = ()         # labels only the numerator is split by (shares)
    higher_is_better: bool | None = None
    unit: str = "percentunit"           # Grafana unit
    row: str = "Processes"              # Inputs / Processes / Outputs
    cohort: bool = False                # a cohort measure: published in the matured cohort windows only
    la_only: bool = False               # numerator and denominator come from different teams: board shows the LA

    @property
    def reference(self) -> float | None:
        """The national reference: the domain catalogue's, for this ratio's indicator."""
        return INDICATOR_BY_ID[self.indicator].national_reference

    @property
    def numerator_by(self) -> tuple[str, ...]:
        return self.by + self.extra

    def la_by(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(label for label in labels if label != "team")

    def record(self, kind: str) -> str:
        return f"casewatch:{self.name}:{kind}"


RATIOS: list[Ratio] = [
    # --- Inputs ---------------------------------------------------------------------------------
    Ratio("contact_referral_conversion", "I2", "Contacts that became a referral",
          "casewatch_contacts_to_referral", "casewatch_contacts", row="Inputs"),
    Ratio("referral_nfa", "I5", "Referrals not meeting the threshold (NFA)",
          "casewatch_referrals_nfa", "casewatch_referrals", row="Inputs",
          higher_is_better=False),
    Ratio("referral_nfa_by_source", "I5s", "Referrals not meeting the threshold, share of each agency's referrals",
          "casewatch_referrals_nfa", "casewatch_referrals", by=FLOW + ("source_group",), row="Inputs",
          higher_is_better=False),
    Ratio("assessed_not_in_need", "I6", "Referrals assessed as not in need",
          "casewatch_referrals_assessed_not_in_need", "casewatch_referrals",
          row="Inputs"),
    Ratio("rereferral", "I7", "Re-referrals within 12 months",
          "casewatch_rereferrals", "casewatch_referrals", higher_is_better=False,
          row="Inputs"),
    Ratio("contacts_early_help_active", "I10", "Contacts with an active CAF/EHA",
          "casewatch_contacts_early_help_active", "casewatch_contacts", row="Inputs"),
    Ratio("contacts_closed_and_logged", "I11", "Contacts closed and logged (NFA or information/advice)",
          "casewatch_contacts_closed_and_logged", "casewatch_contacts", row="Inputs"),
    # --- Processes ------------------------------------------------------------------------------
    Ratio("referral_decision_timeliness", "P3", "Referral decisions within 1 working day",
          "casewatch_referral_decisions_in_time", "casewatch_referral_decisions", higher_is_better=True),
    Ratio("assessment_timeliness", "P2", "Assessments completed within 45 working days",
          "casewatch_assessments_completed_in_time", "casewatch_assessments_completed", higher_is_better=True),
    Ratio("referral_to_s47_cohort", "P4", "Referrals whose episode had an S47 enquiry (cohort, matured 3 months)",
          "casewatch_cohort_referrals_to_s47", "casewatch_cohort_referrals", cohort=True),
    Ratio("s47_to_icpc", "P6", "ICPCs per S47 enquiry",
          "casewatch_icpcs", "casewatch_s47_started"),
    Ratio("icpc_timeliness", "P8", "ICPCs within 15 working days of the strategy discussion",
          "casewatch_icpcs_in_time", "casewatch_icpcs", higher_is_better=True),
    Ratio("icpc_to_plan", "P9", "ICPCs resulting in a child protection plan",
          "casewatch_icpcs_resulting_in_plan", "casewatch_icpcs"),
    Ratio("cp_review_timeliness", "P10", "CP reviews held on time",
          "casewatch_cp_reviews_completed_in_time", "casewatch_cp_reviews_completed",
          higher_is_better=True),
    Ratio("child_participation", "P11", "Child attended and took part (PN1–PN3)",
          'casewatch_child_participation{attended="true"}', "casewatch_child_participation",
          by=FLOW + ("meeting",), higher_is_better=True),
    Ratio("lac_review_timeliness", "P12", "LAC reviews held on time",
          "casewatch_lac_reviews_completed_in_time", "casewatch_lac_reviews_completed",
          higher_is_better=True),
    Ratio("statutory_visit_timeliness", "P13", "LAC statutory visits on time",
          "casewatch_statutory_visits_completed_in_time", "casewatch_statutory_visits_completed",
          higher_is_better=True),
    Ratio("care_proceedings_timeliness", "P14b", "Care proceedings concluded within 26 weeks",
          "casewatch_care_proceedings_completed_in_time", "casewatch_care_proceedings_completed",
          higher_is_better=True),
    Ratio("lac_legal_status_share", "P15", "Looked-after children by legal status",
          "casewatch_lac_open", "casewatch_lac_open", by=SNAPSHOT, extra=("legal_status_group",)),
    Ratio("agency_rate", "P16", "Agency social workers (agency / agency + in post)",
          'casewatch_workforce_fte{measure="agency"}', 'casewatch_workforce_fte{measure=~"agency|inpost"}',
          by=SNAPSHOT, higher_is_better=False),
    # --- Outputs --------------------------------------------------------------------------------
    Ratio("conversion_cohort", "O9", "Conversion rate, cohort form: referrals whose episode reached a CP plan "
          "(matured 3 months)", "casewatch_cohort_referrals_to_cp_plan", "casewatch_cohort_referrals", cohort=True, row="Outputs"),
    Ratio("conversion_simple", "O9s", "Conversion rate, simple form: CP plans started / referrals in the same period",
          "casewatch_cp_plans_started", "casewatch_referrals", row="Outputs", la_only=True),
    Ratio("cp_plan_subsequent", "O6", "Second or subsequent CP plans",
          "casewatch_cp_plans_started_subsequent", "casewatch_cp_plans_started",
          higher_is_better=False, row="Outputs"),
    Ratio("cp_plan_within_2y", "O6b", "Second CP plans within 2 years of the last plan's end",
          "casewatch_cp_plans_started_within_2y", "casewatch_cp_plans_started", higher_is_better=False,
          row="Outputs"),
    Ratio("cp_plan_ended_2y_plus", "O7", "CP plans ended after 2 years or more",
          "casewatch_cp_plans_ended_2y_plus", "casewatch_cp_plans_ended",
          higher_is_better=False, row="Outputs"),
    Ratio("cp_plan_open_2y_plus", "O7b", "CP plans open 2 years or more",
          "casewatch_cp_plans_open_2y_plus", "casewatch_cp_plans_open", by=SNAPSHOT,
          higher_is_better=False, row="Outputs"),
    Ratio("cp_plan_end_route_share", "O8", "CP plans ended by route (step-down to CIN / early help)",
          "casewatch_cp_plans_ended_by_route", "casewatch_cp_plans_ended", extra=("end_route",),
          row="Outputs"),
    Ratio("lac_3plus_placements_12m", "O10", "LAC with 3+ placements in 12 months",
          "casewatch_lac_3plus_placements_12m", "casewatch_lac_open", by=SNAPSHOT,
          higher_is_better=False, row="Outputs"),
    Ratio("lac_3plus_placements_24m", "O10b", "LAC with 3+ placements in 24 months",
          "casewatch_lac_3plus_placements_24m", "casewatch_lac_open", by=SNAPSHOT,
          higher_is_better=False, row="Outputs"),
    Ratio("lac_long_term_stability", "O11", "Under-16s looked after 2.5+ years in the same placement 2+ years",
          "casewatch_lac_long_term_same_placement_2y", "casewatch_lac_long_term_under16", by=SNAPSHOT, higher_is_better=True, row="Outputs"),
    Ratio("lac_3plus_social_workers_12m", "O12", "LAC with 3+ social workers in 12 months",
          "casewatch_lac_3plus_social_workers_12m", "casewatch_lac_open", by=SNAPSHOT,
          higher_is_better=False, row="Outputs"),
    Ratio("care_leavers_eet", "O13", "Care leavers in education, employment or training",
          "casewatch_care_leavers_eet", "casewatch_care_leavers", by=SNAPSHOT + ("age_band",), higher_is_better=True, row="Outputs"),
    Ratio("care_leavers_suitable_accommodation", "O14", "Care leavers in suitable accommodation",
          "casewatch_care_leavers_suitable_accommodation", "casewatch_care_leavers",
          by=SNAPSHOT + ("age_band",), higher_is_better=True, row="Outputs"),
    Ratio("vacancy_rate", "O17", "Social worker vacancy rate (vacant / vacant + in post)",
          'casewatch_workforce_fte{measure="vacancy"}', 'casewatch_workforce_fte{measure=~"vacancy|inpost"}',
          by=SNAPSHOT, higher_is_better=False, row="Outputs"),
    Ratio("turnover", "O18", "Social worker turnover (leavers FTE / in-post FTE)",
          "casewatch_workforce_leavers_fte", 'casewatch_workforce_fte{measure="inpost"}',
          by=SNAPSHOT, extra=("window",), higher_is_better=False, row="Outputs"),
    Ratio("caseload", "O19", "Caseload per case-holding FTE",
          "casewatch_open_cases", 'casewatch_workforce_fte{measure="case_holding"}', by=SNAPSHOT, higher_is_better=False, unit="short", row="Outputs"),
]

RATIO_BY_NAME = {r.name: r for r in RATIOS}


def _labels(labels: tuple[str, ...]) -> str:
    return ", ".join(labels)


def _ratio_expr(num: str, den: str, num_by: tuple[str, ...], den_by: tuple[str, ...]) -> str:
    """num / den, absent where the denominator is 0. group_left when the numerator is split finer."""
    if num_by == den_by:
        return f"{num} / ({den} > 0)"
    return f"{num} / on({_labels(den_by)}) group_left() ({den} > 0)"


def _published_expr(ratio: str, num: str, den: str, num_by: tuple[str, ...], den_by: tuple[str, ...]) -> str:
    return (f"{ratio} and on({_labels(num_by)}) ({num} >= {SUPPRESS_BELOW})"
            f" and on({_labels(den_by)}) ({den} >= {SUPPRESS_BELOW})")


def rules_for(r: Ratio) -> list[dict]:
    num_by, den_by = r.numerator_by, r.by
    la_num_by, la_den_by = r.la_by(num_by), r.la_by(den_by)
    n, d = r.record("numerator"), r.record("denominator")
    n_la, d_la = r.record("numerator_la"), r.record("denominator_la")
    return [
        {"record": n, "expr": f"sum by ({_labels(num_by)}) ({r.numerator})"},
        {"record": d, "expr": f"sum by ({_labels(den_by)}) ({r.denominator})"},
        {"record": r.record("ratio"), "expr": _ratio_expr(n, d, num_by, den_by)},
        {"record": n_la, "expr": f"sum by ({_labels(la_num_by)}) ({n})"},
        {"record": d_la, "expr": f"sum by ({_labels(la_den_by)}) ({d})"},
        {"record": r.record("ratio_la"), "expr": _ratio_expr(n_la, d_la, la_num_by, la_den_by)},
        {"record": r.record("ratio_published"),
         "expr": _published_expr(r.record("ratio"), n, d, num_by, den_by)},
        {"record": r.record("ratio_la_published"),
         "expr": _published_expr(r.record("ratio_la"), n_la, d_la, la_num_by, la_den_by)},
    ]


def recording_rules() -> dict:
    """The rule file ``prometheus/rules/casewatch_ratios.yml`` (one group per measure)."""
    return {"groups": [
        {"name": f"casewatch_ratio_{r.name}", "rules": rules_for(r)} for r in RATIOS
    ]}


RULES_HEADER = """\
# GENERATED by `casewatch dashboards build` from dashboards/measures.py — do not edit by hand.
# Ratio recording rules (0-1; caseload is cases per FTE): numerator/denominator sums, team and LA
# level ratios, and the published (small-number suppressed) variants. See docs/metrics.md.
"""
