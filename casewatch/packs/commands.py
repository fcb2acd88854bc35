"""``casewatch report cabinet | workload | region``: write the packs as HTML and PDF."""
from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import date
from pathlib import Path

from casewatch import bootstrap
from casewatch.packs.periods import PeriodError, parse_period
from casewatch.packs.population import child_populations
from casewatch.packs.render import RenderError, page_count, print_pdf, render_html
from casewatch.packs.source import PrometheusSource, SourceError, default_prometheus_url

_LA = re.compile(r"^[EWSN]\d{8}$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="the Cabinet pack, the workload-pressures sheet and the regional collation",
                       description="Write a meeting's document as HTML and PDF, every figure read from "
                                   "Prometheus (the same series the boards draw). See docs/reports.md.")
    rsub = p.add_subparsers(dest="report_command", metavar="PACK")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--out", type=Path, required=True, help="directory for the HTML and PDF")
        q.add_argument("--prometheus", default=None,
                       help="Prometheus base URL (default: this stack's, http://HOST:CASEWATCH_PROMETHEUS_PORT)")
        q.add_argument("--no-pdf", action="store_true", help="write the HTML only")

    c = rsub.add_parser("cabinet", help="activity and performance report for a quarter or two months")
    c.add_argument("--period", required=True, help="financial quarter (2026-Q3; Q1 = April-June) or two months (2026-09/10)")
    c.add_argument("--la", default=None, help="ONS code (default: the first of CASEWATCH_LA_CODES)")
    c.add_argument("--published", action="store_true", help="suppress small numbers (DfE practice) for publication")
    c.add_argument("--commentary", type=Path, default=None,
                   help="the manager's commentary (default: commentary/<period>.md if it exists, e.g. commentary/2026-Q3.md)")
    common(c)
    c.set_defaults(func=_cabinet)

    w = rsub.add_parser("workload", help="one A4 landscape page for the fortnightly workload-pressures meeting")
    w.add_argument("--as-of", default=None,
                   help="the day, YYYY-MM-DD (default: today, the live figures; CASEWATCH_FIXED_TODAY when set)")
    w.add_argument("--la", default=None, help="ONS code (default: the first of CASEWATCH_LA_CODES)")
    common(w)
    w.set_defaults(func=_workload)

    r = rsub.add_parser("region", help="published figures of several authorities side by side")
    r.add_argument("--period", required=True, help="as for `report cabinet`")
    r.add_argument("--la", required=True, help="comma-separated ONS codes, e.g. E06000004,E06000001")
    common(r)
    r.set_defaults(func=_region)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fail(sentence: str) -> int:
    print(f"casewatch report: {sentence}", file=sys.stderr)
    return 2


def _la(value: str | None) -> str:
    if value is None:
        value = bootstrap.settings().la_code_list[0]
    if not _LA.match(value):
        raise ValueError(f"{value!r} is not an ONS authority code: pass e.g. --la E06000004")
    return value


def _source(args) -> PrometheusSource:
    """Prometheus (``--prometheus``, else this stack's), read with the deployment's "today" (London's,
    or CASEWATCH_FIXED_TODAY), child populations and drift limits."""
    parts = bootstrap.build()
    settings = parts.settings
    src = PrometheusSource(args.prometheus or default_prometheus_url(settings), today=parts.today,
                           populations=child_populations(settings.child_population),
                           drift_limits=settings.drift_limits)
    src.ready()
    return src


def _write(args, template: str, stem: str, **context) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    html = out / f"{stem}.html"
    html.write_text(render_html(template, **context), encoding="utf-8")
    print(f"wrote {html}")
    if not args.no_pdf:
        pdf = out / f"{stem}.pdf"
        print_pdf(html, pdf)
        pages = page_count(pdf)
        print(f"wrote {pdf}" + (f" ({pages} page{'s' if pages != 1 else ''})" if pages else ""))
    return 0


def _run(args, body) -> int:
    t0 = time.monotonic()
    try:
        code = body()
    except (PeriodError, ValueError) as exc:
        return _fail(str(exc))
    except SourceError as exc:
        return _fail(str(exc))
    except RenderError as exc:
        return _fail(str(exc))
    print(f"done in {time.monotonic() - t0:.1f}s")
    return code


def _cabinet(args) -> int:
    from casewatch.packs import cabinet

    def body() -> int:
        period = parse_period(args.period)
        la = _la(args.la)
        child_populations(bootstrap.settings().child_population)  # a mistake in it is told before any query
        commentary_file = args.commentary or Path("commentary") / f"{period.slug}.md"
        if args.commentary is not None and not args.commentary.exists():
            raise ValueError(f"no commentary file {args.commentary}: write it or leave out --commentary")
        pack = cabinet.build(_source(args), la, period, args.published, cabinet.read_commentary(commentary_file))
        for line in pack.missing:
            print(f"missing: {line}")
        stem = f"cabinet-{la}-{period.slug}" + ("-published" if args.published else "")
        return _write(args, "cabinet.html.j2", stem, pack=pack, commentary=cabinet.read_commentary(commentary_file),
                      commentary_file=str(commentary_file))
    return _run(args, body)


def _workload(args) -> int:
    from casewatch.packs import workload

    def body() -> int:
        try:
            as_of = date.fromisoformat(args.as_of) if args.as_of else bootstrap.build().today()
        except ValueError:
            raise ValueError(f"{args.as_of!r} is not a date: write --as-of YYYY-MM-DD") from None
        la = _la(args.la)
        sheet = workload.build(_source(args), la, as_of)
        for line in sheet.missing:
            print(f"missing: {line}")
        return _write(args, "workload.html.j2", f"workload-{la}-{as_of.isoformat()}", sheet=sheet)
    return _run(args, body)


def _region(args) -> int:
    from casewatch.packs import region

    def body() -> int:
        period = parse_period(args.period)
        las = [_la(code.strip()) for code in args.la.split(",") if code.strip()]
        if len(las) < 2:
            raise ValueError("a regional collation needs at least two authorities: --la A,B")
        child_populations(bootstrap.settings().child_population)
        sheet = region.build(_source(args), las, period)
        return _write(args, "region.html.j2", f"region-{period.slug}", sheet=sheet)
    return _run(args, body)
