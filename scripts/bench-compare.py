#!/usr/bin/env python3
"""Reads the changes Criterion measured against a named baseline and judges them.

Called by scripts/run-benchmarks after a run with `--baseline-lenient NAME`. For every benchmark
that run compared (its `change/estimates.json` written since `--since`), Criterion gives the
relative change of the mean with a 95% confidence interval.

- `noise`: records each benchmark's change as its run-to-run noise (the same code measured
  twice): target/criterion/NAME.noise.json. A second noise run widens each benchmark's record
  to the widest interval seen, so noise runs at quiet and busy times both count.
- `compare`: a benchmark's threshold is the larger bound of its noise interval in absolute
  value, at least 2% (5% when no noise run was recorded). It *regressed* when its change's
  whole interval lies above the threshold, *improved* when wholly below minus it, and is
  otherwise within noise. Writes target/criterion/NAME.compare.md; exit 1 on any regression.
"""

import argparse
import json
import os
import sys

ROOT = "target/criterion"
FLOOR = 0.02
DEFAULT_NOISE = 0.05


def changes(since):
    """{full_id: (point, lower, upper)} of the mean's relative change, for this run."""
    found = {}
    for directory, dirs, files in os.walk(ROOT):
        if os.path.basename(directory) != "change" or "estimates.json" not in files:
            continue
        path = os.path.join(directory, "estimates.json")
        if os.path.getmtime(path) < since:
            continue
        bench = os.path.dirname(directory)
        with open(os.path.join(bench, "new", "benchmark.json")) as f:
            full_id = json.load(f)["full_id"]
        with open(path) as f:
            mean = json.load(f)["mean"]
        ci = mean["confidence_interval"]
        found[full_id] = (mean["point_estimate"], ci["lower_bound"], ci["upper_bound"])
    return found


def pct(x):
    return f"{x * 100:+.1f}%"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["noise", "compare"])
    parser.add_argument("name")
    parser.add_argument("--since", type=float, required=True)
    args = parser.parse_args()
    measured = changes(args.since)
    if not measured:
        sys.exit(f"no benchmark was compared against baseline {args.name!r} (was it saved?)")
    noise_path = os.path.join(ROOT, f"{args.name}.noise.json")
    if args.mode == "noise":
        noise = {}
        if os.path.exists(noise_path):
            with open(noise_path) as f:
                noise = json.load(f)
        # Each noise run widens what was recorded: the widest change seen on unchanged code.
        for b, (p, lo, hi) in measured.items():
            seen = noise.get(b, {"point": 0.0, "lower": 0.0, "upper": 0.0, "runs": 0})
            noise[b] = {
                "point": p if abs(p) > abs(seen["point"]) else seen["point"],
                "lower": min(lo, seen["lower"]),
                "upper": max(hi, seen["upper"]),
                "runs": seen.get("runs", 1) + 1,
            }
        with open(noise_path, "w") as f:
            json.dump(noise, f, indent=1, sort_keys=True)
        widest = max(max(abs(n["lower"]), abs(n["upper"])) for n in noise.values())
        print(f"noise of {len(noise)} benchmarks in {noise_path} (widest: {pct(widest)})")
        return
    noise = {}
    if os.path.exists(noise_path):
        with open(noise_path) as f:
            noise = json.load(f)
    rows, regressed = [], []
    for bench in sorted(measured):
        point, lower, upper = measured[bench]
        if bench in noise:
            n = noise[bench]
            threshold = max(FLOOR, abs(n["lower"]), abs(n["upper"]))
        else:
            threshold = DEFAULT_NOISE
        if lower > threshold:
            verdict = "**regressed**"
            regressed.append(bench)
        elif upper < -threshold:
            verdict = "improved"
        else:
            verdict = "within noise"
        rows.append(
            f"| {bench} | {pct(point)} | {pct(lower)} .. {pct(upper)} | ±{threshold * 100:.1f}% | {verdict} |"
        )
    source = "measured (scripts/run-benchmarks noise)" if noise else f"none measured: {DEFAULT_NOISE:.0%}"
    report = "\n".join(
        [
            f"# Benchmarks against baseline `{args.name}`",
            "",
            f"Noise: {source}. Change: the mean's, with Criterion's 95% interval.",
            "",
            "| benchmark | change | 95% interval | noise | verdict |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"{len(regressed)} regressed of {len(rows)}.",
        ]
    )
    out = os.path.join(ROOT, f"{args.name}.compare.md")
    with open(out, "w") as f:
        f.write(report + "\n")
    print(report)
    print(f"\nreport: {out}")
    sys.exit(1 if regressed else 0)


if __name__ == "__main__":
    main()
