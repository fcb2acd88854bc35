"""``casewatch simulate``, ``casewatch replay`` and ``casewatch backfill-prometheus``."""
from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path


def _date(text: str) -> date:
    if text == "today":
        from zoneinfo import ZoneInfo
        return datetime.now(ZoneInfo("Europe/London")).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO date YYYY-MM-DD or 'today'") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="generate a synthetic authority's case events (history and/or real time)",
        description=(
            "A seeded synthetic local authority whose flows follow the national rates (domain.md "
            "§2): contacts, referrals, assessments, S47s, ICPCs, CP plans, children looked after, "
            "care leavers, early help, allocations and workforce. History mode writes N years of "
            "events up to --until in event-time order; --realtime then keeps producing events at "
            "wall-clock pace times --speed. Ids look like raw case-system ids; publishing "
            "pseudonymises them at the ingest edge."),
    )
    p.add_argument("--la", default=None, help="comma-separated ONS codes (default: CASEWATCH_LA_CODES)")
    p.add_argument("--population", type=int, default=40000, help="children aged 0-17 per authority")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--history-years", type=float, default=None, help="years of history before --until")
    p.add_argument("--until", type=_date, default=None, help="last day of the history (default today)")
    p.add_argument("--realtime", action="store_true", help="after the history, continue in real time")
    p.add_argument("--speed", type=float, default=60.0, help="real-time speed-up factor (default 60)")
    p.add_argument("--duration", type=float, default=None, help="stop real time after this many seconds")
    p.add_argument("--scenario", action="append", default=[], choices=["referral_surge", "staff_shortage"])
    p.add_argument("--team", default="cp_1", help="team for staff_shortage (default cp_1)")
    p.add_argument("--scenario-from", type=_date, default=None,
                   help="date the scenarios start (default: 8 weeks before --until; today in real time)")
    p.add_argument("--out", type=Path, default=None, help="write JSON lines to this file")
    p.add_argument("--publish", action="store_true", help="publish to Kafka through the ingest path")
    p.add_argument("--demo", action="store_true",
                   help="the stack's living demo: 2 years of history to yesterday, then real time at --speed")
    p.set_defaults(func=_simulate)

    r = sub.add_parser(
        "replay", help="load an events file into Kafka (through the loader path) with progress",
        description="Publish a JSON-lines events file (e.g. from `casewatch simulate --out`) to the "
                    "events topic, pseudonymised at the edge, so the engine's figures are as of now.")
    r.add_argument("file", type=Path)
    r.add_argument("--from-date", type=_date, default=None, help="only events on or after this date")
    r.add_argument("--to-date", type=_date, default=None, help="only events on or before this date")
    r.add_argument("--one-event-per-message", action="store_true",
                   help="send each event as its own Kafka message (default: each child's events are "
                        "sent together, up to 200 a message, which the engine applies in one step)")
    r.set_defaults(func=_replay)

    b = sub.add_parser(
        "backfill-prometheus", help="write the daily history of every indicator as Prometheus TSDB blocks",
        description=(
            "Compute every indicator as of each day from an events file (the engine's own domain "
            "code), write OpenMetrics with one sample per series per day (12:00 UTC), and run "
            "`promtool tsdb create-blocks-from openmetrics`. Then stop Prometheus, copy the block "
            "directories from --out into its --storage.tsdb.path, and start it with a retention "
            "that covers them (e.g. --storage.tsdb.retention.time=5y)."))
    b.add_argument("--events", type=Path, required=True, help="JSON-lines events file")
    b.add_argument("--out", type=Path, required=True, help="directory for the TSDB blocks")
    b.add_argument("--from-date", type=_date, default=None, help="first day (default: last day minus 2 years)")
    b.add_argument("--to-date", type=_date, default=None, help="last day (default: yesterday)")
    b.add_argument("--openmetrics", type=Path, default=None, help="keep the OpenMetrics file here")
    b.add_argument("--promtool", default="/usr/bin/promtool")
    b.set_defaults(func=_backfill)


