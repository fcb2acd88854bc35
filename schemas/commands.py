"""``casewatch schemas export | check``: the JSON Schema files under ``schemas/json/``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schemas import export as schema_export


def _export(args: argparse.Namespace) -> int:
    written = schema_export.export(Path(args.dir))
    print(f"wrote {len(written)} JSON Schema files to {args.dir}")
    return 0


def _check(args: argparse.Namespace) -> int:
    problems = schema_export.stale(Path(args.dir))
    if problems:
        print("the exported JSON Schema is stale; run `casewatch schemas export`:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("the exported JSON Schema matches the models")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("schemas", help="export or check the event JSON Schema files",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="schemas_command", metavar="ACTION")
    exp = sub.add_parser("export", help="write one JSON Schema per event type and the union")
    exp.add_argument("--dir", default=str(schema_export.JSON_DIR), help="output folder (default: schemas/json)")
    exp.set_defaults(func=_export)
    chk = sub.add_parser("check", help="fail (exit 1) when the exported files differ from the models")
    chk.add_argument("--dir", default=str(schema_export.JSON_DIR))
    chk.set_defaults(func=_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
