//! The dense one-hidden-layer trainer on the GEMM family.

use super::*;

/// Rigorous interval of one Adam step's `(θ', m', v')` (from f32-rounded hyper-parameters, as
/// the kernel sees them) when the gradient is only known to lie in `[g − δ, g + δ]`: m' and v'
/// are monotone in g and g², and `θ' = θ − lr·c₁m'/(√(c₂v') + ε)` is bounded by interval
/// division.
#[allow(clippy::type_complexity)]
fn adam_interval(
    adam: &diffusion_theorems::gpu::adam::AdamConfig,
    step: u64,
    (theta, m, v): (f64, f64, f64),
    (g, dg): (f64, f64),
) -> ((f64, f64), (f64, f64), (f64, f64)) {
    let r = |x: f64| f64::from(x as f32);
    let (b1, b2) = (r(adam.beta1), r(adam.beta2));
    let c1 = r(1.0 / (1.0 - b1.powi(step as i32)));
    let c2 = r(1.0 / (1.0 - b2.powi(step as i32)));
    let (lr, eps) = (r(adam.lr), r(adam.eps));
    let m_lo = b1 * m + (1.0 - b1) * (g - dg);
    let m_hi = b1 * m + (1.0 - b1) * (g + dg);
    let sq_lo = if g.abs() <= dg {
        0.0
    } else {
        (g.abs() - dg).powi(2)
    };
    let sq_hi = (g.abs() + dg).powi(2);
    let v_lo = b2 * v + (1.0 - b2) * sq_lo;
    let v_hi = b2 * v + (1.0 - b2) * sq_hi;
    let den_lo = (c2 * v_lo).sqrt() + eps;
    let den_hi = (c2 * v_hi).sqrt() + eps;
    let (n_lo, n_hi) = (lr * c1 * m_lo, lr * c1 * m_hi);
    let upd_lo = if n_lo >= 0.0 {
        n_lo / den_hi
    } else {
        n_lo / den_lo
    };
    let upd_hi = if n_hi >= 0.0 {
        n_hi / den_lo
    } else {
        n_hi / den_hi
    };
    ((theta - upd_hi, theta - upd_lo), (m_lo, m_hi), (v_lo, v_hi))
}

fn dense_flat(p: &diffusion_theorems::gpu::dense::DenseParams) -> [Vec<f64>; 4] {
    let rows = |m: &Mat| -> Vec<f64> {
        (0..m.nrows())
            .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
            .collect()
    };
    [rows(&p.w1), p.b1.clone(), rows(&p.w2), p.b2.clone()]
}

