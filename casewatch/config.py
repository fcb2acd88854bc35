"""Configuration, from environment variables (prefix ``CASEWATCH_``) or a ``.env`` file.

Every port binds to 127.0.0.1 by default. Secrets (the pseudonymisation key, ingest tokens) come
from the environment or from files named by the environment, never from code.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    notifier_port: int = 29181
    # The local stack's mailbox: an SMTP server that files the on-call mails under state_dir/mailbox.
    smtp_port: int = 29025

    kafka_bootstrap: str | None = None  # default: host:kafka_port of the local stack
    events_topic: str = "casewatch.events"
    deadletter_topic: str = "casewatch.deadletters"
    partitions: int = 6
    engine_app_id: str = "casewatch-engine"

    # --- Kafka client security (casewatch/kafka_security.py; docs/operations.md "TLS and SASL") ---
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

    # Ingest bearer tokens: JSON object {"source_system": "token", ...}, or a file holding one.
    ingest_tokens: str | None = None
    ingest_tokens_file: Path | None = None
    ingest_max_body_bytes: int = 1_000_000
    ingest_max_batch: int = 1000

    la_codes: str = "E06000004"  # comma-separated ONS codes this deployment serves
    teams: str = "assessment_1,assessment_2,cin_1,cp_1,lac_1,leaving_care,unassigned"

    # Extra and removed bank holidays (comma-separated ISO dates), for short-notice one-off days.
    extra_holidays: str = ""
    removed_holidays: str = ""

    # "Now": the wall clock unless a fixed date is given (replays and tests).
    fixed_today: str | None = None

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

    def read_ingest_tokens(self) -> dict[str, str]:
        raw = self.ingest_tokens
        if raw is None and self.ingest_tokens_file:
            raw = self.ingest_tokens_file.read_text()
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError("ingest tokens must be a JSON object of source system -> token")
        return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
