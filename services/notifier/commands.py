"""`casewatch notifier`: run the on-call notifier."""
from __future__ import annotations

import argparse
import logging


def register(subparsers) -> None:
    p = subparsers.add_parser("notifier", help="run the on-call alert notifier (Alertmanager webhook -> mail)",
                              description="Receive Alertmanager webhooks on /alerts and mail the on-call "
                                          "manager from the rota (CASEWATCH_ROTA_FILE) over SMTP "
                                          "(CASEWATCH_SMTP_HOST/PORT). /alerts needs the bearer credentials in "
                                          "CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE (default: "
                                          "<state dir>/notifier-webhook.secret).")
    p.add_argument("--host", help="listen address (default CASEWATCH_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default CASEWATCH_NOTIFIER_PORT, 29181)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from casewatch.command_errors import USAGE, CommandError
    from services.notifier.app import create_app
    from services.notifier.exceptions import RotaError
    from services.notifier.rota import load_rota
    from casewatch import bootstrap
    from casewatch.config import WebhookSecretError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = bootstrap.notifier_settings()
    try:
        load_rota(settings.rota_file)
        app = create_app(settings)
    except (RotaError, WebhookSecretError) as exc:
        raise CommandError(str(exc), USAGE) from None
    except (OSError, ValueError) as exc:  # our alert rules cannot be read
        raise CommandError(f"the alert rules in {settings.rules_dir} cannot be read ({type(exc).__name__}): "
                           "set CASEWATCH_RULES_DIR", USAGE) from None
    from casewatch.command_errors import require_free_port
    require_free_port(args.host or settings.host, args.port or settings.notifier_port,
                      "CASEWATCH_NOTIFIER_PORT (or --port)")
    if settings.notifier_read_port is not None:
        require_free_port(settings.notifier_read_host or args.host or settings.host, settings.notifier_read_port,
                          "CASEWATCH_NOTIFIER_READ_PORT")
    from casewatch import http_serving
    http_serving.serve(app, args.host or settings.host, args.port or settings.notifier_port, app.state.read_app,
                       settings.notifier_read_host, settings.notifier_read_port, log_level="warning")
    return 0
