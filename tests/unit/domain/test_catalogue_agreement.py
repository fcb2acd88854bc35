"""Everything that repeats the metric catalogue agrees with it (issue 14): docs/metrics.md, the
engine's exposition allow-lists, the committed recording rules, the boards and the packs.

The catalogue (casewatch/domain/catalogue.py) is the one source. Each check is a function that
returns the disagreements, so every test also shows its check failing on a mutated copy: a check
that cannot fail proves nothing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from casewatch.adapters.prometheus.exposition import bounded_label_values
from casewatch.config import Settings
from casewatch.domain import catalogue
from casewatch.domain.catalogue import EVENT_FIELD_LABELS, INDICATOR_BY_ID, METRIC_LABELS, REFERENCE_SOURCES
from casewatch.packs import catalogue as packs
from casewatch.packs.population import england_rate
from dashboards import build, measures

ROOT = Path(__file__).resolve().parents[3]
METRICS_MD = (ROOT / "docs" / "metrics.md").read_text()


# -- docs/metrics.md -----------------------------------------------------------------------------

def documented_metric_labels(text: str) -> dict[str, tuple[str, ...]]:
    """metric -> its labels, read from the flow and snapshot tables of docs/metrics.md: `la`,
    `team` (unless the row says "no `team`"), `window` in the flow table, plus the row's
    "(+`label`, ...)". A `_suffix` after a full name extends that name."""
    out: dict[str, tuple[str, ...]] = {}
    flows = text.split("## Flow figures", 1)[1].split("## Snapshot figures", 1)[0]
    stocks = text.split("## Snapshot figures", 1)[1].split("## Operational", 1)[0]
    for section, base in ((flows, ("la", "team", "window")), (stocks, ("la", "team"))):
        for line in section.splitlines():
            if not line.startswith("| `"):
                continue
            cell = line.split("|")[1]
            names, last = [], None
            head, _, extra = cell.partition("(+")
            for token in re.findall(r"`([a-z0-9_]+)`", head):
                if token.startswith("casewatch_"):
                    last = token
                    names.append(token)
                elif token.startswith("_") and last is not None:
                    names.append(last + token)
            extra = extra.split(")", 1)[0]
            labels = tuple(label for label in base if not (label == "team" and "no `team`" in extra))
            labels += tuple(t for t in re.findall(r"`([a-z_]+)`", extra.split(":", 1)[0]) if t != "team")
            for name in names:
                out[name] = labels
    return out


def documented_label_values(text: str) -> dict[str, set[str]]:
    """label -> the values the Labels table of docs/metrics.md lists (backticked words)."""
    table = text.split("## Labels", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) < 3 or not cells[1].strip().startswith("`"):
            continue
        values = cells[2].split("(")[0] if "(" in cells[2] and "`" not in cells[2].split("(")[1] else cells[2]
        for name in re.findall(r"`([a-z_]+)`", cells[1]):
            out[name] = set(re.findall(r"`([^`]+)`", values))
    return out


def docs_disagreements(text: str, labels: dict[str, tuple[str, ...]]) -> list[str]:
    documented = documented_metric_labels(text)
    out = [f"{m}: in the catalogue, not in docs/metrics.md" for m in sorted(set(labels) - set(documented))]
    out += [f"{m}: in docs/metrics.md, not in the catalogue" for m in sorted(set(documented) - set(labels))]
    out += [f"{m}: labels {sorted(labels[m])} in the catalogue, {sorted(documented[m])} in docs/metrics.md"
            for m in sorted(set(labels) & set(documented)) if set(labels[m]) != set(documented[m])]
    label_table = documented_label_values(text)
    out += [f"label {name}: not in the Labels table of docs/metrics.md"
            for name in sorted({n for ls in labels.values() for n in ls} - set(label_table))]
    return out


def test_docs_metrics_lists_exactly_the_catalogue_metrics_with_their_labels() -> None:
    assert docs_disagreements(METRICS_MD, METRIC_LABELS) == []


def test_the_docs_check_fails_on_a_mutated_copy() -> None:
    dropped = METRICS_MD.replace("| `casewatch_s47_started` | P5 |", "| `casewatch_s48_started` | P5 |")
    relabelled = METRICS_MD.replace("`casewatch_cp_plans_open` (+`category`)", "`casewatch_cp_plans_open`")
    extra_label = dict(METRIC_LABELS, casewatch_icpcs=("la", "team", "window", "colour"))
    assert docs_disagreements(dropped, METRIC_LABELS) == [
        "casewatch_s47_started: in the catalogue, not in docs/metrics.md",
        "casewatch_s48_started: in docs/metrics.md, not in the catalogue"]
    assert docs_disagreements(relabelled, METRIC_LABELS) == [
        "casewatch_cp_plans_open: labels ['category', 'la', 'team'] in the catalogue, ['la', 'team'] in "
        "docs/metrics.md"]
    assert "label colour: not in the Labels table of docs/metrics.md" in docs_disagreements(METRICS_MD, extra_label)


# -- the exposition's allow-lists ----------------------------------------------------------------

def exposition_disagreements(allowed: dict[str, frozenset[str]], labels: dict[str, tuple[str, ...]],
                             documented: dict[str, set[str]], settings: Settings) -> list[str]:
    """The exposition bounds exactly the catalogue's event-field labels; each is a label of some
    catalogue metric; the values it lets through for a code-list label are the ones docs/metrics.md
    lists, and for la/team the configured ones."""
    out = []
    if set(allowed) != set(EVENT_FIELD_LABELS):
        out.append(f"bounded labels {sorted(allowed)} != the catalogue's {sorted(EVENT_FIELD_LABELS)}")
    used = {n for ls in labels.values() for n in ls}
    out += [f"label {n}: bounded by the exposition but no catalogue metric carries it"
            for n in sorted(set(allowed) - used)]
    configured = {"la": set(settings.la_code_list), "team": set(settings.team_list)}
    for name, values in sorted(allowed.items()):
        expected = configured.get(name, documented.get(name))
        if set(values) != expected:
            out.append(f"label {name}: the exposition allows {sorted(values)}, the catalogue/docs say "
                       f"{sorted(expected or ())}")
    return out


def test_the_exposition_bounds_the_catalogues_labels_with_the_documented_values() -> None:
    settings = Settings()
    allowed = bounded_label_values(settings)
    assert exposition_disagreements(allowed, METRIC_LABELS, documented_label_values(METRICS_MD), settings) == []


def test_the_exposition_check_fails_on_a_mutated_copy() -> None:
    settings = Settings()
    allowed = bounded_label_values(settings)
    documented = documented_label_values(METRICS_MD)
    widened = dict(allowed, category=allowed["category"] | {"XYZ"})
    assert exposition_disagreements(widened, METRIC_LABELS, documented, settings) == [
        f"label category: the exposition allows {sorted(widened['category'])}, the catalogue/docs say "
        f"{sorted(documented['category'])}"]
    missing = {k: v for k, v in allowed.items() if k != "end_route"}
    assert exposition_disagreements(missing, METRIC_LABELS, documented, settings)[0].startswith("bounded labels")
    no_age_band = {m: tuple(n for n in ls if n != "age_band") for m, ls in METRIC_LABELS.items()}
    assert exposition_disagreements(allowed, no_age_band, documented, settings) == [
        "label age_band: bounded by the exposition but no catalogue metric carries it"]


# -- the recording rules -------------------------------------------------------------------------

def test_the_committed_recording_rules_are_what_the_catalogue_generates() -> None:
    assert build.RATIO_RULES_FILE not in build.stale_files()


def test_the_rules_check_fails_when_a_reference_or_ratio_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = measures.recording_rules()
    rules["groups"][0]["rules"][0]["expr"] += " * 2"
    monkeypatch.setattr(build, "recording_rules", lambda: rules)
    assert build.RATIO_RULES_FILE in build.stale_files()


# -- the boards ----------------------------------------------------------------------------------

def board_disagreements(boards: dict[str, dict]) -> list[str]:
    """Every ratio's indicator is in the catalogue; every "England 2025" line on a committed board
    is the catalogue's reference of the panel's indicator; every ratio with a reference shows it."""
    out = [f"ratio {r.name}: indicator {r.indicator} not in the catalogue"
           for r in measures.RATIOS if r.indicator not in INDICATOR_BY_ID]
    shown: set[str] = set()
    for uid, board in sorted(boards.items()):
        for panel in board["panels"]:
            indicator = panel.get("title", "").split(" ", 1)[0]
            for target in panel.get("targets", []):
                if target.get("legendFormat") != "England 2025":
                    continue
                value = float(re.fullmatch(r"vector\(([-0-9.e]+)\)", target["expr"]).group(1))
                known = INDICATOR_BY_ID.get(indicator)
                if known is None or known.national_reference != value:
                    out.append(f"{uid} {panel['title']!r}: England line {value}, catalogue "
                               f"{known.national_reference if known else 'no such indicator'}")
                shown.add(indicator)
    out += [f"ratio {r.name}: reference {r.reference} on no board"
            for r in measures.RATIOS if r.reference is not None and r.indicator not in shown]
    return out


def committed_boards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(build.GENERATED_DIR.glob("*.json"))}


def test_the_boards_show_the_catalogues_national_references() -> None:
    assert [p for p in build.stale_files() if p.suffix == ".json"] == []
    assert board_disagreements(committed_boards()) == []


def test_the_board_check_fails_on_a_mutated_copy() -> None:
    boards = committed_boards()
    text = json.dumps(boards).replace('"vector(0.857)"', '"vector(0.9)"')
    assert board_disagreements(json.loads(text)) == [
        f"{uid} 'P2 Assessments completed within 45 working days': England line 0.9, catalogue 0.857"
        for uid in sorted(boards) if '"vector(0.857)"' in json.dumps(boards[uid])]


# -- the packs -----------------------------------------------------------------------------------

def pack_disagreements(pack_measures, sources: dict[str, str]) -> list[str]:
    """Every measure of the packs names a catalogue indicator and shows its reference (per 10,000
    children when the measure is a rate); every reference shown has its year and source."""
    out = []
    for m in pack_measures:
        ind = INDICATOR_BY_ID.get(m.indicator)
        if ind is None:
            out.append(f"pack measure {m.key}: indicator {m.indicator} not in the catalogue")
            continue
        if isinstance(m, packs.Breakdown):  # a breakdown shows counts by a label, no reference
            continue
        expected = england_rate(ind.national_reference) if m.per_10k else ind.national_reference
        if m.reference != expected:
            out.append(f"pack measure {m.key}: reference {m.reference}, catalogue {expected}")
        if m.reference is not None and not m.per_10k and not sources.get(m.indicator):
            out.append(f"pack measure {m.key}: reference {m.reference} without its year and source")
    out += [f"reference source for {k}: no such indicator with a reference" for k in sorted(sources)
            if INDICATOR_BY_ID.get(k) is None or INDICATOR_BY_ID[k].national_reference is None]
    return out


def test_the_packs_measures_use_the_catalogues_indicators_and_references() -> None:
    assert pack_disagreements(packs.CABINET_MEASURES + packs.BREAKDOWNS, REFERENCE_SOURCES) == []


def test_the_packs_check_fails_on_a_mutated_copy() -> None:
    wrong = packs.Measure("x", "I99", "inputs", "count", "casewatch_contacts")
    p2 = next(m for m in packs.CABINET_MEASURES if m.indicator == "P2")
    assert pack_disagreements((wrong, p2), {k: v for k, v in REFERENCE_SOURCES.items() if k != "P2"}) == [
        "pack measure x: indicator I99 not in the catalogue",
        f"pack measure {p2.key}: reference 0.857 without its year and source"]
    assert pack_disagreements((), dict(REFERENCE_SOURCES, I1="England 2025")) == [
        "reference source for I1: no such indicator with a reference"]


def test_the_catalogue_has_one_copy_of_each_name() -> None:
    """The old homes re-export the catalogue's objects rather than holding copies."""
    from casewatch.domain import indicators
    assert indicators.INDICATORS is catalogue.INDICATORS
    assert indicators.FLOW_METRICS is catalogue.FLOW_METRICS and indicators.MAX_METRICS is catalogue.MAX_METRICS
    assert packs.REFERENCE_SOURCES is catalogue.REFERENCE_SOURCES
    assert packs.INDICATOR_BY_ID is catalogue.INDICATOR_BY_ID


