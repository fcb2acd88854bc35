"""The parts of the local stack: how each is installed, configured, started and checked.

Everything binds to ``settings.host`` (127.0.0.1 by default). Kafka's jars come from Maven Central
through Maven into ``settings.cache_dir``; Prometheus and Alertmanager are the Debian packages.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from casewatch.config import Settings
from casewatch.stack.exceptions import StackError  # noqa: F401 - also importable from here

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
KAFKA_VERSION = "4.1.1"

APT_PACKAGES = {"prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager",
                "promtool": "prometheus", "amtool": "prometheus-alertmanager",
                # `casewatch report`: the PDF is printed by headless Chromium; poppler-utils gives
                # pdfinfo (page count) and the tests' pdftotext / pdftoppm
                "chromium": "chromium", "pdftotext": "poppler-utils", "pdfinfo": "poppler-utils",
                "pdftoppm": "poppler-utils"}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"not answering ({getattr(exc, 'reason', exc)})"


# ---------------------------------------------------------------------------------------------
# Installation of the real binaries
# ---------------------------------------------------------------------------------------------

def ensure_debian_binaries(names: list[str], log: Callable[[str], None] = print) -> None:
    """Install the Debian packages that provide ``names`` when any is missing (needs root)."""
    missing = sorted({APT_PACKAGES[n] for n in names if shutil.which(n) is None})
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise StackError(f"missing {', '.join(missing)} and no apt-get to install them with")
    log(f"installing Debian packages: {' '.join(missing)} (apt-get)")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise StackError(f"`{' '.join(cmd)}` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def kafka_libs(settings: Settings, log: Callable[[str], None] = print) -> Path:
    """The directory of Kafka's jars, resolved from Maven Central on first use and cached."""
    libs = settings.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is needed once to fetch Kafka's jars from Maven Central")
    if shutil.which("java") is None:
        raise StackError("a Java runtime (java, 17 or newer) is needed to run Kafka")
    libs.mkdir(parents=True, exist_ok=True)
    log(f"resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs} (once)")
    done = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
        capture_output=True, text=True,
    )
    if done.returncode != 0 or not list(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise StackError(f"Maven could not resolve Kafka's jars:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    marker.write_text(KAFKA_VERSION)
    return libs


# ---------------------------------------------------------------------------------------------
# Java properties files (Kafka's server.properties)
# ---------------------------------------------------------------------------------------------

def _escape_properties(text: str, key: bool) -> str:
    """java.util.Properties escaping: backslash, line ends, the separators ('=', ':') and comment
    marks; leading spaces of a value and every space in a key; anything but printable ASCII as \\uXXXX."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif ch == " " and (key or i == 0):
            out.append("\\ ")
        elif ch in "=:#!":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            units = ch.encode("utf-16-be")  # a character beyond the BMP is a surrogate pair
            out.append("".join(f"\\u{int.from_bytes(units[j:j + 2], 'big'):04x}" for j in range(0, len(units), 2)))
        else:
            out.append(ch)
    return "".join(out)


def write_properties(path: Path, values: dict[str, str]) -> Path:
    """Write ``values`` as a Java properties file (ASCII, every key and value escaped)."""
    lines = [f"{_escape_properties(k, key=True)}={_escape_properties(str(v), key=False)}"
             for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


# ---------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------

@dataclass
class Component:
    name: str
    url: str
    prepare: Callable[[], list[str]]          # returns the command line
    health: Callable[[], tuple[bool, str]]
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 90.0
    optional_module: str | None = None        # the casewatch module the part runs (must be importable)
    # The settings (CASEWATCH_* variable -> value) the part is started with: `stack up` compares
    # them with those it was started with and names `stack restart` when they differ.
    config: dict[str, str] = field(default_factory=dict)

    def available(self) -> bool:
        """True; a part whose casewatch module cannot be found stops `stack up` with its name and the fix
        (never left out quietly: a rename would otherwise bring the stack up without, say, the engine)."""
        if self.optional_module is None:
            return True
        import importlib.util
        try:
            found = importlib.util.find_spec(self.optional_module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise StackError(f"the {self.name} part's module {self.optional_module} cannot be found: the "
                             "installation is incomplete or stale; run `./dev up` or `pip install -e .` again")
        return True


def kafka_component(settings: Settings, log: Callable[[str], None] = print) -> Component:
    data_dir = settings.state_dir / "kafka"
    host, port, cport = settings.host, settings.kafka_port, settings.kafka_controller_port

    def prepare() -> list[str]:
        libs = kafka_libs(settings, log)
        data_dir.mkdir(parents=True, exist_ok=True)
        props = data_dir / "server.properties"
        write_properties(props, kafka_server_properties(settings))
        classpath = f"{libs}/*"
        java = ["java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}", "-cp", classpath]
        if not (data_dir / "logs" / "meta.properties").exists():
            done = subprocess.run(
                [*java, "kafka.tools.StorageTool", "format", "-t", new_kafka_cluster_id(),
                 "-c", str(props), "--ignore-formatted"],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return [*java, "kafka.Kafka", str(props)]

    def health() -> tuple[bool, str]:
        ok, why = kafka_answers_metadata(f"{host}:{port}")
        return ok, "broker answers metadata requests" if ok else why

    return Component("kafka", f"kafka://{host}:{port}", prepare, health, start_timeout=120,
                     config=settings_variables(settings, "host", "kafka_port", "kafka_controller_port",
                                               "state_dir", "cache_dir"))


def kafka_server_properties(settings: Settings) -> dict[str, str]:
    """The single-node KRaft broker's server.properties, as data (written by :func:`write_properties`)."""
    host, port, cport = settings.host, settings.kafka_port, settings.kafka_controller_port
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{cport}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(settings.state_dir / "kafka" / "logs"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "-1",
    }


def kafka_answers_metadata(bootstrap: str, timeout_ms: int = 3000, **client_config) -> tuple[bool, str]:
    """Whether a kafka-python admin client (``client_config``: TLS/SASL settings) gets cluster
    metadata from ``bootstrap``; when not, why not (the error's name only)."""
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return False, f"nothing listening on {bootstrap}"
    try:
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                                 api_version_auto_timeout_ms=timeout_ms, **client_config)
        try:
            admin.describe_cluster()
        finally:
            admin.close()
        return True, "answers metadata"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
        return False, f"broker not ready ({type(exc).__name__})"


def new_kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).
    One starting with "-" would be read by the storage tool as an option, so draw again."""
    import base64
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def compose_target_mapping(settings: Settings) -> dict[str, str]:
    """How the docker-compose addresses in prometheus/ configs map to the local stack's: each
    service's scrape address (its read port when it has one of its own)."""
    h = settings.host
    return {
        "engine:29100": f"{h}:{settings.engine_metrics_port}",
        "ingest:29180": (f"{settings.ingest_read_host or h}:{settings.ingest_read_port}"
                         if settings.ingest_read_port is not None else f"{h}:{settings.ingest_port}"),
        "notifier:29181": (f"{settings.notifier_read_host or h}:{settings.notifier_read_port}"
                           if settings.notifier_read_port is not None else f"{h}:{settings.notifier_port}"),
        "alertmanager:9093": f"{h}:{settings.alertmanager_port}",
        "prometheus:9090": f"{h}:{settings.prometheus_port}",
    }


