"""``casewatch import cin-census FILE``, ``casewatch import ssda903 DIR [DIR...]``, ``casewatch feeds serve``.

Every import streams its input with a progress bar (stderr, shown on a terminal), prints a summary
of counts (never values), sends what cannot be mapped to dead letters, and is idempotent (event ids
are derived from the source records). ``--dry-run`` maps and counts only; ``--out FILE.jsonl``
writes the events (raw identifiers) instead of publishing them; by default they are published
through ``casewatch.adapters.kafka.publisher`` (pseudonymised at the edge, validated, sent to Kafka).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casewatch import bootstrap
from casewatch.config import Settings

from services.feeds.envelope import FeedContext, UNASSIGNED_TEAM, parse_la_map, resolve_la_code
from services.feeds.exceptions import FeedConfigError, ReturnsError
from services.feeds.sinks import DryRunSink, JsonlSink, PublisherSink, Sink


def register(subparsers) -> None:
    imp = subparsers.add_parser("import", help="import statutory returns (CIN census XML, SSDA903)",
                                description="Import a council's statutory returns as casewatch events.")
    isub = imp.add_subparsers(dest="import_command", metavar="RETURN")

    cin = isub.add_parser("cin-census", help="CIN census XML files (2023-24 to 2025-26 layouts)",
                          description="Every file given, and every .xml file in a folder given, is imported.")
    cin.add_argument("files", type=Path, nargs="+", metavar="FILE")
    _common(cin)
    cin.set_defaults(func=cmd_import_cin)

    s903 = isub.add_parser("ssda903", help="SSDA903 returns: one directory (or episodes CSV) per year",
                           description="Several returns are stitched into one history per child by the rules "
                                       "in docs/feeds.md.")
    s903.add_argument("returns", type=Path, nargs="+", metavar="DIR")
    s903.add_argument("--year", type=int, help="the year end of a single return (e.g. 2018 for 2017-18); "
                                               "default: a YEAR column, else inferred from the episodes")
    _common(s903)
    s903.set_defaults(func=cmd_import_903)
    imp.set_defaults(func=lambda args: (imp.print_help(), 2)[1])

    feeds = subparsers.add_parser("feeds", help="live feeds (the DfE CSC API adapter)")
    fsub = feeds.add_subparsers(dest="feeds_command", metavar="COMMAND")
    serve = fsub.add_parser("serve", help="receive DfE CSC API snapshots and publish them as events")
    serve.add_argument("--host", default=None, help="default: CASEWATCH_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, default=29182)
    serve.add_argument("--la-map", default="", help="extra OLD=ONS LA code pairs, e.g. 975=E10000002")
    serve.add_argument("--openapi", type=Path, default=None, help="the DfE openapi.json to validate against (default: the copy in the package)")
    serve.add_argument("--state-file", type=Path, default=None,
                       help="SQLite file of last-seen child states (default: <state dir>/feeds/dfe_api_state.sqlite)")
    serve.add_argument("--out", type=Path, default=None, help="append events to this JSON-lines file instead")
    serve.add_argument("--team", default=UNASSIGNED_TEAM)
    serve.set_defaults(func=cmd_serve)
    feeds.set_defaults(func=lambda args: (feeds.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--la-code", help="ONS code of the authority (default: from the file's LA number)")
    p.add_argument("--la-map", default="", help="extra OLD=ONS pairs for old 3-digit LA numbers")
    p.add_argument("--team", default=UNASSIGNED_TEAM, help="team code for every event (default: unassigned)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--dry-run", action="store_true", help="map and count only; send nothing")
    out.add_argument("--out", type=Path, help="write events to FILE.jsonl (dead letters beside it)")


def _child_identity(settings: Settings):
    """The pseudonymiser, when a key is configured (event ids then never hash a raw id)."""
    try:
        key = settings.read_pseudonymisation_key()
    except OSError:
        key = None
    if not key:
        return None
    from casewatch.edge.pseudonymise import Pseudonymiser
    return Pseudonymiser(key, settings.pseudonymisation_key_version).pseudonym


def _sink(args, source: str, parts: bootstrap.Parts) -> Sink:
    if args.dry_run:
        return DryRunSink(source)
    if args.out:
        return JsonlSink(source, args.out)
    return PublisherSink(source, parts.publisher(source, source=source))


def _progress(desc: str, total: int | None = None):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=" records", file=sys.stderr, disable=None, leave=False)


def cmd_import_cin(args) -> int:
    from services.feeds.cin_census import SOURCE, CinCensusImport, find_census_files, read_header
    try:
        la_map = parse_la_map(args.la_map)
        parts = bootstrap.build()
        identity = _child_identity(parts.settings)
        files = find_census_files(args.files)
        headers = {f: read_header(f) for f in files}
        la_codes = {}
        for f, h in headers.items():
            try:
                la_codes[f] = resolve_la_code(args.la_code, h.lea, la_map)
            except FeedConfigError as exc:
                raise FeedConfigError(f"{f.name}: {exc}") from None
        seen: dict[tuple[str, str], Path] = {}
        for f, h in headers.items():
            key = (la_codes[f], h.label)
            if key in seen:
                raise FeedConfigError(f"{seen[key].name} and {f.name} are both the {h.label} census of one "
                                      "authority: import one of them")
            seen[key] = f
        sink = _sink(args, SOURCE, parts)
    except (FeedConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar = _progress("CIN census children")
    children = [0]

    def tick() -> None:
        children[0] += 1
        bar.update(1)

    try:
        for f in files:
            header = headers[f]
            before = children[0]
            ctx = FeedContext(la_codes[f], SOURCE, args.team, identity)
            run = CinCensusImport(lambda h, ctx=ctx: ctx, sink.event, sink.dead_letter,
                                  note=lambda n, k=1: sink.summary.notes.update({n: k}),
                                  read=lambda n, k=1: sink.summary.records_read.update({n: k}), tick=tick,
                                  today=parts.today)
            run.run(f)
            ref = header.reference_date.isoformat() if header.reference_date else "none"
            sink.summary.inputs.append(f"file {f.name}: census {header.label} (reference date {ref}), "
                                       f"LA {header.lea or '?'} -> {la_codes[f]}, {children[0] - before} children")
    finally:
        bar.close()
        sink.close()
    print(sink.summary.render(f"CIN census import ({len(files)} file(s))", sink.destination))
    return 1 if sink.summary.dead_letters.get("unparseable_xml") else 0


def cmd_import_903(args) -> int:
    from services.feeds.ssda903 import SOURCE, Ssda903Import, find_returns
    if args.year is not None and len(args.returns) > 1:
        print("error: --year only with a single return", file=sys.stderr)
        return 2
    try:
        la_map = parse_la_map(args.la_map)
        parts = bootstrap.build()
        la_code = args.la_code
        if not la_code:
            configured = parts.settings.la_code_list
            if len(configured) != 1:
                raise FeedConfigError("SSDA903 files do not name the authority: pass --la-code")
            la_code = configured[0]
        ctx = FeedContext(resolve_la_code(la_code, None, la_map), SOURCE, args.team, _child_identity(parts.settings))
        returns, not_read = [], []
        for p in args.returns:
            found, skipped = find_returns(p, args.year)
            returns.extend(found)
            not_read.extend(f.name for f in skipped)
        years = [r.year for r in returns if r.year is not None]
        if len(set(years)) != len(years):
            raise ReturnsError("two returns of the same collection year given: import one of them")
        sink = _sink(args, SOURCE, parts)
    except (FeedConfigError, ReturnsError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(iterable, desc):
        from tqdm import tqdm
        return tqdm(iterable, desc=desc, unit=" records", file=sys.stderr, disable=None, leave=False)

    run = Ssda903Import(ctx, sink.event, sink.dead_letter,
                        note=lambda n, k=1: sink.summary.notes.update({n: k}),
                        read=lambda n, k=1: sink.summary.records_read.update({n: k}), progress=progress)
    try:
        for ret in sorted(returns, key=lambda r: r.year or 0):
            run.load(ret)
        run.run()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        sink.close()
    for label, files, rows in run.loaded:
        sink.summary.inputs.append(f"return {label}: {rows} episode rows ({', '.join(files)})")
    sink.summary.not_read.extend(not_read)
    print(sink.summary.render(f"SSDA903 import ({len(run.loaded)} return(s))", sink.destination))
    return 0


def cmd_serve(args) -> int:
    import json
    import uvicorn

    from services.feeds.dfe_api import (
        DEFAULT_OPENAPI, SOURCE, SnapshotAdapter, create_app, default_la_codes, supplier_doors,
    )
    from casewatch.adapters.sqlite.snapshot_state import SqliteSnapshotStore

    parts = bootstrap.build()
    settings = parts.settings
    try:
        la_codes = default_la_codes(parse_la_map(args.la_map))
    except FeedConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    identity = _child_identity(settings)
    if identity is None:
        print("error: the adapter keys its state by pseudonym: set CASEWATCH_PSEUDONYMISATION_KEY(_FILE)",
              file=sys.stderr)
        return 2
    state_file = args.state_file or settings.state_dir / "feeds" / "dfe_api_state.sqlite"
    store = SqliteSnapshotStore(state_file)
    if args.out:
        out = args.out
        out.parent.mkdir(parents=True, exist_ok=True)

        def publish(events):
            with out.open("a", encoding="utf-8") as fh:
                for ev in events:
                    fh.write(json.dumps(ev, separators=(",", ":")) + "\n")

        def publish_dead(dead):
            with out.with_name(out.stem + ".deadletters.jsonl").open("a", encoding="utf-8") as fh:
                for dl in dead:
                    fh.write(json.dumps(dl.to_record(SOURCE), separators=(",", ":")) + "\n")
    else:
        publisher = parts.publisher(SOURCE, source=SOURCE)

        def publish(events):
            publisher.wait([publisher.publish(publisher.check(ev)) for ev in events])

        def publish_dead(dead):
            futures = []
            for dl in dead:
                record = dl.to_record(SOURCE)
                futures.append(publisher.dead_letter(publisher.pseudonymiser.event(dl.payload), record["errors"],
                                                     record["stage"], source=SOURCE))
            publisher.wait(futures)

    try:
        authenticate, may_write = supplier_doors(settings)
        tokens = settings.read_ingest_tokens()
    except (OSError, ValueError) as exc:
        print(f"error: the ingest tokens cannot be read ({type(exc).__name__})", file=sys.stderr)
        return 2
    if not tokens:
        print("error: suppliers authenticate with the ingest tokens: set CASEWATCH_INGEST_TOKENS(_FILE)",
              file=sys.stderr)
        return 2
    from casewatch.erasure import ErasureQueue
    adapter = SnapshotAdapter(la_codes, publish, publish_dead, store, identity, args.team,
                              request_erasure=ErasureQueue.of(settings).request)
    app = create_app(adapter, args.openapi or DEFAULT_OPENAPI, authenticate=authenticate, may_write=may_write)
    uvicorn.run(app, host=args.host or settings.host, port=args.port, log_level="info", access_log=False)
    store.close()
    return 0
