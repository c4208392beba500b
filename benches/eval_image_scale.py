#!/usr/bin/env python3
"""`diffusion-theorems eval` on an image-scale Gaussian: the f64 CPU route against the f32 GPU
route (issue 24's d = 12288 targets).

Writes a Gaussian target N(μ, Σ), Σ = 0.5·I + V Vᵀ with V d×5 of entries N(0, 9/d) (the target of
benches/numpy_eval_reference.py), as mean.npy / cov.npy named by a target JSON, and n points
(entries N(0, 1.5²)); runs

    diffusion-theorems eval --target T.json --sigma 0.5 --points P.npy --quantity Q
        --out V.npy --timings [--backend gpu --tile B]

for each quantity and backend, `--repeat` times, and prints the medians of the whole-process
wall time and of the phase times the binary reports (read and validate, adapter start-up, factor
at σ, the points), the ratio CPU/GPU of the compute (factor + points) and of the whole process,
and the largest per-point relative difference ‖v_gpu − v_cpu‖/‖v_cpu‖ of the two routes' values.

    python3 benches/eval_image_scale.py [--binary target/release/diffusion-theorems]
        [--d 12288] [--n 1000] [--quantity score[,log-density,...]] [--backends cpu,gpu]
        [--tile 1024] [--repeat 1] [--dir /tmp/eval-image-scale]

Needs numpy. The target files take 8·d² bytes (1.2 GB at d = 12288).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import time

import numpy as np


def write_target(folder, d, n, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 3.0 / np.sqrt(d), size=(d, 5))
    cov = v @ v.T
    cov[np.diag_indices(d)] += 0.5
    np.save(os.path.join(folder, "cov.npy"), cov)
    del cov
    np.save(os.path.join(folder, "mean.npy"), rng.normal(size=d))
    np.save(os.path.join(folder, "points.npy"), rng.normal(0.0, 1.5, size=(n, d)))
    with open(os.path.join(folder, "target.json"), "w") as f:
        json.dump({"kind": "gaussian", "mean": "mean.npy", "covariance": "cov.npy"}, f)


def run(binary, folder, quantity, backend, tile):
    out = os.path.join(folder, f"values-{quantity}-{backend}.npy")
    command = [binary, "eval", "--target", os.path.join(folder, "target.json"), "--sigma", "0.5",
               "--points", os.path.join(folder, "points.npy"), "--quantity", quantity,
               "--out", out, "--timings", "--backend", backend, "--tile", str(tile)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    phases = {k: float(v) for k, v in re.findall(r"timing: ([a-z -]+?) ([0-9.]+) s", done.stderr)}
    return wall, phases, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default="target/release/diffusion-theorems")
    ap.add_argument("--d", type=int, default=12288)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--quantity", default="score")
    ap.add_argument("--backends", default="cpu,gpu")
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", default="/tmp/eval-image-scale")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    start = time.perf_counter()
    write_target(args.dir, args.d, args.n, seed=args.d)
    print(f"target d = {args.d}, n = {args.n} written in {time.perf_counter() - start:.1f} s")
    for quantity in args.quantity.split(","):
        values, compute, whole = {}, {}, {}
        for backend in args.backends.split(","):
            runs = [run(args.binary, args.dir, quantity, backend, args.tile)
                    for _ in range(args.repeat)]
            values[backend] = np.load(runs[-1][2])
            wall = statistics.median(r[0] for r in runs)
            phases = {k: statistics.median(r[1].get(k, 0.0) for r in runs) for k in runs[0][1]}
            compute[backend] = phases.get("factor", 0.0) + phases.get("points", 0.0)
            whole[backend] = wall
            shown = ", ".join(f"{k} {v:.3f} s" for k, v in phases.items())
            print(f"{backend}: {quantity} at d = {args.d}, n = {args.n}, tile {args.tile}, "
                  f"median of {args.repeat}: wall {wall:.2f} s ({shown})", flush=True)
        if "cpu" in values and "gpu" in values:
            a, b = values["gpu"], values["cpu"]
            if a.ndim == 1:
                rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
            else:
                rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)
            print(f"{quantity}: cpu/gpu factor + points {compute['cpu'] / compute['gpu']:.2f}x, "
                  f"whole process {whole['cpu'] / whole['gpu']:.2f}x; max per-point relative "
                  f"difference {float(np.max(rel)):.3e}", flush=True)


if __name__ == "__main__":
    main()
