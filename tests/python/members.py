"""Consumer group members as separate processes (group_member.py), watched from the test.

Each member's JSON events are read by a thread; the test asks for its current assignment,
what it consumed, and what it committed, and can SIGKILL it like a crashed consumer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from checker import Observed

MEMBER_SCRIPT = Path(__file__).with_name("group_member.py")


class Member:
    def __init__(self, client: str, bootstrap: str, topic: str, group: str, name: str, *,
                 log_dir: Path, session_timeout_ms: int = 3000, max_seconds: float = 150.0,
                 instance_id: str | None = None):
        self.name = name
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._stderr = open(log_dir / f"{name}.stderr", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(MEMBER_SCRIPT), "--client", client, "--bootstrap", bootstrap,
             "--topic", topic, "--group", group, "--name", name,
             "--session-timeout-ms", str(session_timeout_ms), "--max-seconds", str(max_seconds)]
            + (["--instance-id", instance_id] if instance_id else []),
            stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(event)

    def _snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def snapshot(self) -> list[dict]:
        """Every event so far, in the order the member reported them."""
        return self._snapshot()

    def assignment(self) -> list[int] | None:
        assigned = [e for e in self._snapshot() if e["event"] == "assigned"]
        return assigned[-1]["partitions"] if assigned else None

    def assignments_since(self, t: float) -> list[tuple[float, list[int]]]:
        return [(e["t"], e["partitions"]) for e in self._snapshot()
                if e["event"] == "assigned" and e["t"] >= t]

    def has_led(self) -> bool:
        """Whether this member ran the assignor (reported by kafka-python members only)."""
        return any(e["event"] == "leader" for e in self._snapshot())

    def revocations_since(self, t: float) -> list[list[int]]:
        """Partitions revoked by each rebalance that began after `t`."""
        return [e["partitions"] for e in self._snapshot() if e["event"] == "revoked" and e["t"] >= t]

    def records(self) -> list[tuple[str, int, int]]:
        return [tuple(r) for e in self._snapshot() if e["event"] == "records" for r in e["recs"]]

    def uncommitted(self) -> list[tuple[str, int, int]]:
        """Records delivered after the last commit that returned (redelivered if it dies)."""
        tail: list[tuple[str, int, int]] = []
        for e in self._snapshot():
            if e["event"] == "records":
                tail.extend(tuple(r) for r in e["recs"])
            elif e["event"] == "committed":
                tail = []
        return tail

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> float:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return time.monotonic()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        self._stderr.close()

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            text = Path(self._stderr.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class GroupReads:
    """What a group read, as one history the checker can take."""
    # The first read of each (partition, offset), in offset order per partition.
    seen: list[Observed] = field(default_factory=list)
    # Later reads of an already read (partition, offset): (id, partition, offset).
    repeats: list[tuple[str, int, int]] = field(default_factory=list)
    # (member, partition, previous offset, offset) where a member's reads of a partition did
    # not strictly increase within one ownership.
    steps_back: list[tuple[str, int, int, int]] = field(default_factory=list)


def group_reads(streams: dict[str, list[dict]]) -> GroupReads:
    """Checks a group's reads from each member's events (name -> `Member.snapshot()`).

    Members read at the same time, so their streams cannot be concatenated and checked as one
    consumer's: a partition that moved from one member to another would show a step back to
    wherever the first began. Order is checked where it is promised instead: within one
    ownership (between a member's rebalance events) a partition's offsets strictly increase.
    A new ownership starts at the committed offset, so repeats across ownerships are reported
    for the caller to explain (e.g. reads a killed member never committed). `seen` is ordered
    by offset, so `check` finds any loss, duplicate or misplacement but no order of its own."""
    out = GroupReads()
    first: dict[tuple[int, int], Observed] = {}
    for name, events in streams.items():
        last: dict[int, int] = {}
        for e in events:
            if e["event"] in ("assigned", "revoked"):
                last = {}
            elif e["event"] == "records":
                for rid, p, o in e["recs"]:
                    prev = last.get(p)
                    if prev is not None and o <= prev:
                        out.steps_back.append((name, p, prev, o))
                    last[p] = o if prev is None else max(prev, o)
                    if (p, o) in first:
                        out.repeats.append((rid, p, o))
                    else:
                        first[(p, o)] = Observed(rid, p, o)
    out.seen = [first[k] for k in sorted(first)]
    return out


def wait_until(predicate, timeout: float, what: str, members: list[Member] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for m in members:
            if not m.alive() and m.proc.returncode not in (0, -9):
                raise AssertionError(f"member {m.name} exited {m.proc.returncode}:\n{m.stderr_tail()}")
        time.sleep(0.1)
    states = {m.name: m.assignment() for m in members}
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; assignments {states}")
