"""Configuration, from environment variables (prefix ``CASEWATCH_``) or a ``.env`` file.

Every port binds to 127.0.0.1 by default. Secrets (the pseudonymisation key, ingest tokens) come
from the environment or from files named by the environment, never from code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
import os
import secrets
from casewatch.errors import WebhookSecretError  # noqa: F401 - also importable from here


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWATCH_", env_file=".env", extra="ignore")

    # Where the local stack keeps its data, logs, pid files and downloaded jars.
    state_dir: Path = Field(default=Path.home() / ".casewatch", description="state, logs and pid files")
    cache_dir: Path = Field(default=Path.home() / ".cache" / "casewatch", description="Kafka jars")
    host: str = "127.0.0.1"

    kafka_port: int = 29092
    kafka_controller_port: int = 29093
    prometheus_port: int = 29090
    alertmanager_port: int = 29095
    engine_metrics_port: int = 29100
    engine_web_port: int = 29101
    ingest_port: int = 29180
    # The read endpoints (/healthz, /metrics) of ingest: on the write API's host and port unless a
    # separate port is given, e.g. a monitoring interface that case systems cannot reach.
    ingest_read_host: str | None = None  # default: host
    ingest_read_port: int | None = None
    notifier_port: int = 29181
    # The notifier's read endpoints (/healthz, /metrics) on a listener of their own, like ingest's
    # (read by casewatch/config.py; here so `stack up` checks and scrapes that port).
    notifier_read_host: str | None = None  # default: host
    notifier_read_port: int | None = None
    # The local stack's mailbox: an SMTP server that files the on-call mails under state_dir/mailbox.
    smtp_port: int = 29025

    kafka_bootstrap: str | None = None  # default: host:kafka_port of the local stack
    events_topic: str = "casewatch.events"
    deadletter_topic: str = "casewatch.deadletters"
    # Compacted: event_id -> the source system and event type that sent it, so every ingest worker can
    # check that a correction targets an event of its own source (docs/dpia-data-flow.md §3a).
    # Default: the events topic's name + ".sources".
    event_sources_topic: str | None = None
    partitions: int = 6
    engine_app_id: str = "casewatch-engine"
    # Catching up (docs/operations.md "Catching up"): a worker whose unprocessed messages on its
    # partitions exceed this is not caught up; a replay run that sent no record for this long and
    # no replay-end (e.g. the replaying process died) is taken as ended.
    engine_caught_up_max_lag: int = 500
    engine_replay_silence_seconds: float = 600.0
    # The case_histories table's store (docs/operations.md "Table store"): "memory" (restored whole
    # from the changelog on every start) or "rocksdb" (kept on disk under
    # state_dir/engine/<app id>/worker-<metrics port>; a restart replays only the changelog's tail).
    engine_store: Literal["memory", "rocksdb"] = "memory"
    # Faust's broker_session_timeout for every engine worker (docs/operations.md "Session timeout"):
    # how long the group waits for a member that stopped heartbeating (a worker killed with kill -9)
    # before it hands its partitions on. Faust's own default is 60 s.
    engine_session_timeout: float = 10.0

    # --- Kafka client security (casewatch/adapters/kafka/security.py; docs/operations.md "TLS and SASL") ---
    # PLAINTEXT (local stack), SSL, SASL_PLAINTEXT or SASL_SSL. The password: the value itself, or a
    # file that holds it. kafka_ssl_cafile: the CA (PEM) that signed the brokers' certificates.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    # --- end Kafka client security ---

    # Pseudonymisation key: the value itself, or a file that holds it.
    pseudonymisation_key: str | None = None
    pseudonymisation_key_file: Path | None = None
    # Part of every pseudonym's HMAC input; raise it with each new key (docs/operations.md §5).
    pseudonymisation_key_version: int = Field(default=1, ge=1, le=9999)

    # Ingest bearer tokens: a JSON object, or a file holding one. Per source system either the token
    # ({"mosaic": "token"}: every configured authority) or {"token": "...", "la_codes": ["E06000004"],
    # "pre_pseudonymised": false} (the authorities it may write; whether it may send ps_ references,
    # for the replay tool only). See docs/dpia-data-flow.md §2a.
    ingest_tokens: str | None = None
    ingest_tokens_file: Path | None = None
    ingest_max_body_bytes: int = 1_000_000
    ingest_max_batch: int = 1000
    ingest_max_json_depth: int = 8  # a batch (1) of events (2) with a list field (3) needs 3

    # Plausible dates of an event (ingest and loader reject others with a reason): from this date to
    # today + this many days (default: today one year on); "today" as below.
    earliest_event_date: str = "1990-01-01"
    latest_event_days_ahead: int | None = None

    la_codes: str = "E06000004"  # comma-separated ONS codes this deployment serves
    teams: str = "assessment_1,assessment_2,cin_1,cp_1,lac_1,leaving_care,unassigned"

    # Extra and removed bank holidays (comma-separated ISO dates), for short-notice one-off days.
    extra_holidays: str = ""
    removed_holidays: str = ""

    # "Today" for every part (bootstrap.today_for, the one rule): the date in London unless a fixed
    # date is given (replays, tests): the engine's figures, the plausible dates of ingest and the
    # loader, the packs' live day, the simulator's and the stack demo's default days.
    fixed_today: str | None = None

    # Drift (casewatch_drift_cases): working days without activity per case type, over the defaults
    # cin=20, cp=10, lac=20 ("cp=5" changes only CP). The engine, the backfill and the packs read it.
    drift_workdays: str = ""
    # Children aged 0-17 per ONS code ("E06000004=45120,E06000001=20500"), the packs' rates per
    # 10,000 children; the demo authority E06000004 has its published figure without it.
    child_population: str = ""

    @field_validator("drift_workdays")
    @classmethod
    def _drift_workdays_parse(cls, text: str) -> str:
        if text.strip():
            from casewatch.domain.indicators import drift_workdays
            drift_workdays(text)  # a ValueError naming CASEWATCH_DRIFT_WORKDAYS and the fix
        return text

    @property
    def drift_limits(self) -> dict[str, int]:
        """Working days without activity before an open case drifts, per case type."""
        from casewatch.domain.indicators import drift_workdays
        return drift_workdays(self.drift_workdays)

    @property
    def engine_tables_dir(self) -> Path:
        """Where this machine's engine workers of ``engine_app_id`` keep their table directories."""
        return self.state_dir / "engine" / self.engine_app_id

    @property
    def engine_worker_dir(self) -> Path:
        """This worker's own directory (two workers of one app on one machine must not share a
        RocksDB directory): ``<engine_tables_dir>/worker-<engine metrics port>``."""
        return self.engine_tables_dir / f"worker-{self.engine_metrics_port}"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def la_code_list(self) -> list[str]:
        return [c.strip() for c in self.la_codes.split(",") if c.strip()]

    @property
    def team_list(self) -> list[str]:
        return [t.strip() for t in self.teams.split(",") if t.strip()]

    def read_pseudonymisation_key(self) -> bytes | None:
        if self.pseudonymisation_key:
            return self.pseudonymisation_key.encode()
        if self.pseudonymisation_key_file:
            return self.pseudonymisation_key_file.read_bytes().strip() or None
        return None

    @property
    def events_sources_topic(self) -> str:
        return self.event_sources_topic or f"{self.events_topic}.sources"

    def event_date_range(self, today: date) -> tuple[date, date]:
        """The plausible dates of an event on ``today`` (:func:`casewatch.bootstrap.today_for`),
        both ends included."""
        if self.latest_event_days_ahead is not None:
            latest = today + timedelta(days=self.latest_event_days_ahead)
        else:
            latest = today.replace(year=today.year + 1, day=28 if (today.month, today.day) == (2, 29) else today.day)
        return date.fromisoformat(self.earliest_event_date), latest

    def read_ingest_tokens(self) -> dict[str, str]:
        """Source system -> token (the grants are in ``read_ingest_grants``)."""
        return {source: grant.token for source, grant in self.read_ingest_grants().items()}

    def read_ingest_grants(self) -> dict[str, "IngestGrant"]:
        raw = self.ingest_tokens
        if raw is None and self.ingest_tokens_file:
            raw = self.ingest_tokens_file.read_text()
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(TOKENS_FORMAT)
        return {source: IngestGrant.parse(source, entry, self.la_code_list) for source, entry in data.items()}


