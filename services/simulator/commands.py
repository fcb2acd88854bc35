"""``casewatch simulate``, ``casewatch replay``, ``casewatch backfill-prometheus`` and
``casewatch history load``."""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from casewatch.simulation.demo import DEMO_HISTORY_DAYS, DEMO_PROFILE, DEMO_SEED
from services.simulator.exceptions import KafkaDown


TODAY = "today"  # a day given as 'today': each command resolves it with the deployment's today
TODAY_HELP = ("\"Today\" (the word 'today' and every default day counted from it) is the deployment's: "
              "CASEWATCH_FIXED_TODAY when set, else the date in London.")


def _date(text: str) -> date | str:
    if text == TODAY:
        return TODAY
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO date YYYY-MM-DD or 'today'") from None


def _resolve_days(args, today: date) -> None:
    """Every day of ``args`` given as 'today' becomes ``today`` (:func:`casewatch.bootstrap.today_for`)."""
    for name in ("until", "scenario_from", "from_date", "to_date"):
        if getattr(args, name, None) == TODAY:
            setattr(args, name, today)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="generate a synthetic authority's case events (history and/or real time)",
        description=(
            "A seeded synthetic local authority whose flows follow a calibration profile "
            "(--profile stockton: the demo authority's published rates; national: England's, "
            "docs/definitions.md): contacts, referrals, assessments, S47s, ICPCs, CP plans, children looked after, "
            "care leavers, early help, allocations and workforce. History mode writes N years of "
            "events up to --until in event-time order; --realtime then keeps producing events at "
            "wall-clock pace times --speed, starting from today at the wall clock's time of day. Ids look like "
            "raw case-system ids; publishing pseudonymises them at the ingest edge. " + TODAY_HELP),
    )
    p.add_argument("--la", default=None, help="comma-separated ONS codes (default: CASEWATCH_LA_CODES)")
    p.add_argument("--population", type=int, default=None,
                   help="children aged 0-17 per authority (default: the profile's, 45,120 for stockton)")
    p.add_argument("--profile", choices=["stockton", "national"], default=DEMO_PROFILE,
                   help="calibration: stockton (default; the demo authority's own published rates) or "
                        "national (England averages)")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
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
                    "events topic, pseudonymised at the edge, so the engine's figures are as of now. " + TODAY_HELP)
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
            "code, calendar and label bounds), write one sample per series per day (00:00 UTC) with "
            "the labels Prometheus's scrape of the engine adds, turn them into TSDB blocks with "
            "`promtool tsdb create-blocks-from openmetrics`, evaluate every recording rule over them "
            "with a temporary Prometheus and write those as blocks too. Stop Prometheus, copy the "
            "block directories from --out into its --storage.tsdb.path, and start it with a retention "
            "that covers them (e.g. --storage.tsdb.retention.time=5y). `casewatch history load` does "
            "all of it, and the Kafka side, in one go. " + TODAY_HELP))
    b.add_argument("--events", type=Path, required=True, help="JSON-lines events file")
    b.add_argument("--out", type=Path, required=True, help="directory for the TSDB blocks")
    b.add_argument("--from-date", type=_date, default=None, help="first day (default: last day minus 2 years)")
    b.add_argument("--to-date", type=_date, default=None, help="last day (default: yesterday)")
    b.add_argument("--instance", default=None,
                   help="the instance label Prometheus gives the engine (default: this stack's engine, "
                        "host:CASEWATCH_ENGINE_METRICS_PORT)")
    b.add_argument("--job", default="casewatch-engine", help="the engine's scrape job (default casewatch-engine)")
    b.add_argument("--promtool", default="/usr/bin/promtool")
    b.set_defaults(func=_backfill)

    h = sub.add_parser(
        "history", help="a council's first load: history into Kafka and two years of figures into Prometheus",
        description="Load a council's history once, so the boards show its trend from the first minute.")
    hsub = h.add_subparsers(dest="history_command", metavar="ACTION")
    hl = hsub.add_parser(
        "load", help="replay event files into Kafka, backfill Prometheus, then start/resume the stack",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "A council's first load, in three steps, with a progress bar and a summary:\n"
            "  1. the events of FILE... (JSON lines or CSV, as `casewatch load` reads them; convert CIN\n"
            "     census and SSDA903 returns first with `casewatch import ... --out FILE.jsonl`) are\n"
            "     checked and pseudonymised at the edge and published to Kafka, each child's events\n"
            "     together, marked as one replay run, so the engine reports itself catching up (and\n"
            "     pages nobody) until the whole history is in; invalid records go to the dead letters;\n"
            "  2. the daily figures of the last two years (and every recording rule over them) are\n"
            "     written as TSDB blocks into Prometheus's data directory; the local stack's Prometheus\n"
            "     is stopped for this and started again;\n"
            "  3. the local stack's Prometheus and engine are started (or left running).\n"
            "Loading the same files again publishes nothing new (stable event ids) and only backfills\n"
            "days not yet backfilled.\n" + TODAY_HELP),
        epilog=("example: casewatch history load extracts/2024.jsonl extracts/2025.jsonl\n"
                "         casewatch history load events.jsonl --prometheus-data /var/lib/prometheus "
                "--instance engine-1:29100 --no-start"))
    hl.add_argument("files", nargs="+", type=Path, metavar="FILE", help="*.jsonl (one event per line) or *.csv")
    hl.add_argument("--format", choices=("jsonl", "csv"), help="file format (default: by extension)")
    hl.add_argument("--source-system", default="history", help="the source_system stamped on the events")
    hl.add_argument("--from-date", type=_date, default=None, help="first day to backfill (default: last day minus 2 years)")
    hl.add_argument("--to-date", type=_date, default=None, help="last day to backfill (default: yesterday)")
    hl.add_argument("--prometheus-data", type=Path, default=None,
                    help="Prometheus's --storage.tsdb.path (default: the local stack's); a Prometheus "
                         "not run by `casewatch stack` must be stopped first")
    hl.add_argument("--instance", default=None,
                    help="the instance label Prometheus gives the engine (default: the local stack's engine)")
    hl.add_argument("--job", default="casewatch-engine", help="the engine's scrape job (default casewatch-engine)")
    hl.add_argument("--skip-kafka", action="store_true", help="only backfill Prometheus (the events are in Kafka)")
    hl.add_argument("--no-start", action="store_true", help="do not start the local stack's Prometheus and engine afterwards")
    hl.set_defaults(func=_history_load)
    h.set_defaults(func=lambda args: (h.print_help(), 2)[1])