# -- simulate ---------------------------------------------------------------------------------------
def _simulate(args) -> int:
    from casewatch.config import get_settings
    from services.simulator.authority import Scenario, authority_events
    from services.simulator.output import FileSink, paced

    settings = get_settings()
    today = _date("today")
    if args.demo:
        args.realtime = True
        args.publish = args.publish or args.out is None
        if args.history_years is None:
            args.history_years = 2.0
        if args.until is None:
            args.until = today - timedelta(days=1)
    if not args.out and not args.publish:
        print("ERROR: say where events go: --out FILE.jsonl or --publish", file=sys.stderr)
        return 2
    if args.history_years is None and not args.realtime:
        args.history_years = 2.0
    until = args.until or today
    history_start = until - timedelta(days=int(round((args.history_years or 0) * 365.25))) \
        if args.history_years else until
    la_codes = [c.strip() for c in (args.la or ",".join(settings.la_code_list)).split(",") if c.strip()]
    scenario_from = args.scenario_from or (today if args.realtime and not args.history_years
                                           else until - timedelta(days=56))
    try:
        scenarios = [Scenario(name, scenario_from, args.team if name == "staff_shortage" else None)
                     for name in args.scenario]
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2

    events = authority_events(la_codes, args.population, args.seed, history_start,
                              None if args.realtime else until, scenarios)
    sinks = []
    if args.out:
        sinks.append(FileSink(args.out))
    if args.publish:
        try:
            from services.simulator.output import KafkaSink
            sinks.append(KafkaSink(settings))
        except ImportError:
            print("ERROR: publishing needs the ingest publisher (services.ingest); use --out", file=sys.stderr)
            return 1
    count = 0
    if args.publish and not args.out and args.history_years:
        # The history goes out as one batch per child (the engine applies each batch in one
        # step), so a new stack shows two years of figures within a minute; then real time.
        events, count = _publish_history_grouped(events, until, sinks[0])
    if args.realtime:
        from zoneinfo import ZoneInfo
        released_before = datetime.combine(until + timedelta(days=1), datetime.min.time(),
                                           ZoneInfo("Europe/London"))
        if not args.history_years:
            released_before = datetime.now(timezone.utc)
        events = paced(events, args.speed, released_before=released_before, duration=args.duration)

    try:
        from tqdm import tqdm
        for event in tqdm(events, unit=" events", disable=args.realtime or not sys.stderr.isatty()):
            for sink in sinks:
                sink.send(event)
            count += 1
    except KeyboardInterrupt:
        pass
    finally:
        for sink in sinks:
            sink.close()
    where = ", ".join([str(args.out)] * bool(args.out) + ["Kafka"] * bool(args.publish))
    print(f"{count} events for {len(la_codes)} authorit{'y' if len(la_codes) == 1 else 'ies'} -> {where}")
    return 0


def _publish_history_grouped(events, until, sink):
    """Send the events dated up to ``until`` grouped per child; return the rest and the count."""
    import itertools
    events = iter(events)
    rest: list = []

    def history():
        for event in events:
            if str(event.get("effective_date", ""))[:10] > until.isoformat():
                rest.append(event)
                return
            yield event

    summary = sink.publisher.send_grouped(history())
    print(f"history: {summary['published']} events in {summary['messages']} messages "
          f"({summary['dead_lettered']} dead-lettered)", flush=True)
    return itertools.chain(rest, events), summary["published"]


# -- replay -----------------------------------------------------------------------------------------
def _replay(args) -> int:
    from tqdm import tqdm

    from casewatch.config import get_settings
    from services.simulator.output import KafkaSink, read_events

    if not args.file.is_file():
        print("ERROR: the events file does not exist", file=sys.stderr)
        return 2
    total = sum(1 for line in args.file.open(encoding="utf-8") if line.strip())
    settings = get_settings()
    try:
        from kafka.errors import KafkaError

        from services.ingest.topics import ensure_topics
        created = ensure_topics(settings)  # the events and dead-letter topics, when missing
        if created:
            print(f"created topic(s): {', '.join(created)}", file=sys.stderr)
    except KafkaError as exc:
        print(f"ERROR: Kafka at {settings.bootstrap} is not reachable ({type(exc).__name__})", file=sys.stderr)
        return 1
    try:
        sink = KafkaSink(settings, source_system="replay", replay_kind="replay")  # replay-marked (C5)
    except ImportError:
        print("ERROR: replay needs the ingest publisher (services.ingest)", file=sys.stderr)
        return 1
    def selected():
        for event in read_events(args.file):
            d = str(event.get("effective_date", ""))[:10]
            if (args.from_date and d < args.from_date.isoformat()) or (args.to_date and d > args.to_date.isoformat()):
                continue
            yield event

    try:
        with tqdm(total=total, unit=" events", desc="replay", disable=None) as bar:
            if args.one_event_per_message:
                sent = 0
                for event in selected():
                    sink.send(event)
                    sent += 1
                    bar.update(1)
                summary = {"published": sent}
            else:
                summary = sink.publisher.send_grouped(selected(), progress=bar.update)
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.close()
    print("replay summary: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return 1 if summary.get("dead_lettered") else 0


# -- backfill ---------------------------------------------------------------------------------------
def _backfill(args) -> int:
    from tqdm import tqdm

    from services.simulator.backfill import create_blocks, write_openmetrics
    from services.simulator.output import read_events

    if not args.events.is_file():
        print("ERROR: the events file does not exist", file=sys.stderr)
        return 2
    try:
        events = list(read_events(args.events))
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    last = args.to_date or (_date("today") - timedelta(days=1))
    first = args.from_date or (last - timedelta(days=730))
    if first > last:
        print("ERROR: --from-date is after --to-date", file=sys.stderr)
        return 2
    om_file = args.openmetrics or (args.out.parent / f"{args.out.name}.openmetrics.txt")
    print(f"computing {len(events)} events' indicators for each day {first} .. {last}")
    with tqdm(total=(last - first).days + 1, unit=" days", desc="indicators") as bar:
        n = write_openmetrics(events, om_file, first, last, progress=bar.update)
    print(f"wrote {n} samples to {om_file}; running promtool ...")
    try:
        create_blocks(om_file, args.out, promtool=args.promtool)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    blocks = sorted(p.name for p in args.out.iterdir() if p.is_dir())
    print(f"{len(blocks)} TSDB blocks in {args.out}.\n"
          "To use them: stop Prometheus, copy these block directories into its --storage.tsdb.path, "
          "and start it with --storage.tsdb.retention.time=5y (or longer than the history).")
    return 0