TOKENS_FORMAT = ('ingest tokens must be a JSON object of source system -> token, or -> '
                 '{"token": "...", "la_codes": ["E06000004"], "pre_pseudonymised": false}')


@dataclass(frozen=True)
class IngestGrant:
    """What one source system's token may write: the authorities (``la_codes``) and whether it may
    send references that are already pseudonymised (only the replay tool should)."""
    source: str
    token: str
    la_codes: tuple[str, ...]
    pre_pseudonymised: bool = False

    @classmethod
    def parse(cls, source: str, entry, configured_la_codes: list[str]) -> "IngestGrant":
        if isinstance(entry, str):
            entry = {"token": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str) or not entry["token"]:
            raise ValueError(TOKENS_FORMAT)
        unknown = set(entry) - {"token", "la_codes", "pre_pseudonymised"}
        if unknown:
            raise ValueError(f"ingest tokens: {source}: unknown setting(s) {', '.join(sorted(unknown))}")
        la_codes = entry.get("la_codes", configured_la_codes)
        if not isinstance(la_codes, list) or not all(isinstance(c, str) for c in la_codes):
            raise ValueError(f"ingest tokens: {source}: la_codes must be a list of ONS codes")
        outside = [c for c in la_codes if c not in configured_la_codes]
        if outside:
            raise ValueError(f"ingest tokens: {source}: la_codes not served by this deployment "
                             "(CASEWATCH_LA_CODES): " + ", ".join(outside))
        flag = entry.get("pre_pseudonymised", False)
        if not isinstance(flag, bool):
            raise ValueError(f"ingest tokens: {source}: pre_pseudonymised must be true or false")
        return cls(source, entry["token"], tuple(la_codes), flag)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# ----------------------------------------------------------------------------------------------------------