# -- simulate ---------------------------------------------------------------------------------------
def _simulate(args) -> int:
    from casewatch import bootstrap
    from casewatch.simulation.authority import Scenario, authority_events
    from services.simulator.output import FileSink, paced

    parts = bootstrap.build()
    settings = parts.settings
    today = parts.today()
    _resolve_days(args, today)
    if args.demo:
        args.realtime = True
        args.publish = args.publish or args.out is None
        if args.history_years is None:
            args.history_years = DEMO_HISTORY_DAYS / 365.25
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

    from casewatch.simulation.rates import profile as rates_profile
    population = args.population or rates_profile(args.profile).POPULATION
    events = authority_events(la_codes, population, args.seed, history_start,
                              None if args.realtime else until, scenarios, profile=args.profile)
    sinks = []
    if args.out:
        sinks.append(FileSink(args.out))
    if args.publish:
        from services.simulator.output import KafkaSink
        sinks.append(KafkaSink(settings))
    count = 0
    if args.publish and not args.out and args.history_years:
        # The history goes out as one batch per child (the engine applies each batch in one
        # step), so a new stack shows two years of figures within a minute; then real time.
        events, count = _publish_history_grouped(events, until, sinks[0])
    if args.realtime:
        from zoneinfo import ZoneInfo
        london = ZoneInfo("Europe/London")
        # real time runs from today (a fixed CASEWATCH_FIXED_TODAY too) at the wall clock's time of day
        now = datetime.combine(today, datetime.now(london).time(), london)
        released_before = datetime.combine(until + timedelta(days=1), datetime.min.time(), london)
        if not args.history_years:
            released_before = now
        events = paced(events, args.speed, released_before=released_before, duration=args.duration, now=now)

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

    run_id = sink.start_replay("history")  # replay-marked: the engine catches up until its end (C5)
    try:
        summary = sink.publisher.send_grouped(history())
    finally:
        sink.end_replay()
    print(f"history: {summary['published']} events in {summary['messages']} messages "
          f"({summary['dead_lettered']} dead-lettered), replay run {run_id}", flush=True)
    return itertools.chain(rest, events), summary["published"]


