#!/usr/bin/env python3
"""Prints target/compat/results.tsv (written by `make compat`) or results-security.tsv (`make
compat-security`, tests named scenario:NNNN) as a table with the totals."""
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else "target/compat/results.tsv")
rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
width = max([4] + [len(r[0]) for r in rows])
print(f"{'TEST':<{width}} {'RESULT':<8} {'SECONDS':>7}  SUBTESTS")
for number, verdict, seconds, detail in rows:
    print(f"{number:<{width}} {verdict:<8} {seconds:>7}  {detail}")
totals = {v: sum(1 for r in rows if r[1] == v) for v in ("PASSED", "FAILED", "SKIPPED")}
print(f"\n{totals['PASSED']} passed, {totals['FAILED']} failed, {totals['SKIPPED']} skipped "
      f"of {len(rows)} librdkafka broker tests")
sys.exit(1 if totals["FAILED"] else 0)
