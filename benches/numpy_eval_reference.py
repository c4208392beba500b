#!/usr/bin/env python3
"""`diffusion-theorems eval` against NumPy/SciPy on the same Gaussian closed forms.

For each size (d, n) it writes a Gaussian target (mean ~ N(0, 1), covariance 0.5·I + V Vᵀ with
V d×5 of entries N(0, 9/d)) and n points (entries N(0, 1.5²)) as .npy and JSON, then times

* `diffusion-theorems eval --quantity Q --points P.npy --out V.npy` (the whole process: start,
  reading the target — its mean and covariance as .npy files named by the target JSON, or with
  `--inline-json` written into the JSON — validating it, the f64 closed form, writing the .npy),
  and
* NumPy/SciPy in f64, the computation alone: one Cholesky of C = Σ + σ²I, then triangular solves
  for all points (posterior mean μ + Σ C⁻¹(y − μ), score −C⁻¹(y − μ), log-density), and the
  posterior covariance Σ − Σ C⁻¹ Σ (the same at every point: NumPy forms it once, the crate
  writes it for each of the first `--covariance-points` points),

as the median of `--runs` runs each, checks that the two agree (max |difference| printed), and
prints one table row per (d, n, quantity) with the ratio crate / NumPy.

    python3 benches/numpy_eval_reference.py [--binary target/release/diffusion-theorems]
        [--sizes 200x2000,1000x1000] [--runs 3] [--sigma 0.5] [--covariance-points 10]
        [--inline-json] [--quantities posterior-mean,score,log-density,posterior-covariance]

Needs numpy and scipy (`pip install numpy scipy`) and a release build of the crate.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import scipy.linalg as sla

QUANTITIES = ["posterior-mean", "score", "log-density", "posterior-covariance"]


def make_target(d, n, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 3.0 / np.sqrt(d), size=(d, 5))
    cov = 0.5 * np.eye(d) + v @ v.T
    mean = rng.normal(size=d)
    points = rng.normal(0.0, 1.5, size=(n, d))
    return mean, cov, points


def numpy_values(quantity, mean, cov, points, sigma):
    c = cov + sigma * sigma * np.eye(len(mean))
    factor = sla.cho_factor(c, lower=True)
    delta = (points - mean).T  # d×n
    solved = sla.cho_solve(factor, delta)  # C⁻¹(y − μ) for every point
    if quantity == "posterior-mean":
        return (mean[:, None] + cov @ solved).T
    if quantity == "score":
        return -solved.T
    if quantity == "posterior-covariance":
        posterior = cov - cov @ sla.cho_solve(factor, cov)
        return np.broadcast_to(posterior, (len(points),) + posterior.shape)
    half_logdet = np.sum(np.log(np.diag(factor[0])))
    quad = np.sum(delta * solved, axis=0)
    d = len(mean)
    return -0.5 * (d * np.log(2 * np.pi) + quad) - half_logdet


def run_crate(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")


def median_seconds(run, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default="target/release/diffusion-theorems")
    ap.add_argument("--sizes", default="200x2000,1000x1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--covariance-points", type=int, default=10)
    ap.add_argument("--inline-json", action="store_true")
    ap.add_argument("--quantities", default=",".join(QUANTITIES))
    args = ap.parse_args()
    print(f"{'d':>6} {'points':>7} {'quantity':<20} {'crate (s)':>10} {'numpy (s)':>10} "
          f"{'ratio':>7} {'max |diff|':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            d, n = (int(x) for x in size.split("x"))
            mean, cov, points = make_target(d, n, seed=d * 1000 + n)
            target = os.path.join(tmp, f"t{d}.json")
            if args.inline_json:
                spec = {"kind": "gaussian", "mean": mean.tolist(), "covariance": cov.tolist()}
            else:
                np.save(os.path.join(tmp, f"mean{d}.npy"), mean)
                np.save(os.path.join(tmp, f"cov{d}.npy"), cov)
                spec = {"kind": "gaussian", "mean": f"mean{d}.npy", "covariance": f"cov{d}.npy"}
            with open(target, "w") as f:
                json.dump(spec, f)
            for quantity in args.quantities.split(","):
                count = args.covariance_points if quantity == "posterior-covariance" else n
                points_file = os.path.join(tmp, f"p{d}_{count}.npy")
                np.save(points_file, points[:count])
                out = os.path.join(tmp, "v.npy")
                command = [args.binary, "eval", "--target", target, "--sigma", str(args.sigma),
                           "--points", points_file, "--quantity", quantity, "--out", out]
                crate = median_seconds(lambda: run_crate(command), args.runs)
                reference = numpy_values(quantity, mean, cov, points[:count], args.sigma)
                ours = np.load(out)
                numpy_time = median_seconds(
                    lambda: numpy_values(quantity, mean, cov, points[:count], args.sigma),
                    args.runs)
                diff = float(np.max(np.abs(ours - reference)))
                print(f"{d:>6} {count:>7} {quantity:<20} {crate:>10.3f} {numpy_time:>10.3f} "
                      f"{crate / numpy_time:>6.1f}× {diff:>11.2e}")


if __name__ == "__main__":
    main()
