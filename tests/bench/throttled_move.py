"""Benchmark: producer latency while a partition moves, unthrottled and throttled (issue #18).

Three nodes (combined roles) on this machine. An acks=all producer (`shoal-bench produce`,
librdkafka, 100-byte records at a fixed rate over an RF=3 topic) runs three windows of the same
length:

  1. baseline: nothing moves;
  2. unthrottled: a large partition on brokers 1,2 gains a replica on broker 3
     (`shoalctl partition reassign --wait`), started 1 s into the window;
  3. throttled: the same move of an identical partition with `--throttle`.

It prints one JSON object per window and a summary line; the claim checked by eye in
docs/benchmarks.md is "p99 during a throttled move <= 2 x the baseline p99". The bound is a
measurement, never asserted: a loaded machine moves it.

Knobs (environment): THROTTLE_MB (partition size, default 300), THROTTLE_RATE_BPS (default
10000000), THROTTLE_LOAD_RATE (records/s, default 20000), THROTTLE_WINDOW_S (default 12),
THROTTLE_QUOTA_WINDOWS (the brokers' replication.quota.window.num), SHOAL_BIN / SHOALCTL_BIN /
SHOAL_BENCH_BIN (default target/release).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))

from cluster import Cluster  # noqa: E402

RELEASE = REPO / "target" / "release"
SHOALCTL = os.environ.get("SHOALCTL_BIN") or str(RELEASE / "shoalctl")
BENCH = os.environ.get("SHOAL_BENCH_BIN") or str(RELEASE / "shoal-bench")
SIZE_MB = int(os.environ.get("THROTTLE_MB", "300"))
THROTTLE_BPS = int(os.environ.get("THROTTLE_RATE_BPS", "10000000"))
LOAD_RATE = int(os.environ.get("THROTTLE_LOAD_RATE", "20000"))
WINDOW_S = int(os.environ.get("THROTTLE_WINDOW_S", "12"))
# The brokers' replication.quota.window.num (unset: Kafka's default, 11).
QUOTA_WINDOWS = os.environ.get("THROTTLE_QUOTA_WINDOWS")


def run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def bench(bootstrap: str, *args: str, timeout: float = 600) -> dict:
    r = run([BENCH, *args, "--brokers", bootstrap, "--json"], timeout)
    if r.returncode != 0:
        raise SystemExit(f"shoal-bench {args[0]} failed: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ctl(bootstrap: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return run([SHOALCTL, "--brokers", bootstrap, *args], timeout)


def settle() -> None:
    """Writes every dirty page back before a window: the fill and the previous move leave
    hundreds of MB for the kernel's writeback, which would otherwise stall the brokers' writes
    (dirty-page throttling) inside whichever window it lands in."""
    os.sync()
    time.sleep(1)


def window(bootstrap: str, label: str, move: list[str] | None) -> dict:
    """One load window; `move` (shoalctl arguments) starts 1 s in and is timed."""
    settle()
    moved: dict = {}

    def mover() -> None:
        time.sleep(1)
        started = time.monotonic()
        r = ctl(bootstrap, *move)
        moved["move_s"] = round(time.monotonic() - started, 1)
        if r.returncode != 0:
            moved["move_error"] = r.stderr.strip()

    t = threading.Thread(target=mover) if move else None
    if t:
        t.start()
    result = bench(bootstrap, "produce", "--topic", "load", "--acks", "all", "--rate", str(LOAD_RATE),
                   "--records", str(LOAD_RATE * WINDOW_S), "--max-seconds", str(WINDOW_S + 5))
    if t:
        t.join(900)
    row = {"window": label, **{k: result.get(k) for k in ("records_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms",
                                                          "errors")}, **moved}
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="shoal-throttle-bench-") as tmp:
        overrides = {"replication.quota.window.num": QUOTA_WINDOWS} if QUOTA_WINDOWS else {}
        cluster = Cluster(Path(tmp), overrides)
        try:
            cluster.start()
            bootstrap = cluster.bootstrap
            for topic, assignment in (("load", None), ("big1", "1,2"), ("big2", "1,2")):
                args = ["create-topic", "--topic", topic]
                if assignment is None:
                    args += ["--partitions", "8", "--replication-factor", "3"]
                else:
                    args += ["--partitions", "1", "--replication-factor", "2"]
                bench(bootstrap, *args)
            # shoal-bench creates with a replication factor; put the big ones on brokers 1,2.
            for topic in ("big1", "big2"):
                r = ctl(bootstrap, "partition", "reassign", f"--move={topic}:0=1,2", "--wait")
                if r.returncode != 0 and "already" not in r.stderr:
                    raise SystemExit(f"placing {topic}: {r.stderr.strip()}")
            records = SIZE_MB * 1_000_000 // 1000
            for topic in ("big1", "big2"):
                filled = bench(bootstrap, "produce", "--topic", topic, "--acks", "1", "--record-size", "1000",
                               "--records", str(records), "--max-seconds", "300")
                print(json.dumps({"filled": topic, "records": filled.get("records"),
                                  "mb": round(filled.get("bytes", 0) / 1e6)}), flush=True)
            # A first run warms the brokers and the page cache for the load topic (discarded).
            bench(bootstrap, "produce", "--topic", "load", "--acks", "all", "--rate", str(LOAD_RATE),
                  "--records", str(LOAD_RATE * 3), "--max-seconds", "8")
            base = window(bootstrap, "baseline", None)
            free = window(bootstrap, "unthrottled move", ["partition", "reassign", "--move=big1:0=1,2,3", "--wait"])
            held = window(bootstrap, "throttled move", ["partition", "reassign", "--move=big2:0=1,2,3",
                                                        "--throttle", str(THROTTLE_BPS), "--wait"])
            ratio = (held["p99_ms"] or 0) / max(base["p99_ms"] or 0.001, 0.001)
            print(f"throttled move: {SIZE_MB} MB at {THROTTLE_BPS / 1e6:.0f} MB/s took {held.get('move_s')} s "
                  f"(unthrottled {free.get('move_s')} s); acks=all producer at {LOAD_RATE} records/s, p99 "
                  f"baseline {base['p99_ms']} ms, during the unthrottled move {free['p99_ms']} ms, during the "
                  f"throttled move {held['p99_ms']} ms = {ratio:.2f} x baseline", flush=True)
            return 0
        finally:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