# Notifier settings, from CASEWATCH_* environment variables (or .env), and its webhook secret.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTIFIER_DIR = PROJECT_ROOT / "services" / "notifier"  # the example rota ships with the notifier
WEBHOOK_SECRET_NAME = "notifier-webhook.secret"


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWATCH_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    notifier_port: int = 29181
    # /healthz and /metrics on a listener of their own (e.g. a monitoring interface), else on the webhook's.
    notifier_read_host: str | None = None
    notifier_read_port: int | None = None
    smtp_host: str = "127.0.0.1"
    # One default for CASEWATCH_SMTP_PORT, owned by casewatch.config.Settings (29025, the local
    # stack's mailbox): a notifier started without the setting mails the local mailbox, never a
    # relay on port 25 by accident; a deployment sets its relay's port (deploy/, .env.example).
    smtp_port: int = Settings.model_fields["smtp_port"].default
    smtp_from: str = "casewatch@localhost"
    smtp_timeout_seconds: float = 10.0
    rota_file: Path = NOTIFIER_DIR / "rota.example.yml"
    grafana_url: str = "http://localhost:3000"
    # The bearer credentials Alertmanager sends on /alerts (alertmanager.yml: http_config.authorization
    # .credentials_file). Default: <state dir>/notifier-webhook.secret, which `casewatch stack up`
    # generates (mode 600) and renders into the local Alertmanager's config.
    state_dir: Path = Path.home() / ".casewatch"
    notifier_webhook_credentials_file: Path | None = None
    # Our alert rules: the only alert names and annotations a mail is built from.
    rules_dir: Path = PROJECT_ROOT / "prometheus" / "rules"
    notifier_max_body_bytes: int = 1_000_000

    @property
    def webhook_credentials_file(self) -> Path:
        return self.notifier_webhook_credentials_file or self.state_dir / WEBHOOK_SECRET_NAME


def read_webhook_secret(path: Path) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise WebhookSecretError(f"the webhook credentials file cannot be read ({exc.strerror}): run `casewatch "
                                 "stack up` or set CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE") from None
    if len(secret) < 16:
        raise WebhookSecretError("the webhook credentials file holds fewer than 16 characters: put a long "
                                 "random secret in it")
    return secret


def ensure_webhook_secret(path: Path) -> Path:
    """Create the webhook secret (mode 600, 32 random bytes, URL-safe) unless it exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(32))
    path.chmod(0o600)
    return path
