"""The national rates the synthetic authority follows (England, year to 31 March 2025; the
indicators and references of docs/definitions.md), and the calibration profiles at the end (the
demo authority's own rates). Each figure names the indicator it reproduces.

Distributions are given as piecewise-linear inverse CDFs: ``((p0, x0), (p1, x1), ...)`` with
``p`` rising from 0 to 1; a uniform draw ``u`` maps to the interpolated ``x``. This pins the
published quantiles exactly (e.g. the assessment median and IQR, the share within 45 working days).
"""
from __future__ import annotations

# -- population-based volumes -------------------------------------------------------------------
# England children 0-17 implied by CIN 402,400 at ≈330 per 10k (O1): ≈12.19 million.
ENGLAND_CHILDREN = 12_194_000
REFERRALS_PER_YEAR_ENGLAND = 632_830            # I3
REFERRALS_PER_CHILD_YEAR = REFERRALS_PER_YEAR_ENGLAND / ENGLAND_CHILDREN
WORKING_DAYS_PER_YEAR = 253

# Contacts are in no census (I1, I2 have no national value): a local assumption.
CONTACT_TO_REFERRAL = 0.35
CONTACT_OUTCOMES = {"cin_referral": CONTACT_TO_REFERRAL, "eh_referral": 0.15,
                    "information_advice": 0.27, "nfa": 0.23}
CONTACT_EARLY_HELP_ACTIVE = 0.12

# -- referrals -----------------------------------------------------------------------------------
RE_REFERRAL = 0.226                  # I7: referral with an earlier one within 12 months
RETURNING_CHILD_OLDER = 0.06         # referral of a child last referred more than 12 months ago
REFERRAL_NFA = 0.065                 # I5
REFERRAL_ADVICE_OR_STEP_DOWN = 0.02  # decided without an assessment, not NFA
REFERRAL_DECISION_WITHIN_1WD = 0.86  # P3 (no national figure; local assumption)
STRATEGY_AT_REFERRAL = 0.40          # referral outcome strategy_or_s47
STRATEGY_DECISIONS = {"s47": 0.91, "no_s47": 0.07, "single_agency_police": 0.02}  # 36.4% S47s (P4)

# T1 referral source; police is the largest source (I4).
REFERRAL_SOURCES = {
    "6": 0.29, "2A": 0.18, "2B": 0.02, "3A": 0.03, "3B": 0.02, "3C": 0.01, "3D": 0.02, "3E": 0.04,
    "3F": 0.02, "5A": 0.03, "5B": 0.03, "5C": 0.02, "5D": 0.02, "1A": 0.04, "1B": 0.01, "1C": 0.02,
    "1D": 0.01, "4": 0.02, "7": 0.03, "8": 0.06, "9": 0.02, "10": 0.06,
}
PRIMARY_NEED = {"N1": 0.57, "N2": 0.04, "N3": 0.03, "N4": 0.09, "N5": 0.15, "N6": 0.03, "N7": 0.01,
                "N8": 0.04, "N9": 0.03, "N0": 0.01}

# T4 factors: independent chances per completed assessment; the seven national shares of §1.3
# (parental mental health 33.5%, domestic abuse parent victim 31.7%, ...) and smaller local ones.
ASSESSMENT_FACTORS = {
    "4B": 0.335, "3B": 0.317, "17A": 0.190, "16A": 0.176, "4A": 0.176, "1B": 0.143, "2B": 0.141,
    "3A": 0.08, "3C": 0.05, "14A": 0.06, "15A": 0.07, "10A": 0.05, "24A": 0.03, "11A": 0.03,
    "18C": 0.06, "19C": 0.04, "6A": 0.04, "5A": 0.03, "6B": 0.04, "20": 0.08, "7A": 0.01, "9A": 0.01,
}

# -- assessments (P2): from the referral date, median 33 wd, IQR 17-43, 85.7% within 45 wd --------
ASSESSMENT_WD = ((0.0, 0), (0.25, 17), (0.5, 33), (0.75, 43), (0.857, 45.4), (0.95, 60), (1.0, 100))
# Outcomes for assessments that did not go through a strategy discussion.
ASSESSMENT_OUTCOMES = {"nfa": 0.30, "step_down_eh": 0.13, "other": 0.57}

# -- S47 and ICPC (P5-P9) ------------------------------------------------------------------------
S47_TO_ICPC = 0.313                  # P6
ICPC_WD = ((0.0, 2), (0.05, 6), (0.25, 11), (0.5, 14), (0.814, 15.4), (0.93, 20), (1.0, 35))  # P8
ICPC_TO_PLAN = 0.868                 # P9
S47_OTHER_OUTCOMES = {"nfa": 0.36, "s17_services": 0.36, "continue_assessment": 0.22, "legal_action": 0.06}