# -- the alert thresholds ------------------------------------------------------------------------
# The catalogue's THRESHOLDS are the one source: the rule file is generated from them, and the alert
# rules (what they compare, which way, the national figures and working days their text quotes),
# the boards' bands and docs/definitions.md are checked against them.

THRESHOLDS_YML = (ROOT / "prometheus" / "rules" / "casewatch_thresholds.yml").read_text()
ALERTS_YML = (ROOT / "prometheus" / "rules" / "casewatch_alerts.yml").read_text()
DEFINITIONS_MD = (ROOT / "docs" / "definitions.md").read_text()
_PREFIX = "casewatch:threshold:"


def threshold_file_disagreements(text: str, thresholds=catalogue.THRESHOLDS) -> list[str]:
    """The rule file records exactly the catalogue's thresholds with their values, and is the text
    the catalogue generates (comments included)."""
    import yaml
    recorded = {}
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            match = re.fullmatch(r"vector\((-?[0-9.]+)\)", str(rule.get("expr", "")).strip())
            recorded[rule["record"].removeprefix(_PREFIX)] = float(match.group(1)) if match else rule.get("expr")
    values = {t.name: t.value for t in thresholds}
    out = [f"{n}: in the catalogue, not in the rule file" for n in values if n not in recorded]
    out += [f"{n}: in the rule file, not in the catalogue" for n in recorded if n not in values]
    out += [f"{n}: {recorded[n]} in the rule file, {values[n]} in the catalogue"
            for n in values if n in recorded and recorded[n] != values[n]]
    if not out and text != catalogue.thresholds_rule_file():
        out.append("the rule file is not the catalogue's text: run "
                   "`python -m casewatch.domain.catalogue > prometheus/rules/casewatch_thresholds.yml`")
    return out


