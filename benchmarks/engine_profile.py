"""Where the engine's CPU goes on the one-event-per-message path: py-spy (PyPI ``py-spy``) samples
the running engine (``py-spy record --pid``, collapsed stacks, idle threads left out) from its
first counted event to the last; the samples are then turned into µs per event with the CPU per
event measured in the same run (/proc)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 200  # samples a second

# The area of a frame, by its file (py-spy prints the package-relative path).
AREAS = (
    ("casewatch/domain/", "casewatch.domain"),
    ("casewatch/processing/", "casewatch.processing"),
    ("casewatch/adapters/faust/", "casewatch.adapters.faust"),
    ("casewatch/adapters/prometheus/", "casewatch.adapters.prometheus"),
    ("casewatch/adapters/kafka/", "casewatch.adapters.kafka"),
    ("casewatch/", "casewatch (other)"),
    ("services/engine/", "services.engine"),
    ("faust/", "faust"), ("mode/", "mode"), ("aiokafka/", "aiokafka"), ("kafka/", "kafka-python"),
    ("json/", "json"), ("asyncio/", "asyncio"), ("prometheus_client/", "prometheus_client"),
)
# Ours: the library's frames. (services/engine/app.py's agent is Faust's stream loop: everything
# Faust does for a message runs under its frame, so it does not count as ours; what it calls in
# casewatch/ does.)
OURS = ("casewatch/",)
NOT_OURS = ("casewatch/cli.py",)  # the entry point: every frame of the process is under it
REPO = str(Path(__file__).resolve().parents[1]) + "/"
IDLE = ("EpollSelector.select (", "select (selectors.py)")


def py_spy() -> str | None:
    return shutil.which("py-spy") or (str(Path(sys.executable).parent / "py-spy")
                                       if (Path(sys.executable).parent / "py-spy").exists() else None)


def start_py_spy(pid: int, out: Path, state: Path) -> subprocess.Popen | None:
    exe = py_spy()
    if exe is None:
        print("py-spy is not installed (pip install py-spy): no profile", file=sys.stderr)
        return None
    log = open(state / "py-spy.log", "w")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
                             "--nolineno", "--nonblocking", "--full-filenames", "--output", str(out)],
                            stdout=log, stderr=subprocess.STDOUT)


def stop_py_spy(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def short(frame: str) -> str:
    """``function (path)`` with the path from its package (site-packages/ or the repository)."""
    name, _, path = frame.rpartition(" (")
    path = path.rstrip(")")
    for root in ("site-packages/", "/lib/python3"):
        if root in path:
            path = path.split(root, 1)[1]
            path = path.split("/", 1)[1] if root == "/lib/python3" else path
            break
    if path.startswith(REPO):
        path = path[len(REPO):]
    return f"{name} ({path})"


def area(frame: str) -> str:
    path = frame[frame.rfind("(") + 1:].rstrip(")")
    for prefix, name in AREAS:
        if path.startswith(prefix) or f"/{prefix}" in path:
            return name
    return "other (stdlib, C)"


def is_ours(frame: str) -> bool:
    path = frame[frame.rfind("(") + 1:].rstrip(")")
    return path.startswith(OURS) and not path.startswith(NOT_OURS)


def analyse(raw: Path, cpu_us_per_event: float, top: int = 15) -> dict:
    """From py-spy's collapsed stacks: µs per event by area of the innermost frame (self time),
    and our top functions by inclusive time (a function counted once per sample)."""
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        text, _, count = line.rpartition(" ")
        if text and count.isdigit():
            stacks.append(([short(f) for f in text.split(";")], int(count)))
    # the event loop waiting in epoll is not CPU (py-spy counts it as active): left out
    waiting = sum(n for frames, n in stacks if frames[-1].startswith(IDLE))
    stacks = [(frames, n) for frames, n in stacks if not frames[-1].startswith(IDLE)]
    total = sum(n for _, n in stacks)
    if not total:
        return {}
    us = cpu_us_per_event / total
    by_area: Counter = Counter()
    inclusive: Counter = Counter()
    own_self: Counter = Counter()
    ours_inclusive = 0
    leaf: Counter = Counter()
    for frames, n in stacks:
        by_area[area(frames[-1])] += n
        leaf[frames[-1]] += n
        seen = {f for f in frames if is_ours(f)}
        for f in seen:
            inclusive[f] += n
        if seen:
            ours_inclusive += n
            # the innermost of our frames: the work our code did or called into a library for
            innermost = next(f for f in reversed(frames) if is_ours(f))
            own_self[innermost] += n
    return {
        "profile_samples": total,
        "profile_samples_waiting_in_epoll": waiting,
        "profile_cpu_us_per_event": cpu_us_per_event,
        "profile_us_per_event_by_area_self": {k: round(v * us, 1) for k, v in by_area.most_common()},
        "profile_us_per_event_under_our_frames": round(ours_inclusive * us, 1),
        "profile_top_our_frames_inclusive_us": {k: round(v * us, 1) for k, v in inclusive.most_common(top)},
        "profile_top_our_innermost_frames_us": {k: round(v * us, 1) for k, v in own_self.most_common(top)},
        "profile_top_self_frames_us": {k: round(v * us, 1) for k, v in leaf.most_common(top)},
    }
