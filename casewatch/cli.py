"""The ``casewatch`` command: one entry point, one subcommand per job.

Each area of the project registers its own subcommands through a ``register(subparsers)``
function, so this file only lists where they live. The services' command modules are named here,
not imported (the library never imports the services that stand on it: docs/architecture.md); a
module that cannot be imported stops every command with its name and the fix, never a silent
skip (a rename would otherwise make ``./dev up`` run quietly without the engine).
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
    "casewatch.deployment",           # secrets init FOLDER
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
        except ImportError as exc:
            from casewatch.command_errors import USAGE, CommandError
            missing = getattr(exc, "name", None) or type(exc).__name__
            raise CommandError(f"the command module {name} cannot be imported (missing: {missing}): the "
                               "installation is incomplete or stale; run `./dev up` or `pip install -e .` in "
                               "the checkout again", USAGE) from exc
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Every failure ends here as one line naming the cause and the fix (exit 2
    for a usage or configuration mistake, 1 at run time; casewatch/command_errors.py); the traceback
    only with --debug (anywhere on the command line)."""
    from casewatch.command_errors import explain, unexpected
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser()
        parser.add_argument("--debug", action="store_true",
                            help="show the full traceback when a command fails")
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place failures become messages
        if debug:
            raise
        known = explain(exc, _settings_if_valid())
        message, code = known if known else (unexpected(exc, command), 1)
        prefix = f"casewatch {command}" if command else "casewatch"
        print(f"{prefix}: {message}", file=sys.stderr)
        return code


def _settings_if_valid():
    try:
        from casewatch import bootstrap
        return bootstrap.settings()
    except Exception:  # noqa: BLE001 - only used to name the Kafka address in a message
        return None


if __name__ == "__main__":
    sys.exit(main())