# -- replay -----------------------------------------------------------------------------------------
def _replay(args) -> int:
    from tqdm import tqdm

    from casewatch import bootstrap
    from services.simulator.output import KafkaSink, read_events

    from casewatch.command_errors import USAGE, CommandError
    if not args.file.is_file():
        raise CommandError(f"{args.file}: no such events file; give the path of a JSON-lines file "
                           "(e.g. from `casewatch simulate --out`)", USAGE)
    total = sum(1 for line in args.file.open(encoding="utf-8") if line.strip())
    settings = bootstrap.settings()
    _resolve_days(args, bootstrap.build(settings).today())
    # Kafka not reachable: said at once, with the fix (exit 1), not after the admin client's retries
    from casewatch.command_errors import require_kafka
    require_kafka(settings)
    from casewatch.adapters.kafka.topics import ensure_topics
    created = ensure_topics(settings)  # the events and dead-letter topics, when missing
    if created:
        print(f"created topic(s): {', '.join(created)}", file=sys.stderr)
    sink = KafkaSink(settings, source_system="replay", replay_kind="replay")  # replay-marked (C5)
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
def _fail(command: str, sentence: str, code: int = 2) -> int:
    print(f"casewatch {command}: {sentence}", file=sys.stderr)
    return code


def _backfill_range(args, today: date) -> tuple[date, date]:
    """The days to backfill: ``--from-date`` .. ``--to-date``, default the two years to yesterday."""
    _resolve_days(args, today)
    last = args.to_date or (today - timedelta(days=1))
    return args.from_date or (last - timedelta(days=DEMO_HISTORY_DAYS)), last


def _scrape_labels(args, settings) -> dict[str, str]:
    from casewatch.adapters.prometheus.backfill import scrape_labels
    labels = scrape_labels(settings)
    labels["job"] = args.job
    if args.instance:
        labels["instance"] = args.instance
    return labels


def _backfill(args) -> int:
    from tqdm import tqdm

    from casewatch import bootstrap
    from casewatch.adapters.prometheus.backfill import backfill_data_dir
    from services.simulator.output import read_events

    if not args.events.is_file():
        return _fail("backfill-prometheus", f"{args.events} is not a file; give --events the JSON-lines events file.")
    first, last = _backfill_range(args, bootstrap.build().today())
    if first > last:
        return _fail("backfill-prometheus", "--from-date is after --to-date; give a first day on or before the last.")
    try:
        events = list(read_events(args.events))
    except ValueError as exc:
        return _fail("backfill-prometheus", f"{exc}; fix or remove that line and run again.", 1)
    settings = bootstrap.settings()
    print(f"computing {len(events)} events' figures for each day {first} .. {last}")
    try:
        with tqdm(unit=" steps", disable=None) as bar:
            summary = backfill_data_dir(events, args.out, first, last, settings, labels=_scrape_labels(args, settings),
                                        promtool=args.promtool, bar=bar)
    except (RuntimeError, OSError) as exc:
        return _fail("backfill-prometheus", f"{exc}", 1)
    print(summary.render())
    print(f"The blocks are in {args.out}. To use them: stop Prometheus, copy these block directories into "
          "its --storage.tsdb.path, and start it with --storage.tsdb.retention.time=5y (or longer than the history).")
    return 0


