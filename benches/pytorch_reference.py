#!/usr/bin/env python3
"""PyTorch (cuBLAS) reference timings of the workloads of `diffusion-theorems bench`.

Same names, sizes, FLOP counts and minimal bytes as `src/bench/workloads/`, in float32 on
CUDA: every workload is timed with TF32 off (`allow_tf32 = False`, true f32 products) and then
with TF32 on (the tensor cores' 10-bit-mantissa products), with CUDA events after one warm-up
run, median of several runs, on random normal inputs. Prints a table and writes JSON; with
`--rust-json` (the output of `diffusion-theorems bench --json`) it adds the ratio of the wgpu
time to the PyTorch time for each workload measured on the same GPU.

    python3 benches/pytorch_reference.py [--quick] [--json out.json] [--rust-json bench.json]
    python3 benches/pytorch_reference.py --list [--quick]   # the workload table, no torch needed
"""

import argparse
import json
import math
import statistics
import sys
import time

SEED = 0xBE7C4000
EMPIRICAL_ALPHA, EMPIRICAL_SIGMA = 0.8, 0.6


def gemm_sizes(quick):
    return [128, 256, 512] if quick else [512, 1024, 2048, 4096, 8192]


def gemm_shapes(quick):
    """[(role, m, n, k, trans_a, trans_b)] as `gemm_shapes` in src/bench/workloads/gemm.rs."""
    m_features, d, w, batch, h = (2000, 768, 128, 32, 100) if quick else (20_000, 12288, 1024, 128,
                                                                           1000)
    return [("features", m_features, w, d, False, True),
            ("mlp_hidden", batch, h, d, False, True),
            ("mlp_output", batch, d, h, False, True),
            ("mlp_back_hidden", batch, h, d, False, False),
            ("mlp_grad_w2", d, h, batch, True, False),
            ("mlp_grad_w1", h, d, batch, True, False)]


