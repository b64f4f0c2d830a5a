#!/usr/bin/env python3
"""Summarises libFuzzer logs: executions, final coverage, and when coverage last grew.

    python3 tools/fuzz_summary.py fuzz-logs/*.log

"Last cov growth" is the execution count (and its share of the run) at which the edge
coverage (`cov:`) last increased: a target whose coverage stopped growing early has plateaued.
"""
import re
import sys

LINE = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+).*?exec/s: (\d+)")


def summarise(path):
    execs = cov = ft = 0
    last_growth = 0
    crashes = 0
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", "replace")
            if "==ERROR" in line or "deadly signal" in line or "Test unit written" in line:
                crashes += 1
            m = LINE.match(line)
            if not m:
                d = re.match(r"^Done (\d+) runs", line)
                if d:
                    execs = max(execs, int(d.group(1)))
                continue
            n, c = int(m.group(1)), int(m.group(3))
            if c > cov:
                last_growth = n
            execs, cov, ft = max(execs, n), max(cov, c), int(m.group(4))
    return execs, cov, ft, last_growth, crashes


def main():
    print("| target | executions | edges (cov) | features (ft) | last cov growth at | crashes |")
    print("|---|---|---|---|---|---|")
    for p in sys.argv[1:]:
        name = p.rsplit("/", 1)[-1].removesuffix(".log")
        e, c, f, g, x = summarise(p)
        share = f"{100 * g / e:.0f}% of the run" if e else "-"
        print(f"| `{name}` | {e:,} | {c} | {f} | exec {g:,} ({share}) | {x} |")


if __name__ == "__main__":
    main()