def _local_target(target: str, mapping: dict[str, str]) -> str:
    if target not in mapping:
        raise StackError(f"prometheus/prometheus.yml names {target}, which the local stack does not run "
                         "(casewatch/stack/components.py, compose_target_mapping)")
    return mapping[target]


def _local_targets(static_configs: list[dict] | None, mapping: dict[str, str]) -> None:
    for static in static_configs or []:
        static["targets"] = [_local_target(t, mapping) for t in static.get("targets") or []]


def prometheus_config(settings: Settings, extra_engine_targets: list[str] | None = None) -> dict:
    """prometheus/prometheus.yml as data, with the local stack's addresses and absolute rule paths."""
    config = yaml.safe_load((PROJECT_ROOT / "prometheus" / "prometheus.yml").read_text())
    mapping = compose_target_mapping(settings)
    config["rule_files"] = [str(PROJECT_ROOT / "prometheus" / p) for p in config.get("rule_files") or []]
    for alertmanagers in (config.get("alerting") or {}).get("alertmanagers") or []:
        _local_targets(alertmanagers.get("static_configs"), mapping)
    for job in config.get("scrape_configs") or []:
        _local_targets(job.get("static_configs"), mapping)
        if job.get("job_name") == "casewatch-engine" and extra_engine_targets:
            job["static_configs"][0]["targets"].extend(extra_engine_targets)
    return config


