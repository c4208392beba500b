#!/usr/bin/env python3
"""Summarise cargo-mutants runs (mutants.out/outcomes.json) into the tables of mutants.md.

Usage: scripts/mutants_report.py OUTCOMES.json [OUTCOMES.json ...]

Prints, per top-level folder of src/ and in total: mutants tested, caught, missed, unviable
(did not build), timeouts, and the score caught / (caught + missed) — timeouts count as caught, as
cargo-mutants does (the mutant made a test run forever, which the suite notices) — with its exact
(Clopper–Pearson) binomial 95 % interval, then the list of missed mutants. A later outcomes file
overrides an earlier one for the same mutant (a re-run after new tests were added); the first file
defines the sample, so a later file's mutants that are not in it are ignored.
Pure Python (no SciPy): the interval inverts the binomial CDF by bisection.
"""
import json
import math
import sys
from collections import OrderedDict


def binom_cdf(k, n, p):
    """P[X <= k] for X ~ Binomial(n, p), summed in log space."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    total = 0.0
    for i in range(k + 1):
        log_term = (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                    + i * math.log(p) + (n - i) * math.log1p(-p))
        total += math.exp(log_term)
    return min(total, 1.0)


def bisect(f, lo=0.0, hi=1.0):
    """The root of a decreasing f on [lo, hi] to 1e-12."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(x, n, alpha=0.05):
    """Exact two-sided (1 − alpha) interval for a binomial proportion x/n."""
    if n == 0:
        return (0.0, 1.0)
    # lower: the p with P[X >= x] = alpha/2 (P[X >= x] increases with p).
    if x == 0:
        lower = 0.0
    else:
        lower = bisect(lambda p: alpha / 2 - (1 - binom_cdf(x - 1, n, p)))
    # upper: the p with P[X <= x] = alpha/2 (P[X <= x] decreases with p).
    if x == n:
        upper = 1.0
    else:
        upper = bisect(lambda p: binom_cdf(x, n, p) - alpha / 2)
    return (lower, upper)


def mutant_key(scenario):
    m = scenario["Mutant"]
    span = m.get("span", {}).get("start", {})
    return (m["file"], span.get("line"), span.get("column"), m.get("replacement"),
            m.get("name") or m.get("function", {}).get("function_name"))


def describe(scenario):
    m = scenario["Mutant"]
    span = m.get("span", {}).get("start", {})
    func = (m.get("function") or {}).get("function_name", "?")
    genre = m.get("genre", "")
    replacement = m.get("replacement", "")
    return f"{m['file']}:{span.get('line')}:{span.get('column')}: {genre} in {func} → `{replacement}`"


def main(paths):
    outcomes = OrderedDict()
    for index, path in enumerate(paths):
        with open(path) as f:
            data = json.load(f)
        for o in data["outcomes"]:
            scenario = o["scenario"]
            if not isinstance(scenario, dict) or "Mutant" not in scenario:
                continue
            key = mutant_key(scenario)
            if index == 0 or key in outcomes:
                outcomes[key] = (scenario, o["summary"])
    rows = OrderedDict()
    missed = []
    for scenario, summary in outcomes.values():
        folder = "/".join(scenario["Mutant"]["file"].split("/")[:2])
        r = rows.setdefault(folder, {"tested": 0, "caught": 0, "missed": 0, "unviable": 0, "timeout": 0})
        r["tested"] += 1
        if summary == "CaughtMutant":
            r["caught"] += 1
        elif summary == "MissedMutant":
            r["missed"] += 1
            missed.append(describe(scenario))
        elif summary == "Unviable":
            r["unviable"] += 1
        elif summary == "Timeout":
            r["timeout"] += 1
        else:
            raise SystemExit(f"unknown outcome {summary!r}")
    total = {k: sum(r[k] for r in rows.values()) for k in ("tested", "caught", "missed", "unviable", "timeout")}
    print("| folder | tested | caught | missed | unviable | timeout | score (caught+timeout)/viable | 95 % interval |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in list(sorted(rows.items())) + [("**total**", total)]:
        detected = r["caught"] + r["timeout"]
        viable = detected + r["missed"]
        lo, hi = clopper_pearson(detected, viable)
        score = f"{100 * detected / viable:.1f} %" if viable else "–"
        print(f"| {name} | {r['tested']} | {r['caught']} | {r['missed']} | {r['unviable']} | "
              f"{r['timeout']} | {score} | [{100 * lo:.1f} %, {100 * hi:.1f} %] |")
    print()
    print(f"Missed ({len(missed)}):")
    for m in missed:
        print(f"- {m}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