/// `gpu::dense` against f64 on small ragged sizes (d = 37, h = 13, N = 50, B = 16, so the last
/// batch has 2 rows), for tanh, leaky ReLU and ReLU: the gather is exact for `X_b` and within
/// the Philox normal bound for `Y_b = αX_b + σε` (ε regenerated on the CPU through crate::rng);
/// outputs, per-row losses and all four gradients are within the first-order running bounds of
/// `dense::batch_reference`, whose values agree with the independent `BottleneckNet`
/// backpropagation; one full Adam step (step 1 on the first batch, step 2 on the short last
/// one) lands inside the rigorous interval of `adam_interval` widened by
/// `adam::adam_reference`'s rounding bound; and a trained epoch equals its batches' steps taken
/// one by one, bit for bit.
#[test]
fn dense_trainer_step_matches_f64_reference() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::adam::{adam_reference, AdamConfig};
    use diffusion_theorems::gpu::dense::{
        batch_inputs_reference, batch_reference, DenseConfig, DenseTrainer,
    };
    use diffusion_theorems::gpu::gemm::GpuMat;
    let gpu = gpu();
    let mut rng = Rng::new(0xde45e, 0);
    let (n, d, h, b) = (50usize, 37usize, 13usize, 16usize);
    let data = Mat::from_fn(n, d, |_, _| f64::from(rng.normal() as f32));
    let gdata = GpuMat::upload(gpu, "dense data", &data).unwrap();
    let (alpha, sigma) = (0.8, 0.6);
    let adam = AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    };
    let acts = [
        Activation::Tanh,
        Activation::LeakyRelu { slope: 0.2 },
        Activation::Relu,
    ];
    for (case, activation) in acts.into_iter().enumerate() {
        let config = DenseConfig {
            hidden: h,
            activation,
            batch: b,
            adam,
            seed: 0x5eed + case as u64,
        };
        let mut trainer = DenseTrainer::new(gpu, &gdata, config).unwrap();
        assert_eq!(trainer.batches_per_epoch(), 4);
        let initial = trainer.state().unwrap();
        for (step, batch) in [(1u64, 0usize), (2, 3)] {
            let rows = if batch == 3 { n - 3 * b } else { b };
            let before = trainer.state().unwrap();
            let params = trainer.parameters().unwrap();
            let eval = trainer.evaluate_batch(alpha, sigma, 0, batch).unwrap();
            let inputs =
                batch_inputs_reference(&data, config.seed, 0, (b, batch), alpha, sigma).unwrap();
            assert_eq!(
                eval.x, inputs.x,
                "{activation:?} batch {batch}: gathered rows"
            );
            assert_eq!(inputs.y.nrows(), rows);
            for r in 0..rows {
                for j in 0..d {
                    let err = (eval.y[(r, j)] - inputs.y[(r, j)]).abs();
                    assert!(err <= inputs.y_bound[(r, j)], "Y[{r},{j}] off by {err}");
                }
            }
            // (i) end to end, from the CPU's regenerated noise (Y known to within the Philox
            // normal bound); (ii) from the GPU's own Y_b, exact in f64 (tight bounds)
            let names = ["W1", "b1", "W2", "b2"];
            let exact = Mat::zeros(rows, d);
            let check = |route: &str, y: &Mat, y_bound: &Mat| {
                let reference =
                    batch_reference(&params, activation, &inputs.x, y, y_bound).unwrap();
                // the reference's values are BottleneckNet's backpropagation
                let net =
                    diffusion_theorems::denoisers::training::dense_network(&params, activation)
                        .unwrap();
                let (loss, grad) = net
                    .loss_and_gradient(y, &inputs.x, &vec![1.0; rows])
                    .unwrap();
                let mean_sq = reference.row_sq.iter().sum::<f64>() / rows as f64;
                assert!((loss - mean_sq).abs() <= 1e-12 * (1.0 + loss));
                let flat_ref: Vec<f64> = dense_flat(&reference.gradient).concat();
                for (k, (x, y)) in grad.iter().zip(&flat_ref).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                        "grad[{k}] {x} vs {y}"
                    );
                }
                let mut worst = [0.0f64; 3];
                for r in 0..rows {
                    for j in 0..d {
                        let (g, f, e) = (
                            eval.x_hat[(r, j)],
                            reference.x_hat[(r, j)],
                            reference.x_hat_bound[(r, j)],
                        );
                        assert!(
                            (g - f).abs() <= e,
                            "{route}: X̂[{r},{j}] {g} vs {f} (bound {e})"
                        );
                        worst[0] = worst[0].max((g - f).abs() / e);
                    }
                    let (g, f, e) = (
                        eval.row_sq[r],
                        reference.row_sq[r],
                        reference.row_sq_bound[r],
                    );
                    assert!(
                        (g - f).abs() <= e,
                        "{route}: row {r} ‖x̂ − x‖² {g} vs {f} ({e})"
                    );
                    worst[1] = worst[1].max((g - f).abs() / e);
                }
                let g_gpu = dense_flat(&eval.gradient);
                let g_ref = dense_flat(&reference.gradient);
                let g_bound = dense_flat(&reference.gradient_bound);
                for t in 0..4 {
                    for k in 0..g_ref[t].len() {
                        let err = (g_gpu[t][k] - g_ref[t][k]).abs();
                        assert!(
                            err <= g_bound[t][k],
                            "{route}: {activation:?} batch {batch} ∇{}[{k}] {} vs {} (bound {})",
                            names[t],
                            g_gpu[t][k],
                            g_ref[t][k],
                            g_bound[t][k]
                        );
                        if g_bound[t][k] > 0.0 {
                            worst[2] = worst[2].max(err / g_bound[t][k]);
                        }
                    }
                }
                println!(
                    "{activation:?} batch {batch}, {route}: worst error/bound X̂ {:.2e}, \
                     ‖x̂ − x‖² {:.2e}, gradient {:.2e}",
                    worst[0], worst[1], worst[2]
                );
                (g_gpu, g_ref, g_bound)
            };
            check("regenerated noise", &inputs.y, &inputs.y_bound);
            let (g_gpu, g_ref, g_bound) = check("GPU's Y_b", &eval.y, &exact);
            // one Adam step
            let loss_gpu = trainer.train_batch(alpha, sigma, 0, batch).unwrap();
            assert_eq!(loss_gpu, eval.row_sq.iter().sum::<f64>() / rows as f64);
            let after = trainer.state().unwrap();
            let parts = |s: &diffusion_theorems::gpu::dense::DenseState| {
                [s.w1.clone(), s.b1.clone(), s.w2.clone(), s.b2.clone()]
            };
            let (pb, pa) = (parts(&before), parts(&after));
            for t in 0..4 {
                let f = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
                let (theta, m, v) = (f(&pb[t].value), f(&pb[t].m), f(&pb[t].v));
                let (rt, rm, rv, bt, bm, bv) =
                    adam_reference(&adam, step, &theta, &g_gpu[t], &m, &v);
                let (ft, _, _, _, _, _) = adam_reference(&adam, step, &theta, &g_ref[t], &m, &v);
                for k in 0..theta.len() {
                    let (it, im, iv) = adam_interval(
                        &adam,
                        step,
                        (theta[k], m[k], v[k]),
                        (g_ref[t][k], g_bound[t][k]),
                    );
                    // the interval holds the f64 step (up to the f64 roundings of both routes)
                    let slack = 1e-12 * (theta[k] - ft[k]).abs() + 1e-15 * theta[k].abs();
                    assert!(
                        it.0 - slack <= ft[k] && ft[k] <= it.1 + slack,
                        "the f64 step {} lies in its interval {it:?}",
                        ft[k]
                    );
                    let check = |what: &str, got: f32, (lo, hi): (f64, f64), exact: f64, e: f64| {
                        let got = f64::from(got);
                        assert!(
                            lo - e <= got && got <= hi + e,
                            "{activation:?} step {step} {}[{k}] {what}: {got} outside [{lo}, {hi}] ± {e} \
                             (f64 step from the GPU gradient: {exact})",
                            names[t]
                        );
                    };
                    check("θ", pa[t].value[k], it, rt[k], bt[k]);
                    check("m", pa[t].m[k], im, rm[k], bm[k]);
                    check("v", pa[t].v[k], iv, rv[k], bv[k]);
                }
            }
        }
        // an epoch is its batches' steps in order
        let mut whole = DenseTrainer::new(gpu, &gdata, config).unwrap();
        whole.set_state(&initial).unwrap();
        let losses = whole.train_epochs(alpha, sigma, 1, &mut |_, _| {}).unwrap();
        let mut steps = DenseTrainer::new(gpu, &gdata, config).unwrap();
        steps.set_state(&initial).unwrap();
        let mut total = 0.0;
        for k in 0..4 {
            let rows = if k == 3 { n - 3 * b } else { b };
            total += rows as f64 * steps.train_batch(alpha, sigma, 0, k).unwrap();
        }
        let (sw, ss) = (whole.state().unwrap(), steps.state().unwrap());
        assert_eq!((sw.w1, sw.b1, sw.w2, sw.b2), (ss.w1, ss.b1, ss.w2, ss.b2));
        assert_eq!((sw.step, sw.epoch), (4, 1));
        // the epoch loss is summed sequentially in f32 on the GPU (the column-sum kernel): N
        // nonnegative values through at most N − 1 additions each, |ŝ − s| ≤ γ_{N−1}·s (the
        // factor 2 covers measuring against ŝ instead of s)
        let g = diffusion_theorems::numerics::gamma_f32(n);
        assert!((losses[0] - total / n as f64).abs() <= 2.0 * g * losses[0]);
    }
}

