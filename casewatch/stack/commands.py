"""``casewatch stack``: bring the local stack up, see its state, read its logs, take it down."""
from __future__ import annotations

import argparse
import sys
import time

from casewatch.command_errors import RUNTIME, USAGE, CommandError
from casewatch import bootstrap
from casewatch.stack.manager import START_ORDER


def register(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser(
        "stack", help="run the whole stack locally (Kafka, Prometheus, Alertmanager, casewatch)",
        description=(
            "Run casewatch and everything it needs on this machine, bound to 127.0.0.1, without "
            "Docker. Kafka's jars are fetched once from Maven Central (needs java and mvn); "
            "Prometheus and Alertmanager are the Debian packages (installed with apt-get when "
            "missing). State, logs and pid files live in CASEWATCH_STATE_DIR (default "
            "~/.casewatch); ports come from CASEWATCH_*_PORT variables."),
    )
    ssub = stack.add_subparsers(dest="stack_command", metavar="ACTION")

    up = ssub.add_parser("up", help="start every part and wait until each is healthy")
    up.add_argument("--no-demo", action="store_true", help="do not start the demo-data simulator")
    up.add_argument("--only", default=None,
                    help="comma-separated parts to start (kafka,prometheus,alertmanager,mailbox,notifier,"
                         "engine,ingest,simulator)")
    up.set_defaults(func=_up)

    restart = ssub.add_parser(
        "restart", help="stop parts and start them again, so changed settings take effect",
        description="Stop the named parts (default: every part that runs) and start them again with the "
                    "current settings (environment and .env), e.g. after changing CASEWATCH_FIXED_TODAY. "
                    "The ports are checked once the parts have stopped, before any starts.")
    restart.add_argument("part", nargs="*", metavar="PART",
                         help=f"{', '.join(START_ORDER)} or all (default: all, i.e. every part that runs)")
    restart.set_defaults(func=_restart)

    install = ssub.add_parser("install", help="install what the stack needs (Kafka jars, Debian "
                                                     "packages prometheus and prometheus-alertmanager)")
    install.set_defaults(func=_install)

    down = ssub.add_parser("down", help="stop every process `stack up` started, and nothing else")
    down.set_defaults(func=_down)

    status = ssub.add_parser("status", help="which parts run, where, and whether they are healthy")
    status.add_argument("--only", default=None, help="comma-separated parts to report on")
    status.set_defaults(func=_status)

    logs = ssub.add_parser("logs", help="show the last lines of one part's log")
    logs.add_argument("part", help=", ".join(START_ORDER))
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(func=_logs)
    stack.set_defaults(func=lambda args: (stack.print_help(), 2)[1])


def _manager(args, **kw):
    from casewatch.stack.manager import StackManager
    parts = args.only.split(",") if getattr(args, "only", None) else None
    return StackManager(bootstrap.settings(), parts=parts, **kw)


def _up(args) -> int:
    from casewatch.stack.components import StackError
    manager = _manager(args, demo=not args.no_demo)
    settings = manager.settings
    from casewatch.stack.secrets import ensure_demo_secrets
    ensure_demo_secrets(settings)
    print(f"casewatch stack up (state and logs in {settings.state_dir})")
    t0 = time.monotonic()
    try:
        manager.up()
    except StackError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        print("Parts already started keep running; `casewatch stack down` stops them.", file=sys.stderr)
        return 1
    if manager.stale:
        _print_table(manager.status())
        raise CommandError(_stale_sentence(manager.stale), RUNTIME)
    print(f"\nAll parts healthy in {time.monotonic() - t0:.1f}s.")
    _print_table(manager.status())
    _print_where(settings)
    print("\nStop everything with: casewatch stack down")


def _stale_sentence(stale: dict[str, list[str]]) -> str:
    names = [n for n in START_ORDER if n in stale]
    variables = sorted({v for changed in stale.values() for v in changed})
    shown = ", ".join(variables[:4]) + (f" and {len(variables) - 4} more" if len(variables) > 4 else "")
    parts = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "runs" if len(names) == 1 else "run"
    return (f"{parts} {verb} with settings changed since {'it' if len(names) == 1 else 'they'} started "
            f"({shown}): `casewatch stack restart {' '.join(names)}` applies them")


def _restart(args) -> int:
    from casewatch.stack.components import StackError
    from casewatch.stack.manager import StackManager
    from casewatch.stack.processes import ProcessTable
    settings = bootstrap.settings()
    unknown = [p for p in args.part if p not in (*START_ORDER, "all")]
    if unknown:
        raise CommandError(f"no part of the stack is called {unknown[0]!r}: name one of "
                           f"{', '.join(START_ORDER)}, or all", USAGE)
    names = [n for n in START_ORDER if n in args.part and "all" not in args.part]
    if not names:
        running = {p.name for p in ProcessTable(settings.state_dir).all() if p.alive}
        names = [n for n in START_ORDER if n in running]
        if not names:
            raise CommandError(f"no part of the stack runs (state dir {settings.state_dir}): start it with "
                               "`casewatch stack up`", USAGE)
    from casewatch.stack.secrets import ensure_demo_secrets
    ensure_demo_secrets(settings)
    manager = StackManager(settings, parts=names, demo="simulator" in names)
    print(f"casewatch stack restart {' '.join(names)} (state and logs in {settings.state_dir})")
    try:
        manager.restart()
    except StackError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        print("`casewatch stack status` shows what runs; `casewatch stack down` stops it.", file=sys.stderr)
        return 1
    print()
    _print_table(manager.status())
    return 0


def _print_where(settings) -> None:
    """Where the secrets this stack uses are (paths only, never their contents), and how to run
    `casewatch` when it is not on PATH (e.g. after `./dev up`: .venv/bin/casewatch)."""
    import shutil
    from pathlib import Path

    from casewatch.config import WEBHOOK_SECRET_NAME
    key = settings.pseudonymisation_key_file or "CASEWATCH_PSEUDONYMISATION_KEY (set in the environment)"
    tokens = settings.ingest_tokens_file or "CASEWATCH_INGEST_TOKENS (set in the environment)"
    print("\nSecrets (mode 600; paths only):")
    print(f"  pseudonymisation key   {key}")
    print(f"  ingest tokens          {tokens}   (bearer tokens for POST /v1/events, per source system)")
    print(f"  notifier webhook       {settings.state_dir / WEBHOOK_SECRET_NAME}")
    if not shutil.which("casewatch"):
        print(f"\n`casewatch` is not on PATH: run it as {Path(sys.executable).with_name('casewatch')} "
              "(from the checkout: ./dev cw ...)")
    return 0


def _install(args) -> int:
    from casewatch.stack.components import StackError, ensure_debian_binaries, kafka_libs
    settings = bootstrap.settings()
    try:
        ensure_debian_binaries(["prometheus", "promtool", "prometheus-alertmanager", "amtool",
                                "chromium", "pdftotext", "pdfinfo", "pdftoppm"])
        libs = kafka_libs(settings)
    except StackError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"stack parts installed (Kafka jars in {libs})")
    return 0


def _down(args) -> int:
    manager = _manager(args)
    stopped = manager.down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args) -> int:
    manager = _manager(args)
    rows = manager.status()
    _print_table(rows)
    return 0 if all(r[1] == "healthy" for r in rows) else 1


def _logs(args) -> int:
    manager = _manager(args)
    print(manager.processes.tail(args.part, args.lines))
    print(f"(full log: {manager.processes.log_path(args.part)})")
    return 0


def _print_table(rows) -> None:
    print(f"{'part':<13} {'state':<10} {'where':<36} detail")
    for name, state, url, detail in rows:
        print(f"{name:<13} {state:<10} {url:<36} {detail}")