def test_the_thresholds_rule_file_is_what_the_catalogue_generates() -> None:
    assert threshold_file_disagreements(THRESHOLDS_YML) == []


def test_the_thresholds_file_check_fails_on_a_mutated_copy() -> None:
    assert "\n        expr: vector(22)\n" in THRESHOLDS_YML
    assert threshold_file_disagreements(THRESHOLDS_YML.replace("expr: vector(22)", "expr: vector(23)")) == [
        "caseload_page: 23.0 in the rule file, 22 in the catalogue"]
    renamed = THRESHOLDS_YML.replace("casewatch:threshold:caseload_page", "casewatch:threshold:caseload_red")
    assert threshold_file_disagreements(renamed) == ["caseload_page: in the catalogue, not in the rule file",
                                                     "caseload_red: in the rule file, not in the catalogue"]
    assert threshold_file_disagreements(THRESHOLDS_YML.replace("# ", "#  ", 1))[0].startswith(
        "the rule file is not the catalogue's text")


_COMPARED = re.compile(r"(<=|>=|<|>|\*)\s*on\(\)\s*group_left\(\)\s*casewatch:threshold:([a-z0-9_]+)")
_FIRES = {"<": "below", ">": "above", ">=": "at or above"}
# The clock an alert's measure is about: the working days its text quotes are that clock's limit,
# or the limit plus a working-days threshold the alert compares with.
_MEASURE_CLOCK = {"assessment_timeliness": "assessment", "icpc_timeliness": "icpc", "icpc_overdue": "icpc",
                  "lac_review_first_overdue": "lac_review_first", "assessment_overdue": "assessment"}


