"""``casewatch stack up | down | status | logs``: the whole stack on one machine, no Docker.

``up`` is idempotent: a part already running and healthy is left alone; one running with other
settings than it was started with (say a changed ``CASEWATCH_FIXED_TODAY``) is left alone too and
named in ``stale``, for ``restart``. Before it starts anything, ``up`` checks every port the parts
it will start listen on (casewatch/stack/ports.py). It waits for each part to be healthy before
starting the next, prints what runs where, and when a part fails it says which part, why (the last
lines of its log) and where the full log is. ``restart`` stops the given parts and starts them again
with the current settings. ``down`` stops every process that ``up`` started (by pid file, checked
against the live process) and nothing else.
"""
from __future__ import annotations

import sys
import threading
import time
from datetime import date, timedelta
from typing import Callable

from casewatch.bootstrap import today_for
from casewatch.config import Settings
from casewatch.stack import components as c
from casewatch.stack.ports import check_ports, stack_ports
from casewatch.stack.processes import ProcessTable, changed_settings

START_ORDER = ["kafka", "prometheus", "alertmanager", "mailbox", "notifier", "engine", "ingest", "simulator"]


class StackManager:
    def __init__(self, settings: Settings, log: Callable[[str], None] = print,
                 parts: list[str] | None = None, demo: bool = True, demo_until: date | None = None):
        self.settings = settings
        self.log = log
        self.processes = ProcessTable(settings.state_dir)
        self.demo = demo
        self.parts = parts or START_ORDER
        # The demo's last history day, fixed once so the Prometheus backfill and the simulator's
        # replay into Kafka are the same history even when `up` runs across midnight.
        self.demo_until = demo_until or (today_for(settings)() - timedelta(days=1))
        # Parts found running with settings that changed since they started: name -> variables.
        self.stale: dict[str, list[str]] = {}

    def components(self) -> list[c.Component]:
        s = self.settings
        builders = {
            "kafka": lambda: c.kafka_component(s, self.log),
            "prometheus": lambda: c.prometheus_component(s, self.log),
            "alertmanager": lambda: c.alertmanager_component(s, self.log),
            "mailbox": lambda: c.mailbox_component(s),
            "notifier": lambda: c.notifier_component(s),
            "engine": lambda: c.engine_component(s),
            "ingest": lambda: c.ingest_component(s),
            "simulator": lambda: c.simulator_component(s, self.demo_until) if self.demo else None,
        }
        found = []
        for name in START_ORDER:
            if name not in self.parts:
                continue
            comp = builders[name]()
            if comp is not None and comp.available():
                found.append(comp)
        return found

    # -- up ----------------------------------------------------------------------------------
    def up(self) -> list[c.Component]:
        started = []
        components = self.components()
        # Every port of every part about to start, before anything starts (a running part holds its own).
        ports = stack_ports(self.settings)
        check_ports([use for comp in components if not self._alive(comp.name) for use in ports[comp.name]])
        # The state dir holds pseudonymised events (Kafka segments), mails and secrets: owner only.
        self.settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.settings.state_dir.chmod(0o700)
        # With the demo, the history backfill runs beside the other parts' start (and the engine's
        # catch-up on the demo history), and Prometheus, which must not start before it, last.
        backfill: threading.Thread | None = None
        failure: list[BaseException] = []
        held = [comp for comp in components if comp.name == "prometheus" and self.demo]
        if held:
            def run_backfill() -> None:
                try:
                    self.backfill_demo_history()
                except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                    failure.append(exc)
            backfill = threading.Thread(target=run_backfill, name="demo-history-backfill", daemon=True)
            backfill.start()
        try:
            for comp in components:
                if any(comp is h for h in held):
                    continue
                self.start_component(comp)
                started.append(comp)
                if comp.name == "kafka":
                    self.create_topics()
        finally:
            if backfill is not None:
                backfill.join()  # also when a part failed: the backfill's own Prometheus stops with it
        if failure:
            raise failure[0]
        for comp in held:
            self.start_component(comp)
            started.append(comp)
        return started

    def backfill_demo_history(self) -> None:
        """Before Prometheus first starts: the demo authority's two years of daily figures and
        recording rules as TSDB blocks in its data dir (casewatch/adapters/prometheus/backfill.py), so the
        boards show two years of trend at once. Skipped while Prometheus runs, and for the days
        already backfilled (a marker file in the data dir says which)."""
        running = self.processes.get("prometheus")
        if running and running.alive:
            return
        from casewatch.adapters.prometheus.backfill import backfill_data_dir, backfilled
        from casewatch.simulation.demo import DEMO_HISTORY_DAYS, demo_history_payloads
        data_dir = self.settings.state_dir / "prometheus" / "data"
        until = self.demo_until
        first = until - timedelta(days=DEMO_HISTORY_DAYS)
        done = backfilled(data_dir)
        if done:
            last_done = date.fromisoformat(done["last"])
            if last_done >= until:
                return
            first = max(first, last_done + timedelta(days=1))
        self.log(f"  {'history':<13} writing the demo's daily figures {first} .. {until} into Prometheus "
                 "(once, beside the other parts' start; about a minute, more on a busy machine)")
        t0 = time.monotonic()
        from tqdm import tqdm
        with tqdm(unit=" steps", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False) as bar:
            try:
                summary = backfill_data_dir(demo_history_payloads(self.settings, until), data_dir, first, until,
                                            self.settings, marker={"source": "demo"}, bar=bar)
            except (RuntimeError, OSError) as exc:
                raise c.StackError(f"the demo history could not be written into Prometheus: {exc}") from exc
        self.log(f"  {'history':<13} done in {time.monotonic() - t0:5.1f}s  {summary.render()}")

    def create_topics(self) -> None:
        from casewatch.adapters.kafka.topics import ensure_topics
        ensure_topics(self.settings)

    def restart(self) -> list[c.Component]:
        """Stop this manager's parts (those running) and start them again with the current settings."""
        for comp in reversed(self.components()):
            self.processes.stop(comp.name)
        return self.up()

    def _alive(self, name: str) -> bool:
        running = self.processes.get(name)
        return bool(running and running.alive)

    def start_component(self, comp: c.Component) -> None:
        running = self.processes.get(comp.name)
        changed = changed_settings(running.settings, comp.config) if running and running.alive else []
        if changed:
            self.stale[comp.name] = changed
            self.log(f"  {comp.name:<13} running with changed settings ({', '.join(changed)})  {comp.url}")
            return
        if running and running.alive and comp.health()[0]:
            self.log(f"  {comp.name:<13} already running  {comp.url}")
            return
        if running and running.alive:
            self.processes.stop(comp.name)
        t0 = time.monotonic()
        try:
            command = comp.prepare()
        except c.StackError as exc:
            raise c.StackError(f"{comp.name} could not be prepared: {exc}") from exc
        proc = self.processes.start(comp.name, command, env=comp.env, cwd=c.PROJECT_ROOT, settings=comp.config)
        deadline = t0 + comp.start_timeout
        detail = ""
        while time.monotonic() < deadline:
            if not proc.alive:
                raise c.StackError(self._failure(comp, "the process exited"))
            ok, detail = comp.health()
            if ok:
                self.log(f"  {comp.name:<13} up in {time.monotonic() - t0:5.1f}s  {comp.url}")
                return
            time.sleep(0.5)
        raise c.StackError(self._failure(comp, f"not healthy after {comp.start_timeout:.0f}s ({detail})"))

    def _failure(self, comp: c.Component, why: str) -> str:
        return (f"{comp.name} failed to start: {why}.\n"
                f"Last lines of its log:\n{self.processes.tail(comp.name, 25)}\n"
                f"Full log: {self.processes.log_path(comp.name)}")

    # -- down / status -------------------------------------------------------------------------
    def down(self) -> list[str]:
        stopped = []
        known = {p.name for p in self.processes.all()}
        order = [n for n in reversed(START_ORDER) if n in known] + sorted(known - set(START_ORDER))
        for name in order:
            if self.processes.stop(name):
                stopped.append(name)
        return stopped

    def status(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for comp in self.components():
            proc = self.processes.get(comp.name)
            if proc is None or not proc.alive:
                rows.append((comp.name, "stopped", comp.url, ""))
                continue
            ok, detail = comp.health()
            changed = changed_settings(proc.settings, comp.config)
            if changed:
                detail = (f"{detail}; started with other {', '.join(changed)}: "
                          f"`casewatch stack restart {comp.name}`")
            rows.append((comp.name, "healthy" if ok else "unhealthy", comp.url, detail))
        return rows

