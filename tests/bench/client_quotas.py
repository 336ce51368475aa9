"""Benchmark: a producer over its client quota, and what it does to another client (issue #19).

One node on this machine. A light acks=all producer (`shoal-bench produce`, librdkafka,
client.id `light`, 100-byte records at a fixed rate over 8 partitions) runs three windows of the
same length, each next to something else:

  1. baseline: alone;
  2. heavy, no quota: a second producer (client.id `heavy`, 1000-byte records, as fast as it
     can) on the same broker;
  3. heavy, quota: the same, with `producer_byte_rate` on client id `heavy`
     (`shoalctl quota set`).

It prints one JSON object per window and a summary line: the heavy producer's rate against its
quota (issue #19 asks for within 10 % over 30 s) and the light producer's latency in each
window. Measurements, never asserted: a loaded machine moves them.

Knobs (environment): QUOTA_BPS (default 5000000), QUOTA_LIGHT_RATE (records/s, default 20000),
QUOTA_WINDOW_S (default 30), SHOAL_BIN / SHOALCTL_BIN / SHOAL_BENCH_BIN (default
target/release).
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

from conftest import ShoalNode  # noqa: E402

RELEASE = REPO / "target" / "release"
SHOALCTL = os.environ.get("SHOALCTL_BIN") or str(RELEASE / "shoalctl")
BENCH = os.environ.get("SHOAL_BENCH_BIN") or str(RELEASE / "shoal-bench")
QUOTA_BPS = int(os.environ.get("QUOTA_BPS", "5000000"))
LIGHT_RATE = int(os.environ.get("QUOTA_LIGHT_RATE", "20000"))
WINDOW_S = int(os.environ.get("QUOTA_WINDOW_S", "30"))
HEAVY_RECORD_BYTES = 1000


def bench(bootstrap: str, *args: str, timeout: float = 600) -> dict:
    r = subprocess.run([BENCH, *args, "--brokers", bootstrap, "--json"], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"shoal-bench {args[0]} failed: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def window(bootstrap: str, label: str, heavy: bool) -> dict:
    """One window: the light producer at its rate, and the heavy one beside it if asked."""
    heavy_result: dict = {}

    def run_heavy() -> None:
        heavy_result.update(bench(
            bootstrap, "produce", "--topic", "heavy", "--acks", "1", "--record-size", str(HEAVY_RECORD_BYTES),
            "--batch-size", "16384", "--records", "100000000", "--max-seconds", str(WINDOW_S),
            "--max-queued", "20000", "-X", "client.id=heavy"))

    t = threading.Thread(target=run_heavy) if heavy else None
    if t:
        t.start()
    light = bench(bootstrap, "produce", "--topic", "light", "--acks", "all", "--rate", str(LIGHT_RATE),
                  "--records", str(LIGHT_RATE * WINDOW_S), "--max-seconds", str(WINDOW_S + 5),
                  "-X", "client.id=light")
    if t:
        t.join(WINDOW_S + 120)
    row = {"window": label, "light": {k: light.get(k) for k in ("records_per_s", "p50_ms", "p99_ms", "p999_ms",
                                                               "errors")}}
    if heavy:
        row["heavy"] = {k: heavy_result.get(k) for k in ("records_per_s", "mb_per_s", "p50_ms", "p99_ms", "errors")}
        row["heavy"]["bytes_per_s"] = round((heavy_result.get("records_per_s") or 0) * HEAVY_RECORD_BYTES)
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="shoal-quota-bench-") as tmp:
        node = ShoalNode(Path(tmp) / "node", name="quota-bench")
        node.start()
        try:
            bootstrap = node.bootstrap
            for topic in ("light", "heavy"):
                bench(bootstrap, "create-topic", "--topic", topic, "--partitions", "8", "--replication-factor", "1")
            # Warm the broker and the page cache (discarded).
            bench(bootstrap, "produce", "--topic", "light", "--acks", "all", "--rate", str(LIGHT_RATE),
                  "--records", str(LIGHT_RATE * 3), "--max-seconds", "8")
            base = window(bootstrap, "baseline", heavy=False)
            free = window(bootstrap, "heavy, no quota", heavy=True)
            r = subprocess.run([SHOALCTL, "--brokers", bootstrap, "quota", "set", "--client-id", "heavy",
                                "--quota", f"producer_byte_rate={QUOTA_BPS}"], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise SystemExit(f"quota set failed: {r.stderr.strip()}")
            time.sleep(1)
            held = window(bootstrap, "heavy, quota", heavy=True)
            share = held["heavy"]["bytes_per_s"] / QUOTA_BPS
            print(f"client quota: heavy producer {held['heavy']['bytes_per_s'] / 1e6:.2f} MB/s of record values "
                  f"against producer_byte_rate {QUOTA_BPS / 1e6:.2f} MB/s ({share:.1%}; without a quota "
                  f"{free['heavy']['bytes_per_s'] / 1e6:.1f} MB/s) over {WINDOW_S} s; acks=all light producer at "
                  f"{LIGHT_RATE} records/s, p50/p99 alone {base['light']['p50_ms']}/{base['light']['p99_ms']} ms, "
                  f"next to the heavy one without a quota {free['light']['p50_ms']}/{free['light']['p99_ms']} ms, "
                  f"with the quota {held['light']['p50_ms']}/{held['light']['p99_ms']} ms", flush=True)
            return 0
        finally:
            node.close()


if __name__ == "__main__":
    raise SystemExit(main())
