"""Demo secrets for a local stack: a pseudonymisation key and an ingest token, generated once.

Only used by `casewatch stack up` when no key or token is configured, so a newcomer gets a
working stack; a council's deployment configures its own (see docs/operations.md).
"""
from __future__ import annotations

import json
import os
import secrets

from casewatch.config import Settings


def write_secret(path, text: str) -> None:
    """Create ``path`` readable by its owner only (0600) from the first byte, never world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def ensure_demo_secrets(settings: Settings) -> None:
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.state_dir.chmod(0o700)
    if settings.read_pseudonymisation_key() is None:
        key_file = settings.state_dir / "pseudonymisation.key"
        if not key_file.exists():
            write_secret(key_file, secrets.token_hex(32))
        key_file.chmod(0o600)
        settings.pseudonymisation_key_file = key_file
        os.environ["CASEWATCH_PSEUDONYMISATION_KEY_FILE"] = str(key_file)
    if not settings.read_ingest_tokens():
        token_file = settings.state_dir / "ingest-tokens.json"
        if not token_file.exists():
            # the demo source may write every authority the stack serves, and never sends pseudonyms
            write_secret(token_file, json.dumps({"demo": {"token": secrets.token_urlsafe(24),
                                                          "la_codes": settings.la_code_list,
                                                          "pre_pseudonymised": False}}))
        token_file.chmod(0o600)
        settings.ingest_tokens_file = token_file
        os.environ["CASEWATCH_INGEST_TOKENS_FILE"] = str(token_file)