# -- CP plans (O2-O8) ----------------------------------------------------------------------------
CP_CATEGORIES = {"NEG": 0.48, "EMO": 0.38, "PHY": 0.06, "SAB": 0.04, "MUL": 0.04}
SUBSEQUENT_PLAN = 0.245              # O6 (previous plans at any time)
CP_PLAN_DAYS = ((0.0, 40), (0.2, 150), (0.5, 270), (0.8, 430), (0.956, 730), (0.99, 900), (1.0, 1100))  # O7 4.4%
CP_CATEGORY_CHANGE = 0.10
CP_END_ROUTES = {"cin_plan": 0.65, "early_help": 0.10, "became_lac": 0.12, "moved_la": 0.03, "other": 0.10}
CP_REVIEW_ON_TIME = 0.95
CP_REVIEW_QUORATE = 0.95

# -- children looked after (O4, O5, O10-O15, P12, P13, P15) ----------------------------------------
CIN_PLAN_TO_LAC = 0.05
S47_LEGAL_ACTION_TO_LAC = 0.85
DIRECT_UASC_PER_REFERRAL = 0.003
LAC_START_LEGAL_STATUS = {"V2": 0.42, "C1": 0.36, "L1": 0.08, "L2": 0.08, "J1": 0.03, "E1": 0.0, "C2": 0.03}
LAC_PLACEMENTS = {"U6": 0.40, "U3": 0.15, "U4": 0.08, "U1": 0.04, "K2": 0.12, "K3": 0.05, "P1": 0.05,
                  "R3": 0.03, "U5": 0.03, "U2": 0.02, "K1": 0.01, "R1": 0.02}
PROVIDERS = {"PR1": 0.50, "PR4": 0.35, "PR2": 0.05, "PR5": 0.05, "PR0": 0.05}
LAC_DAYS = ((0.0, 5), (0.2, 100), (0.4, 365), (0.6, 900), (0.8, 1800), (1.0, 4000))
# O10 (10% of LAC with 3+ placements in 12 months): a minority of unsettled children move often.
UNSETTLED_SHARE = 0.22
MOVES_PER_YEAR_UNSETTLED = 3.2
MOVES_PER_YEAR_SETTLED = 0.25
PLACEMENT_CHANGE_REASONS = {"CARPL": 0.34, "OTHER": 0.25, "PLACE": 0.18, "CREQB": 0.08, "CREQO": 0.07,
                            "CHILD": 0.03, "STAND": 0.02, "ALLEG": 0.01, "CLOSE": 0.02}
LAC_REVIEW_ON_TIME = 0.95
VISIT_ON_TIME = 0.94
# Reasons a period of care ends before the 18th birthday.
LAC_ENDS_YOUNG = {"E4A": 0.30, "E4B": 0.06, "E45": 0.06, "E46": 0.03, "E47": 0.03, "E48": 0.02,
                  "E41": 0.05, "E13": 0.07, "E3": 0.03, "E8": 0.10, "E11": 0.12, "E12": 0.08, "E9": 0.02}
LAC_ENDS_AT_18 = {"E17": 0.20, "E5": 0.35, "E6": 0.10, "E8": 0.25, "E7": 0.03, "E4A": 0.07}

# -- care leavers (O13, O14) ---------------------------------------------------------------------
CARE_LEAVER_IN_TOUCH = {"YES": 0.91, "NO": 0.04, "REFU": 0.02, "NREQ": 0.02, "RHOM": 0.01}
CARE_LEAVER_EET = {"17-18": 0.64, "19-21": 0.54}
CARE_LEAVER_SUITABLE = {"17-18": 0.91, "19-21": 0.89}
EET_ACTIVITIES = {"F1": 0.15, "P1": 0.03, "F2": 0.35, "P2": 0.05, "F4": 0.12, "P4": 0.02, "F5": 0.20, "P5": 0.08}
NEET_ACTIVITIES = {"G4": 0.2, "G5": 0.6, "G6": 0.15, "0": 0.05}
SUITABLE_ACCOM = {"U1": 0.35, "Z1": 0.15, "D1": 0.2, "E1": 0.1, "B1": 0.15, "T1": 0.05}
UNSUITABLE_ACCOM = {"S2": 0.2, "W2": 0.2, "X2": 0.2, "V2": 0.2, "K2": 0.2}

# -- early help, court ---------------------------------------------------------------------------
EARLY_HELP_END = {"outcomes_met": 0.55, "step_up": 0.12, "nfa": 0.18, "disengaged": 0.15}

