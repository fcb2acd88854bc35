"""Notifier settings, from CASEWATCH_* environment variables (or .env), and its webhook secret."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from casewatch.config import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]
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
    rota_file: Path = PACKAGE_DIR / "rota.example.yml"
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


class WebhookSecretError(RuntimeError):
    """The webhook credentials cannot be read: the notifier does not start."""


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
