"""`casewatch dashboards build|check` and `casewatch grafana push`."""
from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    d = subparsers.add_parser("dashboards", help="build or check the Grafana boards and ratio recording rules")
    dsub = d.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="regenerate dashboards/generated/*.json and prometheus/rules/casewatch_ratios.yml")
    b.set_defaults(func=build)
    c = dsub.add_parser("check", help="fail when the generated files are out of date")
    c.set_defaults(func=check)

    g = subparsers.add_parser("grafana", help="Grafana operations")
    gsub = g.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    p = gsub.add_parser("push", help="create the casewatch folders and upload every board (overwrite)")
    p.add_argument("--url", default=os.environ.get("GRAFANA_URL", "http://localhost:3000"),
                   help="Grafana base URL (default $GRAFANA_URL or http://localhost:3000)")
    p.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN"),
                   help="service account token (default $GRAFANA_TOKEN)")
    p.set_defaults(func=push)


def build(args: argparse.Namespace) -> int:
    from dashboards.build import PROJECT_ROOT, build as do_build
    written = do_build()
    for path in written:
        print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    if not written:
        print("generated files already up to date")
    return 0


def check(args: argparse.Namespace) -> int:
    from dashboards.build import PROJECT_ROOT, stale_files
    stale = stale_files()
    for path in stale:
        print(f"out of date: {path.relative_to(PROJECT_ROOT)} (run `casewatch dashboards build`)")
    return 1 if stale else 0


def push(args: argparse.Namespace) -> int:
    from grafana_client.client import GrafanaException

    from dashboards.build import stale_files
    from dashboards.push import push as do_push
    if stale_files():
        print("the generated boards are out of date: run `casewatch dashboards build` first")
        return 1
    try:
        pushed = do_push(args.url, args.token)
    except (GrafanaException, OSError) as exc:
        print(f"grafana push failed: {type(exc).__name__}: {exc}")
        return 1
    print(f"pushed {len(pushed)} boards: {', '.join(pushed)}")
    return 0
