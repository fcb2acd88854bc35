"""The child population (children aged 0-17) of an authority: the denominator of the packs' rates
per 10,000 children (CIN, CP plans, looked-after children).

The population is not a Prometheus series; it is configuration. ``CASEWATCH_CHILD_POPULATION``
(``"E06000004=45120,E06000001=<its children aged 0-17>"``, :attr:`casewatch.config.Settings.child_population`,
handed in by the ``casewatch report`` commands) sets it per ONS code; without it, the demo authority
E06000004 (Stockton-on-Tees) has its published figure, the simulator's Stockton profile
(:data:`casewatch.simulation.rates.STOCKTON_CHILDREN`, with its source), and any other authority has
none: its rates are ``x`` and the pack says what to set.

The England references per 10,000 are the national counts of the domain catalogue over England's
children (:data:`casewatch.simulation.rates.ENGLAND_CHILDREN`), rounded as the DfE publishes them
(whole numbers): 67 looked-after children per 10,000 is the DfE's own figure (31 March 2025).
"""
from __future__ import annotations

from casewatch.simulation.rates import ENGLAND_CHILDREN, STOCKTON_CHILDREN

ENV = "CASEWATCH_CHILD_POPULATION"
DEMO_AUTHORITY = "E06000004"
PER = 10_000


def child_populations(text: str = "") -> dict[str, int]:
    """Children aged 0-17 per ONS code: the demo authority's, overridden or extended by ``text``
    (the setting ``CASEWATCH_CHILD_POPULATION``)."""
    out = {DEMO_AUTHORITY: STOCKTON_CHILDREN}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        code, _, number = part.partition("=")
        try:
            value = int(number.strip().replace("_", ""))
        except ValueError:
            value = 0
        if not code.strip() or value <= 0:
            raise ValueError(f"{ENV}: {part!r} is not ONS code=children aged 0-17; "
                             f"write e.g. {ENV}=E06000004=45120")
        out[code.strip()] = value
    return out


def england_rate(national_count: float | None) -> float | None:
    """England's rate per 10,000 children for a national count (whole number, as published)."""
    if national_count is None:
        return None
    return float(round(national_count / ENGLAND_CHILDREN * PER))
