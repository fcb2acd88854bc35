"""The packs end to end on a real Prometheus (tests/reports/conftest.py): the CLI writes HTML and a
PDF printed by headless Chromium; the PDF's text (pdftotext) carries every measure of the template
with its period values, national reference and mark; each figure equals a PromQL query this test
writes itself against the same Prometheus; the published pack hides no cell that a reader could
work back from a total and its other parts.
"""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml
from lxml import html as lxml_html

from casewatch.domain.indicators import INDICATORS
from casewatch.packs.catalogue import CABINET_MEASURES
from tests.reports.conftest import AS_OF, LAS, PERIOD

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
LA = LAS[0]
THIS, PREVIOUS, YEAR_BEFORE = date(2026, 9, 30), date(2026, 6, 30), date(2025, 9, 30)
# The fixture's authorities have 3,000 children each (tests/reports/conftest.py): the packs are told so.
POPULATION = 3000
ENV = {"CASEWATCH_CHILD_POPULATION": ",".join(f"{la}={POPULATION}" for la in LAS)}
# England per 10,000 children aged 0-17 at 31 March 2025: looked after 67 (DfE, published); CIN and
# CP plans worked by hand from the national counts over 12.19 million children (402,400 -> 330,
# 49,420 -> 40.5, printed 41).
ENGLAND_PER_10K = {"O1": "330", "O2": "41", "O4": "67"}
THRESHOLDS = {r["record"].split(":")[-1]: float(re.search(r"vector\(([\d.]+)\)", r["expr"]).group(1))
              for g in yaml.safe_load((REPO / "prometheus/rules/casewatch_thresholds.yml").read_text())["groups"]
              for r in g["rules"]}


def casewatch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "casewatch.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **ENV, **(env or {})})


def query(url: str, expr: str, day: date) -> float | None:
    at = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())  # the day's sample
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr, 'time': at})}",
                                timeout=30) as resp:
        body = json.load(resp)
    assert body["status"] == "success"
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def expected(url: str, m, day: date, window: str | None) -> float | None:
    """The figure by this test's own PromQL. Flow counts: the window series on the day; snapshots:
    the series on the day; ratios: the recording rules' LA numerator over LA denominator
    (docs/metrics.md). The test days all hold figures, so an absent series is 0."""
    la = f'la="{LA}"'
    win = f', window="{window}"' if window else ""
    sel = f", {m.selector}" if m.selector else ""
    if m.kind == "count":
        return query(url, f"sum({m.source}{{{la}{win}{sel}}})", day) or 0.0
    if m.kind == "stock" and m.per_10k:
        return (query(url, f"sum({m.source}{{{la}{sel}}})", day) or 0.0) * 10_000 / POPULATION
    if m.kind == "stock":
        return query(url, f"sum({m.source}{{{la}{sel}}})", day) or 0.0
    flow_den = m.source not in ("turnover",)   # turnover: leavers in the window over in-post FTE now
    num = query(url, f"sum(casewatch:{m.source}:numerator_la{{{la}{win if m.kind == 'ratio' else ''}{sel}}})", day) or 0.0
    den_sel = sel if m.selector.startswith("age_band") else ""
    den = query(url, f"sum(casewatch:{m.source}:denominator_la{{{la}{win if m.kind == 'ratio' and flow_den else ''}{den_sel}}})",
                day) or 0.0
    return None if den == 0 else num / den


def written(m, value: float | None) -> str:
    if value is None:
        return "z"
    if m.kind in ("ratio", "stock_ratio"):
        return f"{value:.1f}" if m.source == "caseload" else f"{value * 100:.1f}%"
    if m.per_10k:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def expected_mark(m, value: float | None, denominator_ok: bool = True) -> str:
    key = m.threshold
    if not key:
        return "no threshold"
    if value is None:
        return "no data"
    if not denominator_ok:
        return "too few to mark"
    higher_is_better = key in ("assessment_timeliness", "icpc_timeliness", "cp_review_timeliness",
                               "lac_review_timeliness", "care_leavers_eet", "care_leavers_suitable_accommodation",
                               "lac_long_term_stability")
    worse = (lambda v, t: v < t) if higher_is_better else (lambda v, t: v > t)
    if f"{key}_page" in THRESHOLDS and worse(value, THRESHOLDS[f"{key}_page"]):
        return "Red"
    if f"{key}_warn" in THRESHOLDS and worse(value, THRESHOLDS[f"{key}_warn"]):
        return "Amber"
    return "Green"


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def pages(pdf: Path) -> tuple[int, float, float]:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))
    w, h = map(float, re.search(r"^Page size:\s+([\d.]+) x ([\d.]+)", out, re.M).groups())
    return n, w, h