/// A checkpoint resumes bit for bit: train 2 epochs, save the state (through JSON), train a
/// third; a fresh trainer (other seed) loaded with the state trains the same third epoch — same
/// loss, parameters, Adam moments and counters. Mismatched checkpoints are refused.
#[test]
fn dense_trainer_resumes_bit_for_bit() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::dense::{DenseConfig, DenseState, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    let gpu = gpu();
    let mut rng = Rng::new(0x7e5, 0);
    let data = Mat::from_fn(40, 20, |_, _| rng.normal());
    let gdata = GpuMat::upload(gpu, "dense data", &data).unwrap();
    let config = DenseConfig {
        hidden: 9,
        activation: Activation::LeakyRelu { slope: 0.2 },
        batch: 16,
        adam: AdamConfig::default(),
        seed: 11,
    };
    let mut a = DenseTrainer::new(gpu, &gdata, config).unwrap();
    let mut seen = vec![];
    a.train_epochs(1.0, 0.5, 2, &mut |e, l| seen.push((e, l)))
        .unwrap();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1]);
    let saved = a.state().unwrap();
    let json = serde_json::to_string(&saved).unwrap();
    let restored: DenseState = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, saved);
    let la = a.train_epochs(1.0, 0.5, 1, &mut |_, _| {}).unwrap();
    let mut b = DenseTrainer::new(gpu, &gdata, DenseConfig { seed: 99, ..config }).unwrap();
    b.set_state(&restored).unwrap();
    let mut third = None;
    let lb = b
        .train_epochs(1.0, 0.5, 1, &mut |e, _| third = Some(e))
        .unwrap();
    assert_eq!(third, Some(2));
    assert_eq!(la, lb);
    assert_eq!(a.state().unwrap(), b.state().unwrap());
    assert_eq!(a.parameters().unwrap(), b.parameters().unwrap());
    // refusals
    let mut wrong = restored.clone();
    wrong.hidden = 8;
    assert!(b.set_state(&wrong).is_err());
    let mut wrong = restored.clone();
    wrong.w2.v[3] = -1.0;
    assert!(b.set_state(&wrong).is_err());
    let mut wrong = restored;
    wrong.b1.m.pop();
    assert!(b.set_state(&wrong).is_err());
}