def alert_rule_disagreements(text: str, thresholds=catalogue.THRESHOLDS) -> list[str]:
    """Every threshold an alert compares with is the catalogue's, compared the catalogue's way
    (``fires``); a "(national X)" in its text is the reference of the compared threshold's indicator;
    every "N working days" is its clock's limit (or the limit plus the compared working-days
    threshold); every threshold no alert uses bands a board ratio (dashboards/measures.py), and a
    band's direction is the ratio's."""
    import yaml
    from casewatch.domain.clocks import WORKING_DAY_LIMITS
    by_name = {t.name: t for t in thresholds}
    out, used = [], set()
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            alert, expr = rule["alert"], rule["expr"]
            compared = []
            for name in re.findall(r"casewatch:threshold:([a-z0-9_]+)", expr):
                used.add(name)
                if name not in by_name:
                    out.append(f"{alert}: {name} is not in the catalogue")
            for op, name in _COMPARED.findall(expr):
                t = by_name.get(name)
                if t is None:
                    continue
                compared.append(t)
                if op == "*" and t.unit != "factor" or op != "*" and _FIRES.get(op) != t.fires:
                    out.append(f"{alert}: compares '{op}' with {name}, the catalogue says it fires {t.fires}")
            said = " ".join([alert] + [str(v) for v in rule.get("annotations", {}).values()])
            references = {INDICATOR_BY_ID[t.indicator].national_reference for t in compared if t.indicator}
            for number, percent in re.findall(r"\(national ([0-9.]+)(%?)\)", said):
                shown = float(number) / 100 if percent else float(number)
                if not any(abs(shown - r) < 1e-9 for r in references):
                    out.append(f"{alert}: quotes national {number}{percent}, the catalogue's reference is "
                               f"{sorted(references) or 'none'}")
            clock = _MEASURE_CLOCK.get(rule.get("labels", {}).get("measure"))
            limit = WORKING_DAY_LIMITS.get(clock)
            allowed = {limit} | {limit + t.value for t in compared if t.unit == "working days" and limit}
            for number in re.findall(r"(\d+)(?:[ -]working[ -]days?|WorkingDays)", said):
                if int(number) not in allowed:
                    out.append(f"{alert}: quotes {number} working days, its clock ({clock}) allows "
                               f"{sorted(a for a in allowed if a is not None) or 'none'}")
    ratios = measures.RATIO_BY_NAME
    for t in thresholds:
        base, _, level = t.name.rpartition("_")
        ratio = ratios.get(base) if level in ("warn", "page") else None
        if t.name not in used and ratio is None:
            out.append(f"{t.name}: used by no alert rule and bands no board ratio")
        if ratio is not None and ratio.higher_is_better is not None and (t.fires == "below") != ratio.higher_is_better:
            out.append(f"{t.name}: fires {t.fires}, but the board's ratio {base} has higher_is_better="
                       f"{ratio.higher_is_better}")
        if ratio is not None and t.indicator != ratio.indicator:
            out.append(f"{t.name}: indicator {t.indicator or 'none'}, the board's ratio {base} is {ratio.indicator}")
    return out