def unet_conv_layers(quick):
    """[(batch, in, out, side, kernel)] as `unet_conv_layers` in src/bench/workloads/conv.rs."""
    batch, width, side = (8, 32, 32) if quick else (128, 64, 64)
    return [(batch, ci, co, sd, 3) for ci, co, sd in
            [(3, width, side), (width, width, side), (width, 2 * width, side // 2),
             (2 * width, 2 * width, side // 2), (2 * width, 4 * width, side // 4),
             (4 * width, 4 * width, side // 8)]]


def workload_table(quick):
    """[(name, size, flops, bytes, builder, params)] exactly as src/bench/workloads/."""
    w = []
    words = (4 << 20) if quick else (64 << 20)
    w.append(("copy", f"MiB={words * 4 >> 20}", 0.0, 8.0 * words, build_copy, dict(words=words)))
    for n in gemm_sizes(quick):
        w.append(("gemm", f"n={n}", 2.0 * n ** 3, 12.0 * n ** 2, build_gemm, dict(n=n)))
    for role, m, n, k, ta, tb in gemm_shapes(quick):
        layout = ("T" if ta else "N") + ("T" if tb else "N")
        w.append(("gemm_shape", f"{role},m={m},n={n},k={k},{layout}", 2.0 * m * n * k,
                  4.0 * (m * k + k * n + m * n), build_gemm_shape,
                  dict(m=m, n=n, k=k, trans_a=ta, trans_b=tb)))
    for n in gemm_sizes(quick):  # the Rust CLI runs these only where the adapter has tensor cores
        w.append(("gemm_f16", f"n={n}", 2.0 * n ** 3, 12.0 * n ** 2, build_gemm_f16, dict(n=n)))
    n, d = (100, 768) if quick else (1000, 12288)
    w.append(("covariance", f"N={n},d={d}", 2.0 * n * d * d, 4.0 * (n * d + d * d),
              build_covariance, dict(n=n, d=d)))
    b, d, k = (2000, 64, 16) if quick else (100_000, 64, 16)
    w.append(("gmm_posterior", f"batch={b},d={d},K={k}", b * k * (4.0 * d * d + 8.0 * d),
              4.0 * (b * (3.0 * d + k) + k * (2.0 * d * d + d + 1.0)), build_gmm,
              dict(batch=b, d=d, k=k)))
    b, n, d = (32, 200, 768) if quick else (256, 1000, 12288)
    w.append(("empirical_denoiser", f"B={b},N={n},d={d}", 4.0 * b * n * d + 6.0 * b * n,
              4.0 * (n * d + n + 2.0 * b * d), build_empirical, dict(b=b, n=n, d=d)))
    m, d, ww, k = (2000, 768, 128, 3) if quick else (20_000, 12288, 1024, 3)
    w.append(("polynomial_features", f"M={m},d={d},w={ww},k={k}",
              2.0 * m * d * ww + (k + 1.0) * m * ww, 4.0 * (m * d + ww * d + m * (ww + 1.0)),
              build_polynomial, dict(m=m, d=d, w=ww, k=k)))
    n, steps, d = (100, 10, 768) if quick else (1000, 50, 12288)
    w.append(("ddim_affine", f"samples={n},steps={steps},d={d}",
              steps * (2.0 * n * d * d + 5.0 * n * d), 4.0 * steps * (d * d + 2.0 * n * d + d),
              build_ddim, dict(n=n, steps=steps, d=d)))
    d, n, tile = (768, 100, 256) if quick else (12288, 1000, 1024)
    w.append(("gaussian_eval", f"d={d},n={n},tile={tile}", d ** 3 / 3.0 + 2.0 * n * d * d,
              4.0 * (d * d + 2.0 * n * d), build_gaussian_eval, dict(d=d, n=n)))
    b, d, h = (32, 768, 100) if quick else (128, 12288, 1000)
    params = 2.0 * d * h + d + h
    w.append(("mlp_step", f"B={b},d={d},h={h}",
              10.0 * b * d * h + b * (9.0 * d + 6.0 * h) + 12.0 * params,
              4.0 * (6.0 * d * h + 8.0 * params + 4.0 * b * d + 3.0 * b * h),
              build_mlp_step, dict(b=b, d=d, h=h)))
    for b, ci, co, sd, k in unet_conv_layers(quick):
        size = f"B={b},{ci}->{co},{sd}x{sd},k={k}"
        flops = 3.0 * 2.0 * b * sd * sd * co * ci * k * k
        x_len, w_len, y_len = b * ci * sd * sd, co * ci * k * k, b * co * sd * sd
        p, kk = b * sd * sd, ci * k * k
        params = dict(b=b, cin=ci, cout=co, side=sd, k=k)
        w.append(("conv_im2col", size, flops, 4.0 * (3.0 * x_len + 3.0 * w_len + 2.0 * y_len),
                  build_conv, params))
        w.append(("conv_im2col_gemm", size, flops,
                  4.0 * ((p * kk + kk * co + p * co) + (co * p + p * kk + 2.0 * co * kk)
                         + (p * co + co * kk + p * kk)), build_conv_gemms, params))
    return w


# ---- builders: each returns a closure doing one run on resident tensors -----------------------

def build_copy(torch, dev, words):
    src = torch.randn(words, device=dev)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def build_gemm(torch, dev, n):
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    c = torch.empty(n, n, device=dev)
    return lambda: torch.mm(a, b, out=c)


def build_gemm_f16(torch, dev, n):
    # f16 operands on the tensor cores (cuBLAS accumulates in f32); the f32 → f16 rounding is
    # timed too, as the wgpu kernel rounds its f32 operands while staging them.
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    return lambda: torch.mm(a.half(), b.half())


def build_gemm_shape(torch, dev, m, n, k, trans_a, trans_b):
    # Stored as the Rust workload stores them; .T is a view, so cuBLAS gets the transposed layout.
    a = torch.randn(k, m, device=dev).T if trans_a else torch.randn(m, k, device=dev)
    b = torch.randn(n, k, device=dev).T if trans_b else torch.randn(k, n, device=dev)
    b = b / math.sqrt(k)
    c = torch.empty(m, n, device=dev)
    return lambda: torch.mm(a, b, out=c)


def build_covariance(torch, dev, n, d):
    x = torch.randn(n, d, device=dev)
    c = torch.empty(d, d, device=dev)
    return lambda: torch.mm(x.T, x, out=c)


def build_gaussian_eval(torch, dev, d, n):
    # Σ = 0.5·I + V Vᵀ (V d×5, entries N(0, 9/d)); one run: Cholesky of Σ + σ²I (σ = 0.5) in
    # f32, then the scores −C⁻¹(y − μ) of n points by cholesky_solve (two triangular solves).
    v = torch.randn(d, 5, device=dev) * (3.0 / math.sqrt(d))
    cov = v @ v.T + 0.5 * torch.eye(d, device=dev)
    mu = torch.randn(d, device=dev)
    y = 1.5 * torch.randn(n, d, device=dev)
    shifted = cov + 0.25 * torch.eye(d, device=dev)

    def run():
        factor = torch.linalg.cholesky(shifted)
        return -torch.cholesky_solve((y - mu).T, factor)

    return run


def build_gmm(torch, dev, batch, d, k):
    # C_k⁻¹ = A Aᵀ/d + I (SPD), gains G_k = Σ_k C_k⁻¹ random of the same scale, means in [−3, 3].
    a = torch.randn(k, d, d, device=dev) / math.sqrt(d)
    prec = a @ a.transpose(1, 2) + torch.eye(d, device=dev)
    gains = torch.randn(k, d, d, device=dev) / math.sqrt(d)
    mu = 6.0 * torch.rand(k, d, device=dev) - 3.0
    log_norms = torch.randn(k, device=dev)
    y = 2.0 * torch.randn(batch, d, device=dev)

    def run():
        delta = (y[None, :, :] - mu[:, None, :])                 # K × B × d
        pd = torch.bmm(delta, prec.transpose(1, 2))               # C⁻¹δ
        gd = torch.bmm(delta, gains.transpose(1, 2))              # Gδ
        logits = log_norms[:, None] - 0.5 * (delta * pd).sum(-1)  # K × B
        rho = torch.softmax(logits, dim=0)
        score = -(rho[:, :, None] * pd).sum(0)
        mean = (rho[:, :, None] * (mu[:, None, :] + gd)).sum(0)
        return rho, score, mean

    return run


def build_empirical(torch, dev, b, n, d):
    x = torch.randn(n, d, device=dev)
    norms = (x * x).sum(1)
    y = torch.randn(b, d, device=dev)
    al, sg = EMPIRICAL_ALPHA, EMPIRICAL_SIGMA

    def run():
        s = y @ x.T
        z = (2.0 * al * s - al * al * norms[None, :]) / (2.0 * sg * sg)
        return torch.softmax(z, dim=1) @ x

    return run


def build_polynomial(torch, dev, m, d, w, k):
    y = torch.randn(m, d, device=dev)
    r = torch.randn(w, d, device=dev)
    c = 1.0 / (4.0 * math.sqrt(d))
    z = torch.empty(m, w, device=dev)
    phi = torch.empty(m, w + 1, device=dev)
    phi[:, 0] = 1.0

    def run():
        torch.mm(y, r.T, out=z)
        torch.pow(c * z, k, out=phi[:, 1:])

    return run


def build_ddim(torch, dev, n, steps, d):
    t_max = 0.99
    times = [t_max * l / steps for l in range(steps + 1)]
    alphas = [math.cos(math.pi * t / 2) for t in times]
    sigmas = [math.sin(math.pi * t / 2) for t in times]
    coefficients = []
    for l in range(steps, 0, -1):
        k = sigmas[l - 1] / sigmas[l]
        a = alphas[l - 1] - k * alphas[l]
        coefficients.append((k, a / alphas[l], a))
    wt = (0.5 / math.sqrt(d)) * torch.randn(d, d, device=dev).T
    bias = torch.randn(d, device=dev)
    states = [torch.randn(n, d, device=dev), torch.empty(n, d, device=dev)]

    def run():
        cur = 0
        for k, a_over_alpha, a in coefficients:
            x, nxt = states[cur], states[1 - cur]
            torch.addmm(x, x, wt, beta=k, alpha=a_over_alpha, out=nxt)
            nxt.add_(bias, alpha=a)
            cur = 1 - cur
        states[0], states[1] = states[cur], states[1 - cur]

    return run


def build_mlp_step(torch, dev, b, d, h):
    # One Adam step (lr 1e-4) of x̂ = W₂ ReLU(W₁ y + b₁) + b₂ on y = 0.8 x + 0.6 ε with fresh
    # noise, loss (1/B) Σ‖x̂ − x‖², as `gpu::dense::DenseTrainer::train_batch`.
    net = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, d)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = 0.5 * torch.randn(b, d, device=dev)

    def run():
        y = 0.8 * x + 0.6 * torch.randn_like(x)
        loss = ((net(y) - x) ** 2).sum() / b
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return run


def build_conv(torch, dev, b, cin, cout, side, k):
    # One zero-padded stride-1 conv layer forward, then dX and dW from a given dY (cuDNN), as
    # `ConvLayer` in src/bench/workloads/conv.rs.
    import torch.nn.functional as F
    x = torch.randn(b, cin, side, side, device=dev, requires_grad=True)
    w = (torch.randn(cout, cin, k, k, device=dev) / math.sqrt(cin * k * k)).requires_grad_()
    dy = torch.randn(b, cout, side, side, device=dev)

    def run():
        y = F.conv2d(x, w, padding=k // 2)
        return torch.autograd.grad(y, (x, w), dy)

    return run


def build_conv_gemms(torch, dev, b, cin, cout, side, k):
    # The three im2col products of that layer alone (`ConvLayerGemms`), unchunked: Colᵀ·Wᵀ,
    # (dYᵀ)ᵀ·Colᵀ and dYᵀ·W with P = B·H·W rows and K = C_in·k².
    p, kk = b * side * side, cin * k * k
    col = torch.randn(p, kk, device=dev)
    w = torch.randn(cout, kk, device=dev) / math.sqrt(kk)
    rows = torch.randn(p, cout, device=dev)
    y, dw, dcol = (torch.empty(p, cout, device=dev), torch.empty(cout, kk, device=dev),
                   torch.empty(p, kk, device=dev))

    def run():
        torch.mm(col, w.T, out=y)
        torch.mm(rows.T, col, out=dw)
        torch.mm(rows, w, out=dcol)

    return run


# ---- timing --------------------------------------------------------------------------------

def time_runs(torch, dev, fn, warmup, runs):
    for _ in range(warmup):
        fn()
    if dev == "cuda":
        torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    else:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the --quick sizes of the Rust bench")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--rust-json", help="`diffusion-theorems bench --json` output to compare")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--filter", default=None, help="only name/size containing this")
    ap.add_argument("--list", action="store_true", help="print the workloads as JSON and exit")
    args = ap.parse_args()

    table = workload_table(args.quick)
    if args.filter:
        table = [w for w in table if args.filter in f"{w[0]}/{w[1]}" or w[0] == "copy"]
    if args.list:
        print(json.dumps([dict(name=n, size=s, flops=f, bytes=b) for n, s, f, b, _, _ in table],
                         indent=1))
        return 0

    import torch

    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(SEED)
    rust = {}
    if args.rust_json:
        with open(args.rust_json) as f:
            for r in json.load(f)["results"]:
                if r.get("error") is None:
                    rust[(r["name"], r["size"])] = r["seconds"]
    modes = [("fp32", False), ("tf32", True)]
    results = []
    for name, size, flops, nbytes, build, params in table:
        entry = dict(name=name, size=size, flops=flops, bytes=nbytes)
        try:
            fn = build(torch, dev, **params)
            for mode, tf32 in modes:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                secs = time_runs(torch, dev, fn, args.warmup, args.runs)
                entry[mode] = dict(seconds=secs, tflops=flops / secs / 1e12,
                                   gbs=nbytes / secs / 1e9)
            del fn
        except RuntimeError as e:  # out of memory and the like: report, go on
            entry["error"] = str(e).splitlines()[0]
        if dev == "cuda":
            torch.cuda.empty_cache()
        if (name, size) in rust and "fp32" in entry:
            entry["wgpu_seconds"] = rust[(name, size)]
            entry["wgpu_over_fp32"] = rust[(name, size)] / entry["fp32"]["seconds"]
            entry["wgpu_over_tf32"] = rust[(name, size)] / entry["tf32"]["seconds"]
        results.append(entry)

    device_name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print(f"device: {device_name}, torch {torch.__version__}, median of {args.runs} runs "
          f"after {args.warmup} warm-up")
    head = f"{'workload':<20} {'size':<40} {'fp32 ms':>10} {'TFLOP/s':>9} {'GB/s':>9} " \
           f"{'tf32 ms':>10} {'TFLOP/s':>9}"
    if rust:
        head += f" {'wgpu ms':>10} {'wgpu/fp32':>9} {'wgpu/tf32':>9}"
    print(head)
    for e in results:
        if "error" in e:
            print(f"{e['name']:<20} {e['size']:<40} error: {e['error']}")
            continue
        f32, t32 = e["fp32"], e["tf32"]
        line = f"{e['name']:<20} {e['size']:<40} {f32['seconds'] * 1e3:>10.3f} " \
               f"{f32['tflops']:>9.3f} {f32['gbs']:>9.1f} {t32['seconds'] * 1e3:>10.3f} " \
               f"{t32['tflops']:>9.3f}"
        if "wgpu_seconds" in e:
            line += f" {e['wgpu_seconds'] * 1e3:>10.3f} {e['wgpu_over_fp32']:>9.2f} " \
                    f"{e['wgpu_over_tf32']:>9.2f}"
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=device_name, torch=torch.__version__, quick=args.quick,
                           runs=args.runs, warmup=args.warmup, results=results), f, indent=1)
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