/// Sanity check (not a theorem): on a tiny dataset the epoch loss falls by half within 150
/// epochs; and `predict` on a batch of 7 rows (poisoned output first) matches the f64 forward of
/// the trained parameters within `dense::batch_reference`'s bound (inputs rounded to f32).
#[test]
fn dense_trainer_reduces_loss_and_predicts() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::dense::{batch_reference, DenseConfig, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::numerics::F32_UNIT_ROUNDOFF as U;
    let gpu = gpu();
    let mut rng = Rng::new(0x1055, 0);
    let data = Mat::from_fn(12, 10, |_, _| rng.normal());
    let gdata = GpuMat::upload(gpu, "dense data", &data).unwrap();
    let activation = Activation::Tanh;
    let config = DenseConfig {
        hidden: 16,
        activation,
        batch: 5,
        adam: AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
        seed: 3,
    };
    let mut trainer = DenseTrainer::new(gpu, &gdata, config).unwrap();
    let losses = trainer.train_epochs(1.0, 0.2, 150, &mut |_, _| {}).unwrap();
    let (first, last) = (losses[0], losses[149]);
    println!("tiny dataset: epoch loss {first:.4} → {last:.4}");
    assert!(last.is_finite() && last < 0.5 * first, "{first} → {last}");
    let y = Mat::from_fn(7, 10, |_, _| rng.normal());
    let gy = GpuMat::upload(gpu, "dense y", &y).unwrap();
    let out = GpuMat::poisoned(gpu, "dense out", 7, 10).unwrap();
    trainer.predict(&gy, &out).unwrap();
    let got = out.download(gpu).unwrap();
    let y_bound = Mat::from_fn(7, 10, |i, j| U * y[(i, j)].abs());
    let params = trainer.parameters().unwrap();
    let reference = batch_reference(&params, activation, &y, &y, &y_bound).unwrap();
    assert_within_bound("predict", &got, &reference.x_hat, &reference.x_hat_bound);
    // in place: y is read by the first product only, then overwritten by the second
    trainer.predict(&gy, &gy).unwrap();
    assert_eq!(gy.download(gpu).unwrap(), got);
    assert!(trainer.predict(&gdata, &out).is_err(), "row count mismatch");
}

