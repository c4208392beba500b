#!/usr/bin/env python3
"""Summarise cargo-mutants runs (mutants.out/outcomes.json) into the tables of mutants.md.

Usage: scripts/mutants_report.py SAMPLE.json [SAMPLE.json ...] [--recheck R.json ...]
                                 [--by-hand HAND.json ...] [--sample-list NAMES.txt ...]

The SAMPLE files' mutants are the sample (their union). A --recheck file (a cargo-mutants re-run
after tests were added) overrides the outcome of a sampled mutant of the same name; its other
mutants are ignored. A --by-hand file is a JSON list of {"name", "outcome", "evidence"} with
outcome "caught" (the mutant planted by hand at a later commit fails the named test: the code
moved, so cargo-mutants cannot re-run it under its old name) or "equivalent" (no test can tell it
apart; removed from the viable count, with the reason). --sample-list (repeatable; one `cargo mutants --list`
name per line) names the mutants the sample should hold, and those that have no outcome yet are
reported as not run.

Prints, per top-level folder of src/ and in total: mutants tested, caught, missed, unviable
(did not build), timeouts, equivalent, and the score detected / viable, detected = caught +
timeout (a mutant that made a test run forever is noticed, as cargo-mutants counts it), viable =
detected + missed — with its exact (Clopper–Pearson) binomial 95 % interval, then the list of
missed mutants. Pure Python (no SciPy): the interval inverts the binomial CDF by bisection.
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


def load(path):
    with open(path) as f:
        data = json.load(f)
    for o in data["outcomes"]:
        scenario = o["scenario"]
        if isinstance(scenario, dict) and "Mutant" in scenario:
            yield scenario["Mutant"]["name"], scenario["Mutant"]["file"], o["summary"]


def main(args):
    samples, rechecks, hand_paths, list_paths = [], [], [], []
    mode = samples
    it = iter(args)
    for a in it:
        if a == "--recheck":
            mode = rechecks
        elif a == "--by-hand":
            hand_paths.append(next(it))
        elif a == "--sample-list":
            list_paths.append(next(it))
        else:
            mode.append(a)
    outcomes = OrderedDict()
    for path in samples:
        for name, file, summary in load(path):
            outcomes[name] = (file, summary)
    for path in rechecks:
        for name, file, summary in load(path):
            if name in outcomes:
                outcomes[name] = (file, summary)
    evidence = {}
    for hand_path in hand_paths:
        with open(hand_path) as f:
            for h in json.load(f):
                if h["name"] not in outcomes:
                    raise SystemExit(f"by-hand entry not in the sample: {h['name']}")
                if outcomes[h["name"]][1] != "MissedMutant":
                    raise SystemExit(f"by-hand entry was not missed: {h['name']}")
                kind = {"caught": "CaughtMutant", "equivalent": "Equivalent"}[h["outcome"]]
                outcomes[h["name"]] = (outcomes[h["name"]][0], kind)
                evidence[h["name"]] = h["evidence"]
    not_run, outside = [], []
    if list_paths:
        listed = []
        for list_path in list_paths:
            with open(list_path) as f:
                listed += [l.strip() for l in f if l.strip()]
        not_run = [n for n in listed if n not in outcomes]
        outside = [n for n in outcomes if n not in set(listed)]
        for n in outside:
            del outcomes[n]
    keys = ("tested", "caught", "missed", "unviable", "timeout", "equivalent")
    rows = OrderedDict()
    missed = []
    names = {"CaughtMutant": "caught", "MissedMutant": "missed", "Unviable": "unviable",
             "Timeout": "timeout", "Equivalent": "equivalent"}
    for name, (file, summary) in outcomes.items():
        folder = "/".join(file.split("/")[:2])
        r = rows.setdefault(folder, dict.fromkeys(keys, 0))
        r["tested"] += 1
        if summary not in names:
            raise SystemExit(f"unknown outcome {summary!r}")
        r[names[summary]] += 1
        if summary == "MissedMutant":
            missed.append(name)
    total = {k: sum(r[k] for r in rows.values()) for k in keys}
    print("| folder | tested | caught | missed | unviable | timeout | equivalent | score (caught+timeout)/viable | 95 % interval |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in list(sorted(rows.items())) + [("**total**", total)]:
        detected = r["caught"] + r["timeout"]
        viable = detected + r["missed"]
        lo, hi = clopper_pearson(detected, viable)
        score = f"{100 * detected / viable:.1f} %" if viable else "–"
        print(f"| {name} | {r['tested']} | {r['caught']} | {r['missed']} | {r['unviable']} | "
              f"{r['timeout']} | {r['equivalent']} | {score} | [{100 * lo:.1f} %, {100 * hi:.1f} %] |")
    print()
    print(f"Missed ({len(missed)}):")
    for m in missed:
        print(f"- {m}")
    if evidence:
        print()
        print("By hand:")
        for name, why in evidence.items():
            print(f"- {name}: {why}")
    if outside:
        print()
        print(f"Outside the sample, ignored ({len(outside)}):")
        for m in outside:
            print(f"- {m}")
    if not_run:
        print()
        print(f"Not run yet ({len(not_run)}):")
        for m in not_run:
            print(f"- {m}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    main(sys.argv[1:])
