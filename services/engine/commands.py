"""``casewatch engine``: run one metrics-engine worker."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "engine", help="run a metrics-engine worker (faust-streaming)",
        description=(
            "Consume the events topic, keep every indicator and timeliness clock, and serve them "
            "for Prometheus at http://HOST:CASEWATCH_ENGINE_METRICS_PORT/metrics. Start several "
            "workers (each with its own --metrics-port) to share the partitions."),
    )
    p.add_argument("--metrics-port", type=int, default=None, help="override CASEWATCH_ENGINE_METRICS_PORT")
    p.add_argument("--loglevel", default="warning", help="worker log level (default: warning)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from casewatch import bootstrap
    settings = bootstrap.settings()
    if args.metrics_port:
        settings = settings.model_copy(update={"engine_metrics_port": args.metrics_port})
    # Fail in one sentence before faust starts (it would log a traceback for each of these).
    from casewatch.command_errors import require_free_port, require_kafka
    require_free_port(settings.host, settings.engine_metrics_port,
                      "CASEWATCH_ENGINE_METRICS_PORT (or --metrics-port)")
    require_kafka(settings)
    from faust import Worker

    from services.engine.app import collect_garbage_less_often, create_app
    collect_garbage_less_often()
    app = create_app(settings)
    worker = Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