/// Bad configurations and arguments of the dense trainer are typed errors naming the value.
#[test]
fn dense_trainer_refuses_bad_input() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::dense::{DenseConfig, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    let gpu = gpu();
    let data = GpuMat::upload(
        gpu,
        "dense data",
        &Mat::from_fn(10, 4, |i, j| (i + j) as f64),
    )
    .unwrap();
    let ok = DenseConfig {
        hidden: 3,
        activation: Activation::Relu,
        batch: 4,
        adam: AdamConfig::default(),
        seed: 1,
    };
    let refuse = |config: DenseConfig, needle: &str| {
        let e = DenseTrainer::new(gpu, &data, config).err().unwrap();
        assert!(e.to_string().contains(needle), "{e}");
    };
    refuse(DenseConfig { hidden: 0, ..ok }, "hidden");
    refuse(DenseConfig { batch: 0, ..ok }, "batch");
    refuse(DenseConfig { batch: 11, ..ok }, "11");
    refuse(
        DenseConfig {
            activation: Activation::LeakyRelu { slope: -0.5 },
            ..ok
        },
        "-0.5",
    );
    let mut t = DenseTrainer::new(gpu, &data, ok).unwrap();
    assert!(t.train_epochs(1.0, 0.0, 1, &mut |_, _| {}).is_err());
    assert!(t.train_epochs(f64::NAN, 1.0, 1, &mut |_, _| {}).is_err());
    let e = t.train_batch(1.0, 1.0, 0, 3).unwrap_err();
    assert!(e.to_string().contains("batch index"), "{e}");
    assert_eq!(t.steps_done(), 0);
}

/// Throughput of one epoch at d = 768 (16×16×3), N = 256, h = 100, B = 64 on this adapter: one
/// warm-up epoch (pipelines), then the median of 5 epochs, wall clock around a full submission
/// and the loss readback; GFLOP/s from `DenseTrainer::flops_per_epoch`.
#[test]
fn dense_trainer_epoch_throughput() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::dense::{DenseConfig, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    let gpu = gpu();
    let mut rng = Rng::new(0x7177, 0);
    let data = Mat::from_fn(256, 768, |_, _| rng.uniform());
    let gdata = GpuMat::upload(gpu, "dense data", &data).unwrap();
    let config = DenseConfig {
        hidden: 100,
        activation: Activation::LeakyRelu { slope: 0.2 },
        batch: 64,
        adam: AdamConfig {
            lr: 1e-4,
            ..AdamConfig::default()
        },
        seed: 5,
    };
    let mut trainer = DenseTrainer::new(gpu, &gdata, config).unwrap();
    trainer.train_epochs(0.9, 0.4, 1, &mut |_, _| {}).unwrap();
    let mut times = vec![];
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let loss = trainer.train_epochs(0.9, 0.4, 1, &mut |_, _| {}).unwrap();
        times.push(start.elapsed().as_secs_f64());
        assert!(loss[0].is_finite());
    }
    times.sort_by(f64::total_cmp);
    let t = times[2];
    let flops = trainer.flops_per_epoch();
    println!(
        "{}: dense epoch d=768 N=256 h=100 B=64: {:.2} ms, {:.3} GFLOP, {:.2} GFLOP/s",
        gpu.backend_name(),
        t * 1e3,
        flops / 1e9,
        flops / t / 1e9
    );
}