def render_prometheus_config(settings: Settings, extra_engine_targets: list[str] | None = None) -> Path:
    """Write :func:`prometheus_config` to <state_dir>/prometheus/prometheus.yml."""
    out_dir = settings.state_dir / "prometheus"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(prometheus_config(settings, extra_engine_targets), sort_keys=False))
    return path


def _local_url(url: str, mapping: dict[str, str]) -> str:
    """A compose URL (http://notifier:29181/alerts) with the local stack's address."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=_local_target(parts.netloc, mapping)))


def alertmanager_config(settings: Settings) -> dict:
    """prometheus/alertmanager.yml as data, for the local stack: the notifier's local webhook
    address, the templates from the checkout, the webhook secret generated in the state dir."""
    config = yaml.safe_load((PROJECT_ROOT / "prometheus" / "alertmanager.yml").read_text())
    # Alertmanager posts to the notifier's webhook (its write port, never the read port).
    mapping = {"notifier:29181": f"{settings.host}:{settings.notifier_port}"}
    # Compose mounts the templates elsewhere; locally they are read from the checkout.
    config["templates"] = [str(PROJECT_ROOT / "prometheus" / "templates" / Path(t).name)
                           for t in config.get("templates") or []]
    # The notifier's webhook credentials: generated once (600) in the state dir, read by both.
    from casewatch.config import WEBHOOK_SECRET_NAME, ensure_webhook_secret
    secret = ensure_webhook_secret(settings.state_dir / WEBHOOK_SECRET_NAME)
    done: set[int] = set()  # the receivers share one webhook (a YAML anchor): rewrite it once
    for receiver in config.get("receivers") or []:
        for webhook in receiver.get("webhook_configs") or []:
            if id(webhook) in done:
                continue
            done.add(id(webhook))
            webhook["url"] = _local_url(webhook["url"], mapping)
            auth = (webhook.get("http_config") or {}).get("authorization")
            if auth and auth.get("credentials_file"):
                auth["credentials_file"] = str(secret)
    return config


def render_alertmanager_config(settings: Settings) -> Path:
    """Write :func:`alertmanager_config` to <state_dir>/alertmanager/alertmanager.yml."""
    out_dir = settings.state_dir / "alertmanager"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_config(settings), sort_keys=False))
    return path


def prometheus_component(settings: Settings, log: Callable[[str], None] = print) -> Component:
    base = f"http://{settings.host}:{settings.prometheus_port}"

    def prepare() -> list[str]:
        ensure_debian_binaries(["prometheus", "promtool"], log)
        config = render_prometheus_config(settings)
        data = settings.state_dir / "prometheus" / "data"
        data.mkdir(parents=True, exist_ok=True)
        return ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                f"--web.listen-address={settings.host}:{settings.prometheus_port}",
                "--web.enable-lifecycle",  # no --web.enable-admin-api: no TSDB delete/snapshot over HTTP
                "--storage.tsdb.retention.time=5y", "--log.level=warn"]

    return Component("prometheus", base, prepare, lambda: http_ok(f"{base}/-/ready"),
                     config=settings_variables(settings, "host", "prometheus_port", "alertmanager_port",
                                               "engine_metrics_port", "ingest_port", "ingest_read_host",
                                               "ingest_read_port", "notifier_port", "notifier_read_host",
                                               "notifier_read_port", "state_dir"))


def alertmanager_component(settings: Settings, log: Callable[[str], None] = print) -> Component:
    base = f"http://{settings.host}:{settings.alertmanager_port}"

    def prepare() -> list[str]:
        ensure_debian_binaries(["prometheus-alertmanager", "amtool"], log)
        config = render_alertmanager_config(settings)
        data = settings.state_dir / "alertmanager" / "data"
        data.mkdir(parents=True, exist_ok=True)
        return ["prometheus-alertmanager", f"--config.file={config}", f"--storage.path={data}",
                f"--web.listen-address={settings.host}:{settings.alertmanager_port}",
                "--cluster.listen-address=", "--log.level=warn"]

    return Component("alertmanager", base, prepare, lambda: http_ok(f"{base}/-/ready"),
                     config=settings_variables(settings, "host", "alertmanager_port", "notifier_port",
                                               "state_dir"))


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for casewatch child processes, so they see the same settings."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"CASEWATCH_{name.upper()}"] = str(value)
    return env


def settings_variables(settings: Settings, *fields: str) -> dict[str, str]:
    """The given settings as CASEWATCH_* variables (unset ones left out)."""
    env = settings_env(settings)
    return {f"CASEWATCH_{f.upper()}": env[f"CASEWATCH_{f.upper()}"] for f in fields
            if f"CASEWATCH_{f.upper()}" in env}


def casewatch_component(settings: Settings, name: str, args: list[str], health_url: str,
                        module: str, extra_env: dict[str, str] | None = None) -> Component:
    def prepare() -> list[str]:
        return [sys.executable, "-m", "casewatch.cli", *args]

    env = settings_env(settings)
    env.update(extra_env or {})
    return Component(name, health_url.rsplit("/", 1)[0] + "/", prepare, lambda: http_ok(health_url),
                     env=env, optional_module=module, config=dict(env))


def engine_component(settings: Settings) -> Component:
    url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    return casewatch_component(settings, "engine", ["engine"], url, "services.engine.app")


def ingest_component(settings: Settings) -> Component:
    # /healthz is on the read listener when ingest has one of its own
    url = (f"http://{settings.ingest_read_host or settings.host}:{settings.ingest_read_port}/healthz"
           if settings.ingest_read_port is not None else f"http://{settings.host}:{settings.ingest_port}/healthz")
    return casewatch_component(settings, "ingest", ["ingest"], url, "services.ingest.api")


def mailbox_component(settings: Settings) -> Component:
    """A local SMTP server (aiosmtpd) that files every mail the notifier sends as a Maildir
    message under ``<state_dir>/mailbox``, so the demo's on-call mails can be read."""
    maildir = settings.state_dir / "mailbox"

    def prepare() -> list[str]:
        for sub in ("tmp", "new", "cur"):  # a Maildir; aiosmtpd only creates it when absent
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{settings.host}:{settings.smtp_port}",
                "-c", "aiosmtpd.handlers.Mailbox", str(maildir)]

    return Component("mailbox", f"smtp://{settings.host}:{settings.smtp_port} -> {maildir}", prepare,
                     lambda: (port_open(settings.host, settings.smtp_port), "SMTP"), start_timeout=30,
                     config=settings_variables(settings, "host", "smtp_port", "state_dir"))


def notifier_component(settings: Settings) -> Component:
    url = (f"http://{settings.notifier_read_host or settings.host}:{settings.notifier_read_port}/healthz"
           if settings.notifier_read_port is not None else f"http://{settings.host}:{settings.notifier_port}/healthz")
    return casewatch_component(settings, "notifier", ["notifier"], url, "services.notifier.app")


def describe(components: list[Component]) -> str:
    return json.dumps({c.name: c.url for c in components}, indent=2)


def simulator_component(settings: Settings, until=None) -> Component | None:
    """The living demo authority: two years of history to ``until`` (default yesterday), then
    events in (sped-up) real time."""
    def prepare() -> list[str]:
        command = [sys.executable, "-m", "casewatch.cli", "simulate", "--demo", "--publish"]
        return command + (["--until", until.isoformat()] if until else [])

    env = settings_env(settings)
    return Component("simulator", "(publishes demo events)", prepare,
                     lambda: (True, "running"), env=env, config=dict(env),
                     optional_module="services.simulator.commands", start_timeout=5)
