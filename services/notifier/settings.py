"""Notifier settings, from CASEWATCH_* environment variables (or .env)."""
from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWATCH_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    notifier_port: int = 29181
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "casewatch@localhost"
    smtp_timeout_seconds: float = 10.0
    rota_file: Path = PACKAGE_DIR / "rota.example.yml"
    grafana_url: str = "http://localhost:3000"
