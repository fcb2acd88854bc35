"""The Grafana boards as code: committed JSON up to date, schema basics, suppression on the
published board, RAG bands from the thresholds file, provisioning, and `grafana push` request shape."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from dashboards import panel_queries
from dashboards.boards import rag_steps
from dashboards.build import GENERATED_DIR, stale_files
from dashboards.measures import RATIO_BY_NAME
from dashboards.thresholds import load_thresholds

ROOT = Path(__file__).resolve().parents[3]
UIDS = {"casewatch-workload", "casewatch-activity", "casewatch-activity-published", "casewatch-timeliness",
        "casewatch-pipeline"}


def _boards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in GENERATED_DIR.glob("*.json")}


def _targets(board: dict):
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def test_committed_generated_files_are_up_to_date():
    assert stale_files() == [], "run `casewatch dashboards build`"


def test_the_five_boards_have_stable_uids():
    boards = _boards()
    assert set(boards) == UIDS
    assert all(b["uid"] == uid for uid, b in boards.items())


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_schema_basics(uid):
    board = _boards()[uid]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    occupied = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
    for _, target in _targets(board):
        assert target["expr"].strip() and target["refId"]
        assert target["datasource"]["uid"] == "prometheus"
    defined = {v["name"] for v in board["templating"]["list"]}
    used = {m for _, t in _targets(board) for m in re.findall(r"\$(\w+)", t["expr"])}
    used |= {m for v in board["templating"]["list"] for m in re.findall(r"\$(\w+)", v.get("definition", ""))}
    assert used <= defined, used - defined
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            assert var["query"]["query"].startswith("label_values(") and var["datasource"]["uid"] == "prometheus"


def test_la_and_team_variables_on_the_operational_boards():
    for uid in ("casewatch-workload", "casewatch-activity", "casewatch-timeliness"):
        names = [v["name"] for v in _boards()[uid]["templating"]["list"]]
        assert names[:2] == ["la", "team"]


def test_published_board_shows_only_suppressed_authority_figures():
    board = _boards()["casewatch-activity-published"]
    assert "team" not in {v["name"] for v in board["templating"]["list"]}
    for panel, target in _targets(board):
        expr = target["expr"]
        assert "team=~" not in expr
        if expr.startswith("casewatch:"):
            assert re.match(r"casewatch:\w+:ratio_la_published\{", expr), expr
        elif not expr.startswith("vector("):
            mapping = panel["fieldConfig"]["defaults"]["mappings"]
            assert mapping == [{"type": "range", "options": {"from": 1, "to": 5, "result": {"text": "<6"}}}]


def test_activity_board_has_inputs_processes_outputs_rows_and_national_reference_lines():
    board = _boards()["casewatch-activity"]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Inputs", "Processes", "Outputs", "Dated local changes"]
    p2 = [p for p in board["panels"] if p["title"].startswith("P2 ")][0]
    exprs = [t["expr"] for t in p2["targets"]]
    assert "vector(0.857)" in exprs
    assert 'casewatch:assessment_timeliness:ratio{la=~"$la", team=~"$team", window="$window"}' in exprs


def test_rag_bands_come_from_the_thresholds_file():
    t = load_thresholds()
    assert rag_steps(RATIO_BY_NAME["assessment_timeliness"], t) == [(None, "red"), (0.75, "#EAB839"), (0.85, "green")]
    assert rag_steps(RATIO_BY_NAME["caseload"], t) == [(None, "green"), (18, "#EAB839"), (22, "red")]
    assert rag_steps(RATIO_BY_NAME["cp_review_timeliness"], t) == [(None, "#EAB839"), (0.95, "green")]
    assert rag_steps(RATIO_BY_NAME["s47_to_icpc"], t) is None


def test_workload_board_compares_demand_with_the_same_period_last_year():
    exprs = [t["expr"] for _, t in _targets(_boards()["casewatch-workload"])]
    assert 'sum(casewatch_referrals{la=~"$la", team=~"$team", window="28d"} offset 52w)' in exprs


def test_every_recorded_series_a_board_uses_is_recorded():
    rules = yaml.safe_load((ROOT / "prometheus" / "rules" / "casewatch_ratios.yml").read_text())
    records = {r["record"] for g in rules["groups"] for r in g["rules"]}
    for board in _boards().values():
        for _, target in _targets(board):
            for name in re.findall(r"casewatch:[a-z0-9_]+:[a-z_]+", target["expr"]):
                assert name in records, name


def test_panel_queries_substitute_every_variable():
    queries = panel_queries()
    assert {uid for uid, _, _ in queries} == UIDS
    assert all("$" not in expr for _, _, expr in queries)
    assert ("casewatch-timeliness", "Overdue by process",
            'sum by (process) (casewatch_clocks_overdue{la=~".*", team=~".*"})') in queries


def test_provisioning_files():
    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == "prometheus" and source["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/casewatch.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_cli_check_passes_on_the_committed_files():
    from casewatch.cli import main
    assert main(["dashboards", "check"]) == 0


class _FakeGrafana(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict | None, str | None]] = []

    def _record(self, body):
        self.requests.append((self.command, self.path, body, self.headers.get("Authorization")))

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._record(None)
        self._reply(404, {"message": "folder not found"})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._record(body)
        self._reply(200, {"status": "success", "uid": body.get("uid") or body.get("dashboard", {}).get("uid")})

    def log_message(self, *args):
        pass


def test_grafana_push_creates_folders_and_overwrites_each_board():
    # No Grafana can run here: a fake server checks the shape of the requests only.
    _FakeGrafana.requests = []
    server = HTTPServer(("127.0.0.1", 0), _FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from casewatch.cli import main
        assert main(["grafana", "push", "--url", f"http://127.0.0.1:{server.server_port}",
                     "--token", "test-token"]) == 0
    finally:
        server.shutdown()
    reqs = _FakeGrafana.requests
    assert all(auth == "Bearer test-token" for _, _, _, auth in reqs)
    folders = [b for m, p, b, _ in reqs if m == "POST" and p == "/api/folders"]
    assert sorted(f["uid"] for f in folders) == ["casewatch", "casewatch-published"]
    boards = [b for m, p, b, _ in reqs if m == "POST" and p == "/api/dashboards/db"]
    assert {b["dashboard"]["uid"] for b in boards} == UIDS
    assert all(b["overwrite"] is True for b in boards)
    by_uid = {b["dashboard"]["uid"]: b["folderUid"] for b in boards}
    assert by_uid["casewatch-activity-published"] == "casewatch-published"
    assert by_uid["casewatch-workload"] == "casewatch"


def test_grafana_push_adds_the_dated_local_changes_as_tagged_annotations():
    """dashboards/local_changes.yaml's changes become organisation annotations tagged
    casewatch-local-change and the LA code, at midday UTC of the change's day."""
    from datetime import datetime, timezone
    from dashboards.local_changes import load_local_changes
    _FakeGrafana.requests = []
    server = HTTPServer(("127.0.0.1", 0), _FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from casewatch.cli import main
        assert main(["grafana", "push", "--url", f"http://127.0.0.1:{server.server_port}",
                     "--token", "test-token"]) == 0
    finally:
        server.shutdown()
    posted = [b for m, p, b, _ in _FakeGrafana.requests if m == "POST" and p == "/api/annotations"]
    changes = load_local_changes()
    assert len(posted) == len(changes) >= 1
    stockton = [b for b in posted if b["text"] == "revised referral protocol"]
    assert stockton and stockton[0]["tags"] == ["casewatch-local-change", "E06000004"]
    # 4 November 2013, the day the Stockton referral protocol changed
    assert stockton[0]["time"] == int(datetime(2013, 11, 4, 12, tzinfo=timezone.utc).timestamp() * 1000)


def test_local_changes_are_annotations_on_the_activity_and_workload_boards_with_a_before_after_panel():
    from dashboards.local_changes import month_end_instants, LocalChange
    from datetime import date, datetime, timezone
    boards = {b["uid"]: b for b in (json.loads(p.read_text()) for p in (ROOT / "dashboards/generated").glob("*.json"))}
    for uid in ("casewatch-activity", "casewatch-workload"):
        (annotation,) = boards[uid]["annotations"]["list"]
        assert annotation["target"]["tags"] == ["casewatch-local-change"]
    titles = [p["title"] for p in boards["casewatch-activity"]["panels"]]
    assert any(t.startswith("Referrals by agency: 3 months before and after revised referral protocol") for t in titles)
    # a change on 4 Nov 2013: before = Aug, Sep, Oct 2013; after = Dec 2013, Jan, Feb 2014 (month ends, 22:00 UTC)
    before, after = month_end_instants(LocalChange("E06000004", date(2013, 11, 4), "x"))
    as_dates = lambda ts: [datetime.fromtimestamp(t, timezone.utc).date().isoformat() for t in ts]
    assert as_dates(before) == ["2013-08-31", "2013-09-30", "2013-10-31"]
    assert as_dates(after) == ["2013-12-31", "2014-01-31", "2014-02-28"]


def test_a_local_change_with_a_name_or_a_bad_date_is_refused_in_one_sentence(tmp_path):
    import pytest
    from dashboards.local_changes import LocalChangesError, load_local_changes
    bad = tmp_path / "changes.yaml"
    bad.write_text("changes:\n  - {la: E06000004, date: 2013-11-04, title: \"protocol agreed with Jane <Doe>\"}\n")
    with pytest.raises(LocalChangesError, match="title must be"):
        load_local_changes(bad)
    bad.write_text("changes:\n  - {la: E06000004, date: 4 Nov 2013, title: revised protocol}\n")
    with pytest.raises(LocalChangesError, match="date must be YYYY-MM-DD"):
        load_local_changes(bad)


# --- noValue, definitions, the SDK ---------------------------------------------------------------
# What a panel shows when its query returns nothing, worked out here from the panel's own queries:
# a ratio (a recorded :ratio series, or a sum over a sum) is absent when its denominator is 0 ("n/a");
# on the published board a ratio is also absent when suppressed; everything else counts something (0).
SPECIAL_NO_VALUE = {("casewatch-pipeline", "Age of the newest event"): "no events",
                    ("casewatch-pipeline", "Bank-holiday calendar covers until"): "unknown"}


def _expected_no_value(uid: str, panel: dict) -> str:
    exprs = [t["expr"] for t in panel["targets"]]
    if (uid, panel["title"]) in SPECIAL_NO_VALUE:
        return SPECIAL_NO_VALUE[(uid, panel["title"])]
    if any(re.search(r"casewatch:\w+:ratio_la_published\{", e) for e in exprs):
        return "suppressed"
    if any(re.search(r"casewatch:\w+:ratio(_la)?\{", e) or re.search(r"\) / \(sum\(", e) for e in exprs):
        return "n/a"
    return "0"


def test_every_panel_has_the_right_no_value():
    seen = set()
    for uid, board in _boards().items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            expected = _expected_no_value(uid, panel)
            assert panel["fieldConfig"]["defaults"].get("noValue") == expected, (uid, panel["title"])
            seen.add((uid, expected))
    # every kind occurs where it should (so the rule above is not vacuous)
    assert {("casewatch-activity-published", "suppressed"), ("casewatch-activity-published", "0"),
            ("casewatch-activity", "n/a"), ("casewatch-activity", "0"), ("casewatch-workload", "n/a"),
            ("casewatch-timeliness", "0"), ("casewatch-pipeline", "no events")} <= seen
    assert not {u for u, v in seen if v == "suppressed"} - {"casewatch-activity-published"}


def test_published_counts_show_zero_and_small_counts_as_under_six():
    board = _boards()["casewatch-activity-published"]
    i1 = [p for p in board["panels"] if p["title"] == "I1 Contacts"][0]
    assert i1["fieldConfig"]["defaults"]["noValue"] == "0"
    assert i1["fieldConfig"]["defaults"]["mappings"][0]["options"] == {"from": 1, "to": 5, "result": {"text": "<6"}}


def test_descriptions_point_at_our_definitions_and_nothing_outside_the_repository():
    definitions = (ROOT / "docs" / "definitions.md").read_text()
    ids_defined = set(re.findall(r"^\| ([IPO]\d+[a-z]?) ", definitions, flags=re.M))
    for path in GENERATED_DIR.glob("*.json"):
        text = path.read_text()
        assert "../shared" not in text and "shared/external" not in text, path.name
    indicator_panels = 0
    for uid, board in _boards().items():
        for panel in board["panels"]:
            m = re.match(r"([IPO]\d+[a-z]?) ", panel["title"])
            if panel["type"] == "row" or not m:
                continue
            indicator_panels += 1
            assert m.group(1) in ids_defined, (uid, panel["title"])
            assert "docs/definitions.md" in panel["description"], (uid, panel["title"])
    assert indicator_panels > 50


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_each_board_is_a_grafana_foundation_sdk_dashboard(uid):
    """The committed JSON reads back into the SDK's dashboard model unchanged, apart from the query
    variables' ``definition`` (a field the SDK's model lacks, added by dashboards/builder.py)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard
    register_default_plugins()
    board = _boards()[uid]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable.pop("definition") == variable["query"]["query"]
    assert json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder)) == board
