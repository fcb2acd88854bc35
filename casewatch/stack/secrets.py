"""Demo secrets for a local stack: a pseudonymisation key and an ingest token, generated once.

Only used by `casewatch stack up` when no key or token is configured, so a newcomer gets a
working stack; a council's deployment configures its own (see docs/operations.md).
"""
from __future__ import annotations

import json
import os
import secrets

from casewatch.config import Settings


def ensure_demo_secrets(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if settings.read_pseudonymisation_key() is None:
        key_file = settings.state_dir / "pseudonymisation.key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        settings.pseudonymisation_key_file = key_file
        os.environ["CASEWATCH_PSEUDONYMISATION_KEY_FILE"] = str(key_file)
    if not settings.read_ingest_tokens():
        token_file = settings.state_dir / "ingest-tokens.json"
        if not token_file.exists():
            token_file.write_text(json.dumps({"demo": secrets.token_urlsafe(24)}))
            token_file.chmod(0o600)
        settings.ingest_tokens_file = token_file
        os.environ["CASEWATCH_INGEST_TOKENS_FILE"] = str(token_file)