# -- workforce (O17-O19, P16) --------------------------------------------------------------------
VACANCY_RATE = 0.142                 # O17
AGENCY_RATE = 0.13                   # P16 agency / (agency + in post)
CASELOAD_PER_FTE = 15.2              # O19
TURNOVER_PER_YEAR = 0.118            # O18
CASE_HOLDING_SHARE = 0.88            # of social workers in post (incl. agency)

# -- allocation (O16): chance that a case segment has a spell without an allocated worker ---------
UNALLOCATED_SPELL = {"cin": 0.12, "cp": 0.03, "lac": 0.06, "care_leaver": 0.08}
UNALLOCATED_WD = {"cin": (1, 20), "cp": (1, 2), "lac": (1, 10), "care_leaver": (1, 15)}

PARTICIPATION = {"PN1": 0.35, "PN2": 0.08, "PN3": 0.07, "PN4": 0.05, "PN5": 0.15, "PN6": 0.22, "PN7": 0.08}


# -- calibration profiles ------------------------------------------------------------------------
# ``national``: the England rates above. ``stockton``: Stockton-on-Tees (E06000004), the demo
# authority, from its published 2025 figures (docs/definitions.md gives the national side): 45,120
# children under 18 (STOCKTON_CHILDREN below); 3,959 referrals a year; re-referrals 28.8%; assessed not in need 51.4%;
# CP plans about 282 open and 360 started a year, 20% second or subsequent; 564 looked-after
# children (125 per 10,000), 161 starts and 180 leavings a year; LAC with 3+ placements 11%;
# care leavers 19-21 in EET 49% and in suitable accommodation 79% (17-18: 49% / 80%); vacancy
# 7.5%, turnover 13.9%, caseload 17.2 per case-holding FTE. Only the rates that differ are listed;
# each reproduces the figure named beside it.
# Stockton-on-Tees's children aged 0-17: DfE, Children looked after in England 2025
# (cla_number_and_rate_per_10k_children), Stockton at 31 March 2025: 564 looked-after children,
# 125 per 10,000 children -> 564 / 125 x 10,000 = 45,120. The packs divide by it for rates per
# 10,000 children (casewatch.packs.population).
STOCKTON_CHILDREN = 45_120
PROFILES: dict[str, dict] = {
    "national": {"POPULATION": 40_000},
    "stockton": {
        "POPULATION": STOCKTON_CHILDREN,
        "REFERRALS_PER_CHILD_YEAR": 3_959 / STOCKTON_CHILDREN,          # I3 3,959 a year
        "RE_REFERRAL": 0.292,                                           # I7 28.8% (returning children add to it)
        # I6 51.4% (national 30.8%): more assessments end in NFA or a step-down to early help.
        "ASSESSMENT_OUTCOMES": {"nfa": 0.52, "step_down_eh": 0.22, "other": 0.26},
        "ICPC_TO_PLAN": 0.83,                                           # O3 360 plans started a year
        "CP_PLAN_DAYS": ((0.0, 40), (0.2, 140), (0.5, 255), (0.8, 410), (0.956, 700), (0.99, 800),
                         (1.0, 950)),                                   # O2 about 282 open
        "SUBSEQUENT_PLAN": 0.20,                                        # O6 20%
        # O4/O5: 161 starts a year (4.1% of referrals, national 5.1%) staying longer (564 open).
        "CIN_PLAN_TO_LAC": 0.055,
        "LAC_DAYS": ((0.0, 5), (0.15, 175), (0.35, 660), (0.55, 1600), (0.8, 3000), (1.0, 5600)),
        "UNSETTLED_SHARE": 0.14,                                        # O10 11% (longer stays: fewer unsettled)
        # O13 49% / O14 79%: drawn among care leavers in touch, the published share counts all of them
        "CARE_LEAVER_EET": {"17-18": 0.52, "19-21": 0.52},
        "CARE_LEAVER_SUITABLE": {"17-18": 0.93, "19-21": 0.92},
        "VACANCY_RATE": 0.075,                                          # O17 7.5%
        "TURNOVER_PER_YEAR": 0.139,                                     # O18 13.9%
        "CASELOAD_PER_FTE": 19.0,                                       # O19 17.2 measured (open cases / FTE)
    },
}


def profile(name: str = "national"):
    """The rates of a calibration profile: every constant of this module, with the profile's own
    values in place of the national ones (an unknown name raises ``ValueError``)."""
    from types import SimpleNamespace
    if name not in PROFILES:
        raise ValueError(f"unknown simulator profile {name!r}: use one of {', '.join(sorted(PROFILES))}")
    values = {k: v for k, v in globals().items() if k.isupper()}
    values.update(PROFILES[name])
    values["PROFILE"] = name
    return SimpleNamespace(**values)
