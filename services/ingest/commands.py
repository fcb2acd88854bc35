"""CLI: ``casewatch ingest`` (the HTTP API), ``casewatch load FILE...`` (bulk loader) and
``casewatch dlq list | show N | replay`` (dead letters)."""
from __future__ import annotations

import argparse
import sys


def _ingest(args: argparse.Namespace) -> int:
    import json
    import logging

    from casewatch.command_errors import USAGE, CommandError
    from casewatch import bootstrap
    from casewatch.edge.pseudonymise import load_key

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = bootstrap.settings()
    load_key(settings)  # no key: PseudonymisationKeyError, said by casewatch.cli's handler (exit 2)
    try:
        tokens = settings.read_ingest_tokens()
    except OSError as exc:
        raise CommandError(f"the ingest tokens file cannot be read ({exc.strerror}): check "
                           "CASEWATCH_INGEST_TOKENS_FILE", USAGE) from None
    except ValueError as exc:  # our own messages name the source system and the fix, never a token
        detail = str(exc) if not isinstance(exc, json.JSONDecodeError) else "they are not valid JSON"
        raise CommandError(f"the ingest tokens cannot be used: {detail}", USAGE) from None
    if not tokens:
        raise CommandError(
            "no ingest tokens: set CASEWATCH_INGEST_TOKENS or CASEWATCH_INGEST_TOKENS_FILE (a JSON object "
            '{"source_system": "token"} or {"source_system": {"token": "...", "la_codes": [...]}})', USAGE)
    from casewatch.command_errors import require_free_port
    require_free_port(settings.host, settings.ingest_port, "CASEWATCH_INGEST_PORT")
    if settings.ingest_read_port and settings.ingest_read_port != settings.ingest_port:
        require_free_port(settings.ingest_read_host or settings.host, settings.ingest_read_port,
                          "CASEWATCH_INGEST_READ_PORT")
    from services.ingest.api import serve
    serve(settings)
    return 0


def _load(args: argparse.Namespace) -> int:
    from casewatch.edge.bulk_load import run
    return run(args)


def register(subparsers) -> None:
    ingest = subparsers.add_parser("ingest", help="run the ingest HTTP API (events from source systems into Kafka)")
    ingest.set_defaults(func=_ingest)

    load = subparsers.add_parser(
        "load", help="bulk-load case events from JSON-lines or CSV files",
        description="Validate, pseudonymise and publish events from files. Invalid records go to the "
                    "dead-letter topic; the exit code is 1 when any record was rejected.")
    load.add_argument("files", nargs="+", metavar="FILE", help="*.jsonl (one event per line) or *.csv")
    load.add_argument("--format", choices=("jsonl", "csv"), help="file format (default: by extension)")
    load.add_argument("--dry-run", action="store_true", help="validate only; publish nothing")
    load.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    load.add_argument("--source-system", default="loader", help="the source_system stamped on the events")
    load.set_defaults(func=_load)

    dlq = subparsers.add_parser("dlq", help="list, show or replay dead letters")
    sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION")
    lst = sub.add_parser("list", help="one line per dead letter: number, time, source, stage, reason")
    lst.add_argument("--limit", type=int, default=None)
    lst.set_defaults(func=lambda a: __import__("services.ingest.dlq", fromlist=["x"]).cmd_list(a))
    show = sub.add_parser("show", help="one dead letter in full")
    show.add_argument("number", help="its number from `dlq list` (offset, or partition:offset)")
    show.set_defaults(func=lambda a: __import__("services.ingest.dlq", fromlist=["x"]).cmd_show(a))
    rep = sub.add_parser("replay", help="re-validate stored payloads; publish the ones that now pass")
    rep.add_argument("--dry-run", action="store_true")
    rep.set_defaults(func=lambda a: __import__("services.ingest.dlq", fromlist=["x"]).cmd_replay(a))
    dlq.set_defaults(func=lambda a: (dlq.print_help(), 2)[1])
