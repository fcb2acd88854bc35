"""``casewatch secrets init FOLDER``: a deployment's secrets, generated once into one folder.

Used by docker-compose.yml's one-shot ``secrets`` service and by a first install on a server
(docs/operations.md, "First install on one Debian server"). Writes, only when missing:

* ``pseudonymisation.key``   (CASEWATCH_PSEUDONYMISATION_KEY_FILE; 64 hex characters)
* ``ingest-tokens.json``     (CASEWATCH_INGEST_TOKENS_FILE; one token per ``--source``)
* ``notifier-webhook.secret`` (CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE, and Alertmanager's
  ``http_config.authorization.credentials_file``)

An existing file is never changed (a new pseudonymisation key would give every child a new
pseudonym: rotation is a procedure, docs/operations.md). Files are created 600 from the first
byte (casewatch/stack/secrets.py ``write_secret``); with ``--owner`` they belong to the service
user, and with ``--webhook-group`` the webhook secret (only it) is readable by Alertmanager's group.
Nothing secret is printed: only the paths.
"""
from __future__ import annotations

import argparse
import json
import secrets
import shutil
from pathlib import Path

from casewatch.command_errors import USAGE, CommandError

KEY_NAME = "pseudonymisation.key"
TOKENS_NAME = "ingest-tokens.json"


def _id(value: str | None):
    return int(value) if value is not None and value.isdigit() else value


def init_secrets(folder: Path, sources: list[str], la_codes: list[str], owner: str | None = None,
                 webhook_group: str | None = None) -> list[tuple[Path, bool]]:
    """Create the missing secrets in ``folder``; (path, created) for each of the three files."""
    from casewatch.stack.secrets import write_secret
    from casewatch.config import WEBHOOK_SECRET_NAME, ensure_webhook_secret

    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    done: list[tuple[Path, bool]] = []
    key = folder / KEY_NAME
    done.append((key, not key.exists()))
    if not key.exists():
        write_secret(key, secrets.token_hex(32))
    tokens = folder / TOKENS_NAME
    done.append((tokens, not tokens.exists()))
    if not tokens.exists():
        write_secret(tokens, json.dumps({source: {"token": secrets.token_urlsafe(24), "la_codes": la_codes,
                                                  "pre_pseudonymised": False} for source in sources},
                                        indent=2))
    webhook = folder / WEBHOOK_SECRET_NAME
    done.append((webhook, not webhook.exists()))
    ensure_webhook_secret(webhook)

    try:
        if owner is not None:
            for path in (folder, key, tokens, webhook):
                shutil.chown(path, user=_id(owner))
        for path in (key, tokens):
            path.chmod(0o600)
        if webhook_group is not None:
            shutil.chown(folder, group=_id(webhook_group))
            shutil.chown(webhook, group=_id(webhook_group))
            folder.chmod(0o750)
            webhook.chmod(0o640)
        else:
            folder.chmod(0o700)
            webhook.chmod(0o600)
    except LookupError as exc:
        raise CommandError(f"{exc}: give an existing user (--owner) and group (--webhook-group)", USAGE) from None
    except PermissionError:
        raise CommandError(f"cannot give {folder} to another user: run `casewatch secrets init` as root "
                           "(sudo) when using --owner or --webhook-group", USAGE) from None
    return done


def _init(args: argparse.Namespace) -> int:
    from casewatch import bootstrap
    la_codes = [c.strip() for c in (args.la or ",".join(bootstrap.settings().la_code_list)).split(",") if c.strip()]
    done = init_secrets(args.folder, args.source or ["demo"], la_codes, args.owner, args.webhook_group)
    for path, created in done:
        print(f"{'created' if created else 'kept   '} {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("secrets", help="generate a deployment's key, ingest tokens and webhook secret")
    gsub = group.add_subparsers(dest="secrets_command", metavar="ACTION")
    init = gsub.add_parser(
        "init", help="create the missing secrets in FOLDER (never changes an existing one)",
        description=("Create pseudonymisation.key, ingest-tokens.json and notifier-webhook.secret in "
                     "FOLDER when they are missing, each readable by its owner only, and print their "
                     "paths (never their contents). Point CASEWATCH_PSEUDONYMISATION_KEY_FILE, "
                     "CASEWATCH_INGEST_TOKENS_FILE and CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE "
                     "at them."))
    init.add_argument("folder", type=Path, help="e.g. /etc/casewatch/secrets")
    init.add_argument("--source", action="append",
                      help="a source system that gets an ingest token (repeat; default: demo)")
    init.add_argument("--la", default=None, help="comma-separated ONS codes the tokens may write "
                                                 "(default: CASEWATCH_LA_CODES)")
    init.add_argument("--owner", default=None, help="user (name or uid) the files belong to, e.g. casewatch")
    init.add_argument("--webhook-group", default=None,
                      help="group (name or gid) that may read the webhook secret: Alertmanager's")
    init.set_defaults(func=_init)
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])