def rows_of(html_file: Path) -> dict[str, list[str]]:
    doc = lxml_html.fromstring(html_file.read_text(encoding="utf-8"))
    out = {}
    for tr in doc.xpath("//table//tr[th[@scope='row']]"):
        head = " ".join(tr.xpath("./th")[0].text_content().split())
        out[head] = [" ".join(td.text_content().split()) for td in tr.xpath("./td")]
    return out


@pytest.fixture(scope="module")
def cabinet(pack_prometheus, tmp_path_factory):
    out = tmp_path_factory.mktemp("cabinet")
    done = casewatch("report", "cabinet", "--period", PERIOD, "--la", LA, "--prometheus", pack_prometheus.url,
                     "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out / f"cabinet-{LA}-{PERIOD}.html", out / f"cabinet-{LA}-{PERIOD}.pdf"


def test_cabinet_pdf_has_every_measure_with_the_prometheus_figures(pack_prometheus, cabinet):
    html_file, pdf = cabinet
    n, width, height = pages(pdf)
    assert n >= 4 and height > width                     # A4 portrait, several pages
    text = pdf_text(pdf)
    lines = text.splitlines()
    rows = rows_of(html_file)
    # Inputs, processes, outputs in the template's order.
    assert text.index("Inputs: demand") < text.index("Processes: timeliness") < text.index("Outputs: caseload")
    references = {i.id: i.national_reference for i in INDICATORS}
    for m in CABINET_MEASURES:
        this = expected(pack_prometheus.url, m, THIS, "quarter" if m.kind in ("count", "ratio") else None)
        before = expected(pack_prometheus.url, m, PREVIOUS, "quarter" if m.kind in ("count", "ratio") else None)
        year = expected(pack_prometheus.url, m, YEAR_BEFORE, "quarter" if m.kind in ("count", "ratio") else None)
        rolling = expected(pack_prometheus.url, m, THIS, "12m") if m.kind in ("count", "ratio") else "z"
        want = [written(m, this), written(m, before), written(m, year),
                rolling if rolling == "z" else written(m, rolling)]
        head = m.title if m.indicator == "DRIFT" else f"{m.indicator} {m.title}"   # drift: a local measure, no id
        assert rows[head][:4] == want, (m.key, rows[head][:4], want)
        # the PDF: the row's lines (a title may wrap) carry the same four figures in order, the
        # England reference and the mark
        same_id = [x.key for x in CABINET_MEASURES if x.indicator == m.indicator]
        anchor = "Drift:" if m.indicator == "DRIFT" else m.indicator
        starts = [i for i, line in enumerate(lines) if line.split()[:1] == [anchor]]
        start = starts[same_id.index(m.key)]
        window = " ".join(lines[max(0, start - 3):start + 5])
        tokens = window.split()
        positions = [tokens.index(v) if v in tokens else -1 for v in want]
        assert -1 not in positions, (m.key, want, window)
        ref = references[m.indicator]
        if m.per_10k:
            assert ENGLAND_PER_10K[m.indicator] in tokens and "England" in window, (m.key, window)
        elif ref is not None:
            ref_text = (f"{ref * 100:.1f}%" if (m.kind in ("ratio", "stock_ratio") and m.source != "caseload")
                        else f"{ref:,.1f}" if ref != int(ref) else f"{ref:,.0f}")
            assert ref_text in window, (m.key, ref_text)
            assert m.reference_source.split()[0].strip(",") in window, m.key  # "England" (year, source)
        else:
            assert "none" in tokens and "published" in tokens, m.key
        den_ok = True
        if m.threshold and m.kind == "ratio":
            den = query(pack_prometheus.url, f'sum(casewatch:{m.source}:denominator_la{{la="{LA}", window="quarter"}})',
                        THIS) or 0
            den_ok = den >= THRESHOLDS["min_denominator"]
        if m.threshold == "unallocated":
            cp = query(pack_prometheus.url, f'sum(casewatch_unallocated_cases{{la="{LA}", case_type="cp"}})', THIS) or 0
            mark = "Red" if cp > 0 else "Amber" if (this or 0) > 0 else "Green"
        else:
            mark = expected_mark(m, this, den_ok)
        assert rows[head][5] == mark, (m.key, rows[head][5], mark)
        assert mark in window, (m.key, mark)
    # a sentence of the generated commentary, worked from the same queries
    referrals = [m for m in CABINET_MEASURES if m.key == "referrals"][0]
    now, then = expected(pack_prometheus.url, referrals, THIS, "quarter"), \
        expected(pack_prometheus.url, referrals, PREVIOUS, "quarter")
    verb = "rose" if now > then else "fell" if now < then else "was unchanged"
    assert f"Referrals {verb}" in " ".join(text.split())
    # every chart has alt text naming its 8 quarters
    doc = lxml_html.fromstring(html_file.read_text(encoding="utf-8"))
    imgs = doc.xpath("//img")
    assert imgs and all("last 8 quarters" in (img.get("alt") or "") for img in imgs)
    assert doc.xpath("//th[@scope='col']") and doc.xpath("//h1") and doc.xpath("//h2")


def test_cabinet_two_month_period_sums_the_months(pack_prometheus, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Processes\nTwo conferences waited for a chair.\n# Outputs\nSibling groups entered care.\n")
    done = casewatch("report", "cabinet", "--period", "2026-07/08", "--la", LA, "--prometheus",
                     pack_prometheus.url, "--out", str(tmp_path), "--no-pdf", "--commentary", str(notes))
    assert done.returncode == 0, done.stderr[-3000:]
    doc = lxml_html.fromstring((tmp_path / f"cabinet-{LA}-2026-07-08.html").read_text(encoding="utf-8"))
    processes = " ".join(doc.xpath("//section[@aria-labelledby='block-processes']")[0].text_content().split())
    outputs = " ".join(doc.xpath("//section[@aria-labelledby='block-outputs']")[0].text_content().split())
    assert "Two conferences waited for a chair." in processes and "Sibling groups" not in processes
    assert "Sibling groups entered care." in outputs
    rows = rows_of(tmp_path / f"cabinet-{LA}-2026-07-08.html")
    # July and August: each month's figure is the month window on its last day (docs/metrics.md)
    url = pack_prometheus.url
    referrals = sum(query(url, f'sum(casewatch_referrals{{la="{LA}", window="month"}})', d) or 0
                    for d in (date(2026, 7, 31), date(2026, 8, 31)))
    rr_num = sum(query(url, f'sum(casewatch:rereferral:numerator_la{{la="{LA}", window="month"}})', d) or 0
                 for d in (date(2026, 7, 31), date(2026, 8, 31)))
    assert rows["I3 Referrals"][0] == f"{referrals:,.0f}"
    assert rows["I7 Re-referral rate"][0] == f"{rr_num / referrals * 100:.1f}%"
    year_before = sum(query(url, f'sum(casewatch_referrals{{la="{LA}", window="month"}})', d) or 0
                      for d in (date(2025, 7, 31), date(2025, 8, 31)))
    assert rows["I3 Referrals"][2] == f"{year_before:,.0f}"


def test_a_period_without_data_says_what_is_missing(pack_prometheus, tmp_path):
    done = casewatch("report", "cabinet", "--period", "2023-Q1", "--la", LA, "--prometheus",
                     pack_prometheus.url, "--out", str(tmp_path), "--no-pdf")
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / f"cabinet-{LA}-2023-Q1.html").read_text(encoding="utf-8")
    assert "What was missing" in page and "Referrals: no figure in Prometheus for 2023-Q1" in page
    rows = rows_of(tmp_path / f"cabinet-{LA}-2023-Q1.html")
    assert rows["I3 Referrals"][:4] == ["x", "x", "x", "x"]     # not zeros
    assert "missing: Referrals" in done.stdout


def _recovered(total: float, visible: list[float], hidden: int) -> bool:
    """Could a reader pin one suppressed cell down? Every assignment of 1..5 (what a primary 'c'
    stands for) or, more widely, 1..total to the hidden cells that makes the parts add up to the
    total is tried; a cell is recovered when it takes one value only in all of them."""
    remainder = total - sum(visible)
    for top in (5, int(max(remainder, 1))):
        solutions = [s for s in itertools.product(range(1, top + 1), repeat=hidden) if sum(s) == remainder]
        if solutions and any(len({s[i] for s in solutions}) == 1 for i in range(hidden)):
            return True
    return False


def test_suppression_defeats_a_reader_with_the_totals():
    from casewatch.packs.suppression import Group, suppress
    cells = {"total": 93, "a": 3, "b": 40, "c": 50}
    primary_only = {k: ("c" if 0 < v <= 5 else v) for k, v in cells.items()}
    # with primary suppression only, the 3 comes straight back: 93 - 40 - 50
    assert _recovered(93, [40, 50], 1)
    shown = suppress(cells, [Group("total", ("a", "b", "c"))])
    assert primary_only["a"] == "c" and shown["a"] == "c" and shown["b"] == "c"
    hidden = [k for k in "abc" if shown[k] == "c"]
    assert not _recovered(93, [cells[k] for k in "abc" if k not in hidden], len(hidden))
    # two hidden ones that must both be 1 (sum 2) are pinned down too: a third goes
    shown = suppress({"t": 30, "x": 1, "y": 1, "z": 28}, [Group("t", ("x", "y", "z"))])
    assert shown["z"] == "c" or shown["t"] == "c"


def test_published_pack_hides_small_numbers_unrecoverably(pack_prometheus, tmp_path):
    done = casewatch("report", "cabinet", "--period", PERIOD, "--la", LA, "--published", "--prometheus",
                     pack_prometheus.url, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    html_file = tmp_path / f"cabinet-{LA}-{PERIOD}-published.html"
    doc = lxml_html.fromstring(html_file.read_text(encoding="utf-8"))
    suppressed_seen = 0
    # 1. no count from 1 to 5 anywhere in a table
    for td in doc.xpath("//td[contains(@class,'num')]"):
        value = td.text_content().strip().replace(",", "")
        if re.fullmatch(r"\d+", value):
            assert not 1 <= int(value) <= 5, value
        suppressed_seen += value == "c"
    assert suppressed_seen > 0                      # the small authority has small numbers to hide
    # 2. every breakdown: total and parts -> no suppressed part can be worked back
    for table in doc.xpath("//table[thead/tr/th[2][normalize-space()='Count']]"):
        cells = {" ".join(tr.xpath("./th")[0].text_content().split()): tr.xpath("./td")[0].text_content().strip()
                 for tr in table.xpath("./tbody/tr")}
        total = cells.pop("Total")
        if total == "c":
            continue
        hidden = [k for k, v in cells.items() if v == "c"]
        if hidden:
            visible = [float(v.replace(",", "")) for v in cells.values() if v != "c"]
            assert not _recovered(float(total.replace(",", "")), visible, len(hidden)), cells
    # 3. every count row: the 12 months are the four quarters of the trend -> no quarter recoverable
    for tr in doc.xpath("//table//tr[td[contains(@class,'chart')]]"):
        tds = [td.text_content().strip() for td in tr.xpath("./td")]
        alt = tr.xpath(".//img")[0].get("alt")
        quarters = re.findall(r"(\d{4}-Q\d) ([^,.]+(?:\.\d)?%?)", alt)
        last4 = [v for _, v in quarters[-4:]]
        if tds[3] in ("z", "c", "x") or any(v.endswith("%") for v in last4) or "." in tds[3]:
            continue
        hidden = [v for v in last4 if v == "c"]
        if hidden:
            visible = [float(v.replace(",", "")) for v in last4 if v != "c"]
            assert not _recovered(float(tds[3].replace(",", "")), visible, len(hidden)), (tds, alt)
    # 4. no child-level detail: no case-system reference in the pack
    page = html_file.read_text(encoding="utf-8")
    assert not re.search(r"\b(LCS|WKR)\d*-\d{6}\b", page)


def test_workload_sheet_one_landscape_page_from_prometheus(pack_prometheus, tmp_path):
    done = casewatch("report", "workload", "--as-of", AS_OF.isoformat(), "--la", LA, "--prometheus",
                     pack_prometheus.url, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    pdf = tmp_path / f"workload-{LA}-{AS_OF.isoformat()}.pdf"
    n, width, height = pages(pdf)
    assert n == 1 and width > height                  # one A4 landscape page
    text = " ".join(pdf_text(pdf).split())
    rows = rows_of(tmp_path / f"workload-{LA}-{AS_OF.isoformat()}.html")
    url = pack_prometheus.url
    teams = [t for t in ("assessment_1", "assessment_2", "cin_1", "cp_1", "lac_1")]
    for team in teams:
        open_cases = query(url, f'sum(casewatch_open_cases{{la="{LA}", team="{team}"}})', AS_OF) or 0
        fte = query(url, f'sum(casewatch_workforce_fte{{la="{LA}", team="{team}", measure="case_holding"}})', AS_OF)
        row = rows[team.replace("_", " ")]
        assert row[0] == f"{open_cases:,.0f}"
        assert row[1] == f"{fte:,.1f}"
        caseload = open_cases / fte
        assert row[2] == f"{caseload:.1f}"
        assert row[3] == ("Red" if caseload > THRESHOLDS["caseload_page"] else
                          "Amber" if caseload > THRESHOLDS["caseload_warn"] else "Green")
        assert f"{team.replace('_', ' ')} {row[0]} {row[1]} {row[2]} {row[3]}" in text
    for case_type, title in (("cp", "Child protection"), ("lac", "Looked after"), ("cin", "Child in need")):
        n_un = query(url, f'sum(casewatch_unallocated_cases{{la="{LA}", case_type="{case_type}"}})', AS_OF) or 0
        assert rows[title][0] == f"{n_un:,.0f}"
    for process, title in (("assessment", "Assessment (45 wd)"), ("icpc", "ICPC (15 wd)")):
        overdue = query(url, f'sum(casewatch_clocks_overdue{{la="{LA}", process="{process}"}})', AS_OF) or 0
        soon = query(url, f'sum(casewatch_clocks_due_soon{{la="{LA}", process="{process}"}})', AS_OF) or 0
        assert rows[title][1:3] == [f"{overdue:,.0f}", f"{soon:,.0f}"]
    now = query(url, f'sum(casewatch_referrals{{la="{LA}", window="28d"}})', AS_OF)
    then = query(url, f'sum(casewatch_referrals{{la="{LA}", window="28d"}})', date(2025, 9, 30))
    assert rows["30 September 2026"] == [f"{now:,.0f}"]
    assert rows["30 September 2025 (a year earlier)"] == [f"{then:,.0f}"]
    # drift by case type and by team (docs/metrics.md: casewatch_drift_cases, _max_workdays)
    for case_type, title in (("cp", "CP plan"), ("lac", "Looked after"), ("cin", "Child in need")):
        n_drift = query(url, f'sum(casewatch_drift_cases{{la="{LA}", case_type="{case_type}"}})', AS_OF) or 0
        assert rows[f"Drift: {title}"][1] == f"{n_drift:,.0f}", (case_type, rows[f"Drift: {title}"])
        if n_drift:
            longest = query(url, f'max(casewatch_drift_max_workdays{{la="{LA}", case_type="{case_type}"}})', AS_OF)
            assert rows[f"Drift: {title}"][2] == f"{longest:,.0f}"
    assert rows["Drift: CP plan"][0] == "10" and rows["Drift: Child in need"][0] == "20"   # the default limits
    drifting = 0.0
    for team in teams:
        n = query(url, f'sum(casewatch_drift_cases{{la="{LA}", team="{team}"}})', AS_OF) or 0
        assert rows[team.replace("_", " ")][9] == f"{n:,.0f}", team
        drifting += n
    assert drifting > 0                                  # the fixture's history has drifting cases


def test_region_sets_published_figures_side_by_side(pack_prometheus, tmp_path):
    done = casewatch("report", "region", "--period", PERIOD, "--la", ",".join(LAS), "--prometheus",
                     pack_prometheus.url, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    pdf = tmp_path / f"region-{PERIOD}.pdf"
    assert pages(pdf)[0] >= 1
    rows = rows_of(tmp_path / f"region-{PERIOD}.html")
    for i, la in enumerate(LAS):
        for metric, head in (("casewatch_referrals", "I3 Referrals"), ("casewatch_icpcs", "P7 ICPCs")):
            v = query(pack_prometheus.url, f'sum({metric}{{la="{la}", window="quarter"}})', THIS) or 0
            assert rows[head][i] == ("c" if 1 <= v <= 5 else f"{v:,.0f}"), (la, head)
    assert rows["I3 Referrals"][len(LAS)].startswith("632,830")
    for i, la in enumerate(LAS):      # looked-after children per 10,000 (3,000 children), hidden with a hidden count
        lac = query(pack_prometheus.url, f'sum(casewatch_lac_open{{la="{la}"}})', THIS) or 0
        assert rows["O4 Looked-after children per 10,000 children"][i] == \
            ("c" if 1 <= lac <= 5 else f"{lac * 10_000 / POPULATION:,.1f}"), la
    assert rows["O4 Looked-after children per 10,000 children"][len(LAS)].startswith("67 ")
    assert "England" in pdf_text(pdf)


def test_cli_mistakes_are_one_sentence(tmp_path):
    for args, words in ((["cabinet", "--period", "2026-Q5"], "not a period"),
                        (["cabinet", "--period", "2026-09/11"], "two consecutive months"),
                        (["workload", "--as-of", "30/09/2026"], "not a date"),
                        (["region", "--period", "2026-Q2", "--la", "E06000004"], "at least two"),
                        (["cabinet", "--period", "2026-Q2", "--la", "Stockton"], "not an ONS"),
                        (["cabinet", "--period", "2026-Q2", "--prometheus", "http://127.0.0.1:9"], "not answering")):
        done = casewatch("report", *args, "--out", str(tmp_path))
        assert done.returncode == 2, (args, done.stderr)
        assert words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
