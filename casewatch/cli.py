"""The ``casewatch`` command: one entry point, one subcommand per job.

Each area of the project registers its own subcommands through a ``register(subparsers)``
function, so this file only lists where they live.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "casewatch.stack.commands",       # stack up | down | status | logs
    "services.engine.commands",       # engine
    "services.ingest.commands",       # ingest, load, dlq
    "schemas.commands",               # schemas export | check
    "services.simulator.commands",    # simulate, replay, backfill-prometheus
    "services.feeds.commands",        # import cin-census | ssda903, feeds serve
    "services.notifier.commands",     # notifier
    "casewatch.erasure",              # erase --child REF --la CODE | --pending
    "dashboards.commands",            # dashboards build | check, grafana push
    "casewatch.packs.commands",       # report cabinet | workload | region
]

DESCRIPTION = """\
casewatch shows a children's social care department, in near real time, how much work is coming
in and whether statutory timescales are being met.

Start here:
  casewatch stack up        bring up Kafka, Prometheus, Alertmanager and the casewatch services
                            locally, with a living demo authority
  casewatch stack status    what runs where, and whether it is healthy
  casewatch stack down      stop everything `stack up` started

Every subcommand has its own --help.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casewatch", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an area not built yet
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