# -- history load -----------------------------------------------------------------------------------
def _history_load(args) -> int:
    from tqdm import tqdm

    from casewatch import bootstrap
    from casewatch.stack.components import StackError
    from casewatch.stack.manager import StackManager
    from casewatch.edge.bulk_load import BulkLoader, read_records
    from casewatch.edge.pseudonymise import PseudonymisationKeyError
    from casewatch.adapters.prometheus.backfill import backfill_data_dir, backfilled

    t0 = time.monotonic()
    cmd = "history load"
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        return _fail(cmd, f"no such file: {', '.join(missing)}; give the paths of JSON-lines or CSV event files.")
    first, last = _backfill_range(args, bootstrap.build().today())
    if first > last:
        return _fail(cmd, "--from-date is after --to-date; give a first day on or before the last.")
    settings = bootstrap.settings()
    stack = StackManager(settings, parts=["prometheus", "engine"], demo=False)
    data_dir = args.prometheus_data or settings.state_dir / "prometheus" / "data"
    local = args.prometheus_data is None
    try:
        publisher = _history_publisher(settings, args.source_system)
    except PseudonymisationKeyError as exc:
        return _fail(cmd, f"{exc}")

    # 1. check every record (the loader's own checks and stable ids) and keep what the engine gets
    loader = BulkLoader(publisher, dry_run=True)
    valid: list[dict] = []
    raws: list = []
    total = sum(p.stat().st_size for p in args.files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="checking", file=sys.stderr, disable=None) as bar:
        for path in args.files:
            for record in read_records(path, args.format, bar):
                checked = loader.load(record)
                raws.append(record.raw if not isinstance(record.raw, dict) or record.raw.get("event_id")
                            else dict(record.raw, event_id=checked.payload.get("event_id")
                                      if isinstance(checked.payload, dict) else None))
                if checked.ok:
                    valid.append(checked.payload)
    checked_summary = loader.summary
    if not valid:
        return _fail(cmd, f"none of the {checked_summary.read} records is a valid event "
                          "(`casewatch load --dry-run FILE` lists why); fix the extract and run again.", 1)

    # 2. publish, replay-marked, each child's events together
    published = {"published": 0, "dead_lettered": 0, "messages": 0}
    run_id = None
    if not args.skip_kafka:
        try:
            run_id, published = _history_publish(settings, args.source_system, raws)
        except KafkaDown as exc:
            return _fail(cmd, f"Kafka at {settings.bootstrap} is not reachable ({exc}); start it "
                              "(`casewatch stack up --only kafka`) or set CASEWATCH_KAFKA_BOOTSTRAP, then run again.", 1)

    # 3. backfill Prometheus (stopped for it when it is the local stack's)
    done = backfilled(data_dir)
    if done and date.fromisoformat(done["last"]) >= last and date.fromisoformat(done["first"]) <= first:
        print(f"Prometheus already holds the figures {done['first']} .. {done['last']}; nothing to backfill.")
        summary = None
    else:
        if done and date.fromisoformat(done["first"]) <= first <= date.fromisoformat(done["last"]):
            first = date.fromisoformat(done["last"]) + timedelta(days=1)
        was_running = local and stack.processes.get("prometheus") is not None and stack.processes.get("prometheus").alive
        if was_running:
            print("stopping the local stack's Prometheus for the backfill")
            stack.processes.stop("prometheus")
        try:
            with tqdm(unit=" steps", file=sys.stderr, disable=None) as bar:
                summary = backfill_data_dir(valid, data_dir, first, last, settings,
                                            labels=_scrape_labels(args, settings),
                                            marker={"source": "history load", "run": run_id}, bar=bar)
        except (RuntimeError, OSError) as exc:
            return _fail(cmd, f"the backfill failed: {exc}", 1)

    # 4. start / resume
    started = ""
    if local and not args.no_start:
        try:
            stack.up()
            started = "the local stack's Prometheus and engine are running"
        except StackError as exc:
            return _fail(cmd, f"{exc}".splitlines()[0] + "; see `casewatch stack logs prometheus`.", 1)
    elif not local:
        started = f"start Prometheus on {data_dir} now (retention longer than the history, e.g. 5y)"

    print("\nhistory load summary")
    print(f"  records read       {checked_summary.read}")
    print(f"  valid events       {len(valid)}")
    print(f"  rejected           {checked_summary.rejected}" + (" (in the dead-letter topic; `casewatch dlq list`)"
                                                               if checked_summary.rejected and not args.skip_kafka else ""))
    for reason, n in checked_summary.rejected_by_reason.most_common(5):
        print(f"      {n:>8}  {reason}")
    if not args.skip_kafka:
        print(f"  published          {published['published']} events in {published['messages']} messages, "
              f"replay run {run_id}")
    if summary is not None:
        print(f"  {summary.render()}")
    if started:
        print(f"  {started}")
    print(f"  took               {time.monotonic() - t0:.0f}s")
    print("The engine reports casewatch_engine_caught_up 0, and pages nobody, until it has applied the whole run.")
    return 1 if checked_summary.rejected else 0


def _history_publisher(settings, source_system: str):
    from casewatch.simulation.demo import make_publisher
    return make_publisher(settings, source_system)


def _history_publish(settings, source_system: str, raws: list) -> tuple[str, dict]:
    from kafka.errors import KafkaError
    from tqdm import tqdm

    from casewatch.adapters.kafka.publisher import KafkaUnavailable
    from casewatch.adapters.kafka.topics import ensure_topics
    from services.simulator.output import KafkaSink

    try:
        ensure_topics(settings)
        sink = KafkaSink(settings, source_system=source_system, replay_kind="history")
    except (KafkaError, KafkaUnavailable) as exc:
        raise KafkaDown(type(exc).__name__) from None
    try:
        with tqdm(total=len(raws), unit=" events", desc="publishing", file=sys.stderr, disable=None) as bar:
            summary = sink.publisher.send_grouped(raws, progress=bar.update)
        run_id = sink.replay_run
    except (KafkaError, KafkaUnavailable) as exc:
        raise KafkaDown(type(exc).__name__) from None
    finally:
        sink.close()
    return run_id, summary