def test_the_alert_rules_and_board_bands_agree_with_the_catalogues_thresholds() -> None:
    assert alert_rule_disagreements(ALERTS_YML) == []


def test_the_alert_rules_check_fails_on_a_mutated_copy() -> None:
    from dataclasses import replace
    flipped = ALERTS_YML.replace("> on() group_left() casewatch:threshold:vacancy_rate_page",
                                 "< on() group_left() casewatch:threshold:vacancy_rate_page")
    assert alert_rule_disagreements(flipped) == [
        "VacancyRateAbovePage: compares '<' with vacancy_rate_page, the catalogue says it fires above"]
    national = ALERTS_YML.replace("(national 85.7%)", "(national 86.7%)")
    assert alert_rule_disagreements(national) == [
        f"AssessmentTimelinessBelow{level}: quotes national 86.7%, the catalogue's reference is [0.857]"
        for level in ("Page", "Warn")]
    days = ALERTS_YML.replace("are past 20 working", "are past 21 working")
    assert alert_rule_disagreements(days) == [
        "FirstLacReviewOverdue: quotes 21 working days, its clock (lac_review_first) allows [20]"]
    unknown = ALERTS_YML.replace("casewatch:threshold:caseload_page", "casewatch:threshold:caseload_red")
    assert alert_rule_disagreements(unknown) == ["CaseloadAbovePage: caseload_red is not in the catalogue",
                                                 "CaseloadAbovePage: quotes national 15.2, the catalogue's reference is none"]
    moved = tuple(replace(t, value=20) if t.name == "assessment_overdue_working_days_page" else t
                  for t in catalogue.THRESHOLDS)
    assert alert_rule_disagreements(ALERTS_YML, moved) == [
        "AssessmentOver60WorkingDays: quotes 60 working days, its clock (assessment) allows [45, 65]"] * 2
    unused = catalogue.THRESHOLDS + (catalogue.Threshold("spare_level", 1, "count", "above", "x", "y"),)
    assert alert_rule_disagreements(ALERTS_YML, unused) == ["spare_level: used by no alert rule and bands no board ratio"]
    band = tuple(replace(t, fires="above") if t.name == "care_leavers_eet_warn" else t for t in catalogue.THRESHOLDS)
    assert alert_rule_disagreements(ALERTS_YML, band) == [
        "care_leavers_eet_warn: fires above, but the board's ratio care_leavers_eet has higher_is_better=True"]


