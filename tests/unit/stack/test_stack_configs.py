"""The config files `casewatch stack up` writes are built as data and dumped (yaml.safe_dump, a Java
properties writer): loaded back, they hold the local stack's addresses and nothing of compose's."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from casewatch.config import Settings
from casewatch.stack import components as c

ROOT = Path(__file__).resolve().parents[3]


def _settings(tmp_path: Path, **kw) -> Settings:
    base = dict(state_dir=tmp_path, host="127.0.0.1", kafka_port=31092, kafka_controller_port=31093,
                prometheus_port=31090, alertmanager_port=31095, engine_metrics_port=31100,
                ingest_port=31180, notifier_port=31181)
    base.update(kw)
    return Settings(**base)


def _targets(config: dict) -> dict[str, list[str]]:
    return {job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]]
            for job in config["scrape_configs"]}


def test_prometheus_yml_scrapes_the_local_ports(tmp_path):
    written = yaml.safe_load(c.render_prometheus_config(_settings(tmp_path)).read_text())
    assert _targets(written) == {"casewatch-engine": ["127.0.0.1:31100"], "casewatch-ingest": ["127.0.0.1:31180"],
                                 "casewatch-notifier": ["127.0.0.1:31181"], "prometheus": ["127.0.0.1:31090"]}
    assert written["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:31095"]
    assert written["rule_files"] == [str(ROOT / "prometheus" / "rules" / "*.yml")]
    # what the compose file keeps is kept
    assert written["global"]["external_labels"] == {"deployment": "casewatch"}
    assert [job["scrape_interval"] for job in written["scrape_configs"] if "scrape_interval" in job] == ["5s"]


def test_prometheus_scrapes_the_read_ports_when_they_are_separate(tmp_path):
    settings = _settings(tmp_path, ingest_read_port=31280, notifier_read_host="127.0.0.3", notifier_read_port=31281)
    written = yaml.safe_load(c.render_prometheus_config(settings, ["127.0.0.1:31101"]).read_text())
    targets = _targets(written)
    assert targets["casewatch-ingest"] == ["127.0.0.1:31280"]
    assert targets["casewatch-notifier"] == ["127.0.0.3:31281"]
    assert targets["casewatch-engine"] == ["127.0.0.1:31100", "127.0.0.1:31101"]


def test_a_compose_target_the_local_stack_does_not_run_is_refused(tmp_path, monkeypatch):
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "prometheus.yml").write_text(yaml.safe_dump(
        {"scrape_configs": [{"job_name": "x", "static_configs": [{"targets": ["elsewhere:1234"]}]}]}))
    monkeypatch.setattr(c, "PROJECT_ROOT", tmp_path)
    with pytest.raises(c.StackError, match="elsewhere:1234"):
        c.prometheus_config(_settings(tmp_path / "state"))


def test_alertmanager_yml_posts_to_the_local_notifiers_webhook(tmp_path):
    settings = _settings(tmp_path, notifier_read_port=31281)  # the webhook stays on the write port
    written = yaml.safe_load(c.render_alertmanager_config(settings).read_text())
    webhooks = {r["name"]: r.get("webhook_configs") for r in written["receivers"]}
    assert set(webhooks) == {"notifier-page", "notifier-warn", "notifier-pipeline", "board-only"}
    assert webhooks["board-only"] is None
    for name in ("notifier-page", "notifier-warn", "notifier-pipeline"):
        [hook] = webhooks[name]
        assert hook["url"] == "http://127.0.0.1:31181/alerts"
        assert hook["send_resolved"] is True and hook["max_alerts"] == 50
        assert hook["http_config"]["authorization"] == {"type": "Bearer",
                                                         "credentials_file": str(tmp_path / "notifier-webhook.secret")}
    assert written["templates"] == [str(ROOT / "prometheus" / "templates" / "casewatch.tmpl")]
    source = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    assert written["route"] == source["route"] and written["inhibit_rules"] == source["inhibit_rules"]


# Java's own reader (java.util.Properties, what Kafka's Utils.loadProps uses) prints every entry as
# the hex of its UTF-16 code units, so nothing is lost or re-escaped on the way back.
READER = """
import java.io.*; import java.util.*;
public class ReadProperties {
  static String hex(String s) { StringBuilder b = new StringBuilder();
    for (char ch : s.toCharArray()) b.append(String.format("%04x", (int) ch)); return b.toString(); }
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    try (InputStream in = new FileInputStream(a[0])) { p.load(in); }
    for (String k : new TreeSet<>(p.stringPropertyNames())) System.out.println(hex(k) + " " + hex(p.getProperty(k)));
  }
}
"""


def _java_load(path: Path, tmp_path: Path) -> dict[str, str]:
    source = tmp_path / "ReadProperties.java"
    source.write_text(READER)
    done = subprocess.run(["java", str(source), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        decode = lambda h: bytes.fromhex(h).decode("utf-16-be", "surrogatepass")  # noqa: E731
        out[decode(key)] = decode(value)
    return out


def test_kafka_server_properties_read_back_by_java(tmp_path):
    settings = _settings(tmp_path / "state dir: #1")
    values = c.kafka_server_properties(settings)
    path = c.write_properties(tmp_path / "server.properties", values)
    loaded = _java_load(path, tmp_path)
    assert loaded["listeners"] == "PLAINTEXT://127.0.0.1:31092,CONTROLLER://127.0.0.1:31093"
    assert loaded["advertised.listeners"] == "PLAINTEXT://127.0.0.1:31092"
    assert loaded["controller.quorum.voters"] == "1@127.0.0.1:31093"
    assert loaded["log.dirs"] == str(tmp_path / "state dir: #1" / "kafka" / "logs")
    assert loaded["auto.create.topics.enable"] == "false"
    assert loaded == values


def test_the_properties_writer_escapes_what_java_would_misread(tmp_path):
    values = {"a key with spaces": "  leading spaces kept", "k=v:x": "#not a comment",
              "!bang": "back\\slash\\", "lines": "one\ntwo\r\tthree", "unicode": "Stockton-on-Tees é ✓ 𝄞",
              "empty": ""}
    path = c.write_properties(tmp_path / "odd.properties", values)
    path.read_text(encoding="ascii")  # ASCII only, as java.util.Properties.load(InputStream) expects
    assert _java_load(path, tmp_path) == values
