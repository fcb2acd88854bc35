"""The small code-to-group mappings the indicators need, as data (docs/definitions.md, docs/metrics.md).

The code lists themselves (and their per-collection-year versions) belong to ``schemas``; these
are only the bounded label values the metric catalogue allows, keyed by code.
"""
from __future__ import annotations

from functools import lru_cache

# T1 ReferralSource (also contact source, early-help lead agency) -> `source_group`.
SOURCE_GROUPS: dict[str, str] = {
    "1A": "individual", "1B": "individual", "1C": "individual", "1D": "individual",
    "2A": "schools_education", "2B": "schools_education",
    "3A": "health", "3B": "health", "3C": "health", "3D": "health", "3E": "health", "3F": "health",
    "4": "housing",
    "5A": "la_services", "5B": "la_services", "5C": "la_services", "5D": "la_services",
    "6": "police",
    "7": "legal",
    "8": "other",
    "9": "anonymous_unknown", "10": "anonymous_unknown",
}
SOURCE_GROUP_UNKNOWN = "anonymous_unknown"  # a code not in the list is "unknown"

# T4 AssessmentFactors: the number before the suffix letter -> `factor_family`.
FACTOR_FAMILIES: dict[str, str] = {
    "1": "alcohol", "2": "drugs", "3": "domestic_abuse", "4": "mental_health",
    "5": "learning_disability", "6": "physical_disability", "7": "young_carer",
    "8": "privately_fostered", "9": "uasc", "10": "missing", "11": "cse", "12": "trafficking",
    "13": "gangs", "14": "behaviour", "15": "self_harm", "16": "neglect", "17": "emotional_abuse",
    "18": "physical_abuse", "19": "sexual_abuse", "20": "other", "21": "no_factors", "22": "fgm",
    "23": "faith_belief", "24": "cce",
}

# T6 SSDA903 legal status -> `legal_status_group`. V3/V4 (short breaks) map to None: never LAC.
LEGAL_STATUS_GROUPS: dict[str, str | None] = {
    "C1": "care_order", "C2": "care_order",
    "D1": "placement_freeing", "E1": "placement_freeing",
    "V2": "voluntary_s20",
    "V3": None, "V4": None,
    "L1": "emergency_protection", "L2": "emergency_protection", "L3": "emergency_protection",
    "J1": "youth_justice", "J2": "youth_justice", "J3": "youth_justice",
}
SHORT_BREAK_LEGAL_STATUSES = frozenset({"V3", "V4"})

# T7 reason for new episode: a placement move (a new placement) is one of these; S starts a period;
# L changes the legal status only (not a new placement).
PLACEMENT_MOVE_RNE = frozenset({"P", "B", "T", "U"})
PERIOD_START_RNE = "S"
LEGAL_STATUS_ONLY_RNE = "L"

# T11 reason episode ceased -> `outcome_group`. X1 is not leaving care (see CEASED_NOT_LEAVING_CARE).
OUTCOME_GROUPS: dict[str, str] = {
    "E11": "adopted", "E12": "adopted",
    "E45": "sgo", "E46": "sgo", "E47": "sgo", "E48": "sgo",
    "E41": "cao_ro",
    "E4A": "returned_home", "E4B": "returned_home",
}
OUTCOME_GROUP_OTHER = "other"              # any other reason, E8 included
OUTCOME_GROUP_NOT_RECORDED = "not_recorded"  # an end known to have happened, its reason not recorded
OUTCOME_GROUP_VALUES = (*dict.fromkeys(OUTCOME_GROUPS.values()), OUTCOME_GROUP_OTHER, OUTCOME_GROUP_NOT_RECORDED)
CEASED_NOT_LEAVING_CARE = frozenset({"X1"})

# T10 participation (REVIEW_CODE, reused locally at ICPCs and CP reviews) -> `attended`.
# PN0 (under 4) is excluded from the attendance measure (None).
PARTICIPATION_ATTENDED: dict[str, str | None] = {
    "PN0": None,
    "PN1": "true", "PN2": "true", "PN3": "true",
    "PN4": "false", "PN5": "false", "PN6": "false", "PN7": "false",
}

# T3 reason for closure: "assessed, not in need" (I6).
CLOSURE_ASSESSED_NOT_IN_NEED = frozenset({"RC8", "RC9"})

# Contact outcomes (docs/events.md).
CONTACT_OUTCOME_TO_REFERRAL = "cin_referral"
CONTACT_OUTCOMES_CLOSED_AND_LOGGED = frozenset({"nfa", "information_advice"})

# s47.completed outcomes that end the enquiry without an ICPC (the ICPC clock stops).
S47_OUTCOMES_NO_ICPC = frozenset({"nfa", "continue_assessment", "s17_services"})

# Care leavers (T13): EET = an ACTIV code starting F or P; suitable accommodation = ACCOM suffix 1.
CARE_LEAVER_IN_TOUCH_EXCLUDED = frozenset({"DIED"})


def source_group(code: str | None) -> str:
    return SOURCE_GROUPS.get(str(code).strip().upper() if code is not None else "", SOURCE_GROUP_UNKNOWN)


def factor_family(code: str) -> str | None:
    """``"3B"`` -> ``"domestic_abuse"``; ``"21"`` -> ``"no_factors"``; unknown -> None."""
    return _factor_family_of(str(code))


@lru_cache(maxsize=10_000)
def _factor_family_of(code: str) -> str | None:
    digits = "".join(ch for ch in code if ch.isdigit())
    return FACTOR_FAMILIES.get(str(int(digits))) if digits else None


def outcome_group(reason_ceased: str | None) -> str:
    """``"E11"`` -> ``"adopted"``; no reason (None or empty) -> ``"not_recorded"``; E8 or any other
    reason -> ``"other"``."""
    if not reason_ceased:
        return OUTCOME_GROUP_NOT_RECORDED
    return OUTCOME_GROUPS.get(reason_ceased, OUTCOME_GROUP_OTHER)


def is_eet(activity: str | None) -> bool:
    return bool(activity) and activity[0] in "FP"


def is_suitable_accommodation(accommodation: str | None) -> bool:
    return bool(accommodation) and len(accommodation) >= 2 and accommodation.endswith("1")
