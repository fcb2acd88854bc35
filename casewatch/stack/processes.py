"""Starting, recognising and stopping the processes the local stack owns.

Each started process gets a pid file (JSON: pid, process-group id, start time and the command) in
``<state_dir>/run``. ``stop`` only signals a process whose pid file matches a live process with the
same start time, so a recycled pid never makes us kill somebody else's program.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def settings_digests(settings: dict[str, str]) -> dict[str, str]:
    """Variable -> a short SHA-256 digest of its value: enough to see that a value changed, and no
    value (a key, a token) written to a pid file."""
    return {name: hashlib.sha256(f"{name}={value}".encode()).hexdigest()[:16]
            for name, value in sorted(settings.items())}


def changed_settings(recorded: dict[str, str] | None, settings: dict[str, str]) -> list[str]:
    """The variables whose value differs from the one recorded (set, unset or changed); none when
    nothing was recorded."""
    if recorded is None:
        return []
    now = settings_digests(settings)
    return sorted(name for name in set(recorded) | set(now) if recorded.get(name) != now.get(name))


def _proc_start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counted after the closing parenthesis of the command name.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@dataclass
class ManagedProcess:
    name: str
    pid: int
    pgid: int
    start_ticks: int | None
    command: list[str]
    log_path: str
    # What the part was started with: CASEWATCH_* variable -> a digest of its value (never the value,
    # which may be a secret); None in pid files written before this was recorded.
    settings: dict[str, str] | None = None

    @property
    def alive(self) -> bool:
        ticks = _proc_start_ticks(self.pid)
        return ticks is not None and ticks == self.start_ticks and not _is_zombie(self.pid)


class ProcessTable:
    """The pid files of one state directory."""

    def __init__(self, state_dir: Path):
        self.run_dir = state_dir / "run"
        self.log_dir = state_dir / "logs"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def get(self, name: str) -> ManagedProcess | None:
        path = self._pid_file(name)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return ManagedProcess(**data)
        except (ValueError, TypeError):
            return None

    def all(self) -> list[ManagedProcess]:
        found = []
        for path in sorted(self.run_dir.glob("*.json")):
            proc = self.get(path.stem)
            if proc:
                found.append(proc)
        return found

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None, settings: dict[str, str] | None = None) -> ManagedProcess:
        """Start ``command`` in a process group of its own; ``settings`` (variable -> value) are
        recorded as digests in the pid file (:func:`settings_digests`)."""
        log_path = self.log_path(name)
        log = open(log_path, "ab")
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name} ====\n".encode())
        log.flush()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        popen = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True,
        )
        log.close()
        proc = ManagedProcess(
            name=name, pid=popen.pid, pgid=popen.pid, start_ticks=_proc_start_ticks(popen.pid),
            command=command, log_path=str(log_path),
            settings=settings_digests(settings) if settings is not None else None,
        )
        self._pid_file(name).write_text(json.dumps(proc.__dict__))
        # Keep a reference so Python does not warn about a child still running at exit.
        _CHILDREN.append(popen)
        return proc

    def stop(self, name: str, timeout: float = 20.0, kill: bool = False) -> bool:
        """Stop one managed process (its whole process group). Returns True if it was running."""
        proc = self.get(name)
        if proc is None:
            return False
        was_running = proc.alive
        if was_running:
            sig = signal.SIGKILL if kill else signal.SIGTERM
            try:
                os.killpg(proc.pgid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while proc.alive and time.monotonic() < deadline:
                _reap()
                time.sleep(0.1)
            if proc.alive:
                try:
                    os.killpg(proc.pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                while proc.alive:
                    _reap()
                    time.sleep(0.05)
        _reap()
        self._pid_file(name).unlink(missing_ok=True)
        return was_running

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log yet)"
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            text = fh.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


_CHILDREN: list[subprocess.Popen] = []


def _reap() -> None:
    for child in list(_CHILDREN):
        if child.poll() is not None:
            _CHILDREN.remove(child)