def documented_thresholds(text: str) -> dict[str, tuple[float, str]]:
    """name -> (value, when it fires), read from the table of docs/definitions.md's "Alert thresholds
    and board bands": values as written there (85% = 0.85, 5 wd = 5, ×1.3 = 1.3, 7200 s = 7200)."""
    section = text.split("## Alert thresholds and board bands", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z0-9_]+)` \| ([^|]+) \| ([^|]+) \|", line)
        if not match:
            continue
        written = match.group(2).strip()
        number = float(re.search(r"-?[0-9.]+", written).group(0))
        out[match.group(1)] = (number / 100 if written.endswith("%") else number, match.group(3).strip())
    return out


def definitions_disagreements(text: str) -> list[str]:
    documented = documented_thresholds(text)
    out = [f"{t.name}: in the catalogue, not in docs/definitions.md" for t in catalogue.THRESHOLDS
           if t.name not in documented]
    out += [f"{n}: in docs/definitions.md, not in the catalogue" for n in documented
            if n not in catalogue.THRESHOLD_BY_NAME]
    for t in catalogue.THRESHOLDS:
        if t.name in documented and (abs(documented[t.name][0] - t.value) > 1e-9 or documented[t.name][1] != t.fires):
            out.append(f"{t.name}: {documented[t.name]} in docs/definitions.md, {(t.value, t.fires)} in the catalogue")
    return out


def test_docs_definitions_lists_the_catalogues_thresholds() -> None:
    assert definitions_disagreements(DEFINITIONS_MD) == []


def test_the_definitions_check_fails_on_a_mutated_copy() -> None:
    assert definitions_disagreements(DEFINITIONS_MD.replace("| `rereferral_page` | 30% | above |",
                                                            "| `rereferral_page` | 35% | above |")) == [
        "rereferral_page: (0.35, 'above') in docs/definitions.md, (0.3, 'above') in the catalogue"]
    assert definitions_disagreements(DEFINITIONS_MD.replace("| `caseload_warn` | 18 | above |",
                                                            "| `caseload_warn` | 18 | at or above |")) == [
        "caseload_warn: (18.0, 'at or above') in docs/definitions.md, (18, 'above') in the catalogue"]
    assert definitions_disagreements(DEFINITIONS_MD.replace("| `silence_seconds_warn` |", "| `silence_warn` |")) == [
        "silence_seconds_warn: in the catalogue, not in docs/definitions.md",
        "silence_warn: in docs/definitions.md, not in the catalogue"]
