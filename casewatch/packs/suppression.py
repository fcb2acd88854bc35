"""Small-number suppression of the published packs (docs/definitions.md "Small numbers").

* Primary: a count from 1 to 5 is shown as ``c``; 0 stays 0.
* Secondary: wherever a total and its parts are both shown (a breakdown and its total row, the
  12-month figure and the four quarters it is made of), no suppressed cell may be worked back. A
  reader who knows the total and the visible parts knows the sum of the suppressed ones; each
  suppressed cell is at least 1 (0 is never suppressed) and, if the reader assumes every ``c`` is a
  primary one, at most 5. A cell is recoverable when those bounds meet; while any is, the smallest
  visible non-zero part of its group is suppressed too (the total itself when no part is left).
  Groups may share cells (a quarter is in a breakdown and in the 12-month sum); the rule is applied
  until no group changes.

Symbols (DfE): ``c`` suppressed, ``z`` not applicable, ``x`` not available, ``k`` a non-zero value
that rounds to 0%.
"""
from __future__ import annotations

from dataclasses import dataclass

SUPPRESSED, NOT_APPLICABLE, NOT_AVAILABLE, ROUNDS_TO_ZERO = "c", "z", "x", "k"
PRIMARY_MAX = 5      # 1..5 suppressed


@dataclass(frozen=True)
class Group:
    """``total`` = the sum of ``parts`` (keys of the cell table)."""
    total: str
    parts: tuple[str, ...]


def _bounds(hidden_sum: float, k: int) -> tuple[float, float]:
    """The range one of ``k`` suppressed cells can take when their sum is ``hidden_sum``, each being
    1..5 (a reader who assumes primary suppression) or at least 1."""
    lo = max(1.0, hidden_sum - PRIMARY_MAX * (k - 1))
    hi = min(float(PRIMARY_MAX), hidden_sum - (k - 1))
    return lo, hi


def recoverable(cells: dict[str, float | None], shown: dict[str, object], group: Group) -> list[str]:
    """The suppressed cells of ``group`` a reader could work out exactly from what is shown."""
    if shown.get(group.total) == SUPPRESSED or cells.get(group.total) is None:
        return []
    hidden = [p for p in group.parts if shown.get(p) == SUPPRESSED]
    if not hidden:
        return []
    visible_sum = sum(float(cells[p] or 0) for p in group.parts if shown.get(p) != SUPPRESSED)
    hidden_sum = float(cells[group.total]) - visible_sum
    lo, hi = _bounds(hidden_sum, len(hidden))
    return hidden if lo >= hi else []


def suppress(cells: dict[str, float | None], groups: list[Group] = ()) -> dict[str, object]:
    """Published form of every cell: the number, ``c``, or ``x`` for a missing value (None)."""
    shown: dict[str, object] = {}
    for key, value in cells.items():
        if value is None:
            shown[key] = NOT_AVAILABLE
        elif 0 < value <= PRIMARY_MAX:
            shown[key] = SUPPRESSED
        else:
            shown[key] = value
    complete = [g for g in groups if all(cells.get(k) is not None for k in (g.total, *g.parts))]
    changed = True
    while changed:
        changed = False
        for group in complete:
            if not recoverable(cells, shown, group):
                continue
            candidates = sorted((cells[p], p) for p in group.parts
                                if shown.get(p) != SUPPRESSED and (cells[p] or 0) > 0)
            victim = candidates[0][1] if candidates else group.total
            shown[victim] = SUPPRESSED
            changed = True
    return shown


def hide_ratio(numerator: float | None, denominator: float | None) -> bool:
    """A percentage whose numerator or denominator is under 6 is hidden (as the recording rules'
    ``ratio_published`` drops it)."""
    return numerator is None or denominator is None or numerator < PRIMARY_MAX + 1 or \
        denominator < PRIMARY_MAX + 1
