//! The paper-scale image experiments end to end in their `--quick` form on whatever adapter
//! wgpu finds (Mesa llvmpipe in CI): every experiment runs, writes its folder, and the
//! properties that hold exactly at any scale are checked on the output.

use crate::common::gpu;
use diffusion_theorems::diffusion::Schedule;
use diffusion_theorems::experiments::images::linear::{LinearPredictor, Pca};
use diffusion_theorems::experiments::images::memorization::{
    EmpiricalPredictor, GpuEmpiricalPredictor,
};
use diffusion_theorems::experiments::images::polynomial::{self, FeatureMap, PolynomialPredictor};
use diffusion_theorems::experiments::images::{self, RunFolder, Settings, StepPredictor};
use diffusion_theorems::gpu::gemm::GpuMat;
use diffusion_theorems::gpu::rowwise;
use diffusion_theorems::io::npy;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::stats::nearest::{summarize, NearestTwo};
use diffusion_theorems::targets::images::DataSource;
use std::path::{Path, PathBuf};

fn run_folder(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("diffusion-theorems-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `diffusion-theorems exp <args> --out <out>`, stdout discarded, stderr kept for messages.
fn exp_command(args: &[&str], out: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"));
    command
        .arg("exp")
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// Runs `command` to the end and asserts it succeeded (its stderr is the failure message).
fn run_to_success(mut command: std::process::Command) {
    let done = command.output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn quick_all_writes_every_figure_and_metric() {
    let out = run_folder("all");
    // N = 32, one epoch per per-step MLP and per U-Net, one polynomial degree (k = 3, both
    // feature maps), two bottleneck widths (h = 16, 8), 4 samples (the figures' 4 columns) and
    // the generalization sweep at N = 1, 4: every experiment and figure still runs end to end on
    // the same code paths, and no assertion here reads a trained model's quality. The steps
    // stay at --quick's L = 10, which the memorization claim below depends on.
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 }).with_n(32);
    settings.epochs = 1;
    settings.unet.epochs = 1;
    settings.degrees = vec![3];
    settings.hidden = vec![16, 8];
    settings.samples = 4;
    settings.columns = 4;
    settings.generalization_sizes = vec![1, 4];
    // the ELS against one of the five U-Nets at one patch side (two sides:
    // `els_run_reports_r2_per_level_and_writes_its_figure`; all five: `exp els --quick`)
    settings.els.networks = vec!["pool3-circular".into()];
    settings.els.r2_patches = vec![3];
    assert!(settings.columns <= settings.samples);
    let summary = images::run(gpu(), settings.clone(), "all", &out, false).unwrap();
    let names: Vec<&str> = summary
        .experiments
        .iter()
        .map(|e| e.experiment.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "linear",
            "polynomial",
            "polynomial-patch",
            "bottleneck",
            "memorization",
            "generalization",
            "unet",
            "els"
        ]
    );
    for file in [
        "config.json",
        "metrics.json",
        "linear/fig5_linear_ranks.png",
        "linear/fig6_linear_refit.png",
        "linear/metrics.json",
        "polynomial/fig7_polynomial.png",
        "polynomial/fig7_max_normalized.png",
        "bottleneck/fig9_bottleneck.png",
        "memorization/memorization_empirical.png",
        "generalization/generalization.png",
        "unet/fig1_unet.png",
        "polynomial-patch/fig8_patch_polynomial.png",
        "els/els_samples.png",
        "els/metrics.json",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    // The config round-trips: a rerun from it uses the same settings.
    let config: Settings =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config, settings);

    // The empirical optimal denoiser memorizes: at the last step (σ₁ = sin(π/(2·1.008·L)))
    // the softmax weights are one-hot to within e^{−(d₂² − d₁²)/2σ²} (with d₂² − d₁² ≫ σ² for
    // distinct images), so every sample is a training image: MemRatio = 1.
    // Copies are memorized under eq. 3.3.6 as well (cosine 1 > 3/5, raw and centred).
    let memorization = &summary.metrics["memorization"]["architectures"][0];
    for ratio in [
        "mem_ratio",
        "similarity_mem_ratio",
        "centred_similarity_mem_ratio",
    ] {
        assert_eq!(
            memorization["summary"][ratio].as_f64(),
            Some(1.0),
            "{ratio}"
        );
    }
    assert_eq!(
        summary.metrics["memorization"]["similarity_above"].as_f64(),
        Some(0.6)
    );
    // The generalization sweep reports both criteria per (architecture, N ≥ 2) with a sample
    // compared, none at N = 1 (no second-nearest image) or when every trajectory escaped.
    for result in summary.metrics["generalization"]["results"]
        .as_array()
        .unwrap()
    {
        let has_summary = result["memorization"]["similarity_mem_ratio"].is_f64();
        let expected = result["n"].as_u64() > Some(1) && result["compared"].as_u64() > Some(0);
        assert_eq!(has_summary, expected, "{result}");
    }
    // Both experiments that use the empirical denoiser say which route produced it.
    for experiment in ["memorization", "generalization"] {
        let route = summary.metrics[experiment]["empirical_route"].as_str();
        assert!(
            route.is_some_and(|r| r.starts_with("gpu")),
            "{experiment}: {route:?}"
        );
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn linear_samples_lie_in_the_rank_k_principal_subspace() {
    // Levine–Weiss Thm 4: every x̂₀ of the rank-K model lies in μ + span(u₁…u_K), and so does
    // DDIM's final state (the last step returns x̂₀ itself: α₀ = 1, σ₀ = 0). The residual after
    // projecting out that subspace is rounding only: the f32 GEMMs err by γ_{d+5}·Σ|U||x| per
    // entry, bounded here by 2·γ_{d+5}·‖·‖ over two products — checked at 1e-3 of the
    // sample norm, far above that (d = 768: γ ≈ 4.6e-5 per entry) and far below a missing
    // direction (a rank-K sample of C^α data has ≥ 10% of its norm outside any K' < K space).
    let out = run_folder("linear");
    let settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 });
    images::run(gpu(), settings.clone(), "linear", &out, false).unwrap();
    let context = images::Context::new(gpu(), settings.clone()).unwrap();
    let pca = Pca::fit(&context.data.images).unwrap();
    for (row, k) in settings.ranks.iter().enumerate() {
        let sub = pca.truncated(*k);
        let samples = npy::read(&out.join(format!("linear/fig5_linear_ranks-{row}.npy"))).unwrap();
        let d = context.dim();
        for s in 0..samples.shape[0] {
            let x: Vec<f64> = (0..d)
                .map(|j| samples.data[s * d + j] - sub.mean[j])
                .collect();
            let mut residual = x.clone();
            for c in 0..sub.rank() {
                let coefficient: f64 = (0..d).map(|j| sub.basis[(j, c)] * x[j]).sum();
                for (j, r) in residual.iter_mut().enumerate() {
                    *r -= coefficient * sub.basis[(j, c)];
                }
            }
            let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
            assert!(
                norm(&residual) <= 1e-3 * norm(&x).max(1.0),
                "K = {k:?}, sample {s}: {} outside the subspace (norm {})",
                norm(&residual),
                norm(&x)
            );
        }
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn bad_settings_are_typed_errors() {
    let mut settings = Settings::quick(&DataSource::Disks);
    settings.generalization_sizes = vec![settings.n];
    let err = settings.validate().unwrap_err().to_string();
    assert!(err.contains("generalization"), "{err}");
    let mut settings = Settings::quick(&DataSource::Disks);
    settings.n = 1;
    assert!(settings.validate().is_err());
    // issue 22 item 9: a rank of 0 and a degree whose features overflow f32 are refused up
    // front, naming the field and the value
    let mut settings = Settings::quick(&DataSource::Disks);
    settings.ranks = vec![Some(0)];
    let err = settings.validate().unwrap_err().to_string();
    assert!(err.contains("ranks") && err.contains("got 0"), "{err}");
    let mut settings = Settings::quick(&DataSource::Disks);
    settings.degrees = vec![3, 1000];
    let err = settings.validate().unwrap_err().to_string();
    assert!(
        err.contains("degrees") && err.contains("1000") && err.contains("42"),
        "{err}"
    );
    // issue 22 item 8: an unknown architecture fails at validation, not after the other fits
    let mut settings = Settings::quick(&DataSource::Disks);
    settings.generalization_architectures = vec!["linear".into(), "transformer".into()];
    let err = settings.validate().unwrap_err().to_string();
    assert!(
        err.contains("transformer") && err.contains("bottleneck"),
        "{err}"
    );
}

/// Wraps a predictor and keeps its input at step 1, `x_{t₁}`, the state the last DDIM step
/// denoises (α₀ = 1, σ₀ = 0, so the final sample is `x̂₀(x_{t₁})`).
struct LastInput<P> {
    inner: P,
    x1: Option<Mat>,
}

impl<P: StepPredictor> StepPredictor for LastInput<P> {
    fn predict(
        &mut self,
        schedule: &Schedule,
        step: usize,
        x_t: &Mat,
    ) -> diffusion_theorems::error::Result<Mat> {
        if step == 1 {
            self.x1 = Some(x_t.clone());
        }
        self.inner.predict(schedule, step, x_t)
    }
}

#[test]
fn gpu_empirical_route_ends_at_the_same_training_images_as_the_f64_route() {
    // The f32 GPU route of the empirical optimal denoiser (book eq. 3.3.3) against the f64 CPU
    // reference, sampled by DDIM from the same noise at --quick scale (N = 64, d = 768, L = 10).
    // Claim 1 (discrete, exact): every sample's nearest training image is the same, and so is
    // MemRatio. Claim 2: the final samples agree within a bound derived below.
    let settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 });
    let context = images::Context::new(gpu(), settings.clone()).unwrap();
    let x = &context.data.images;
    let (n, d) = (x.nrows(), x.ncols());
    let schedule = images::paper_schedule(settings.steps).unwrap();
    let mut cpu = LastInput {
        inner: EmpiricalPredictor::new(x),
        x1: None,
    };
    let cpu_samples = images::ddim(&schedule, &mut cpu, &context.noise)
        .unwrap()
        .samples;
    let mut gpu_route = LastInput {
        inner: GpuEmpiricalPredictor::new(gpu(), x).unwrap(),
        x1: None,
    };
    let gpu_samples = images::ddim(&schedule, &mut gpu_route, &context.noise)
        .unwrap()
        .samples;
    let (cpu_summary, cpu_nearest) = summarize(x, &cpu_samples).unwrap();
    let (gpu_summary, gpu_nearest) = summarize(x, &gpu_samples).unwrap();
    let firsts = |v: &[NearestTwo]| v.iter().map(|t| t.first).collect::<Vec<_>>();
    assert_eq!(firsts(&gpu_nearest), firsts(&cpu_nearest));
    assert_eq!(gpu_summary.mem_ratio, cpu_summary.mem_ratio);

    // Claim 2. The GPU's last step denoises its own x₁ = y. With exact logits
    // z_j = (α/σ²) y·x_j − (α²/2σ²)‖x_j‖² and the f32 bound δ_j on the kernel's logits
    // (gpu::empirical module docs), the rowwise softmax bound gives p̃_j ≤ p_j + b_j for every
    // j ≠ i* = argmax z. If the exact gap G = z_{i*} − max_{j≠i*} z_j exceeds 2·max δ, i* also
    // maximises the computed logits, so its shifted logit is exactly 0, exp(0) is 1 within 3 ULP
    // and p̃_{i*} = 1/s̃ with s̃ = 1 + Σ_{j≠i*} ẽ_j up to the sum's γ_g (g = ⌈N/256⌉ + 8) and the
    // division's 2.5 ULP: |p̃_{i*} − 1| ≤ η = 2(Σ_{j≠i*}(p_j + b_j) + 6u + γ_g + 5u) (doubled for
    // second-order terms, one block here). The f32 product X̂ = P̃X adds γ_{N+5}Σ_j p̃_j|x_jl|. So
    //   |x̂_gpu,l − x_{i*,l}| ≤ Σ_{j≠i*}(p_j + b_j)|x_jl| + η|x_{i*,l}| + γ_{N+5}(1 + η)max_j|x_jl|,
    // and |x̂_cpu,l − x_{i*,l}| is measured in f64 (its own rounding below 16(N + d)ε·max|x|,
    // as in gpu::empirical::denoise_reference). The tolerance is the sum.
    let y = gpu_route.x1.as_ref().unwrap();
    let (alpha, sigma) = (schedule.alpha(1), schedule.sigma(1));
    let (scale, shift) = (
        alpha / (sigma * sigma),
        alpha * alpha / (2.0 * sigma * sigma),
    );
    let u = 2f64.powi(-24);
    let g_dot = diffusion_theorems::numerics::gamma_f32(d + 5);
    let g4 = diffusion_theorems::numerics::gamma_f32(4);
    let eta_sum = diffusion_theorems::numerics::gamma_f32(n.div_ceil(256) + 8) + 11.0 * u;
    let max_abs_x = (0..n)
        .flat_map(|j| (0..d).map(move |l| (j, l)))
        .map(|(j, l)| x[(j, l)].abs())
        .fold(0.0, f64::max);
    let f64_rounding = 16.0 * (n + d) as f64 * f64::EPSILON * max_abs_x;
    let mut worst = 0.0f64;
    for i in 0..y.nrows() {
        let star = gpu_nearest[i].first;
        let (z, dz): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|j| {
                let s: f64 = (0..d).map(|l| y[(i, l)] * x[(j, l)]).sum();
                let abs_s: f64 = (0..d).map(|l| (y[(i, l)] * x[(j, l)]).abs()).sum();
                let norm: f64 = (0..d).map(|l| x[(j, l)] * x[(j, l)]).sum();
                let dz = scale * g_dot * abs_s + g4 * (scale * s.abs() + shift * norm);
                (scale * s - shift * norm, dz)
            })
            .unzip();
        let gap = z[star]
            - (0..n)
                .filter(|&j| j != star)
                .map(|j| z[j])
                .fold(f64::NEG_INFINITY, f64::max);
        let delta = dz.iter().copied().fold(0.0, f64::max);
        assert!(
            gap > 2.0 * delta,
            "sample {i}: logit gap {gap} ≤ 2δ = {}; the bound's premise fails",
            2.0 * delta
        );
        let (p, b, _, _) = rowwise::softmax_row_error(&z, &dz, &[n]).unwrap();
        let off: f64 = (0..n).filter(|&j| j != star).map(|j| p[j] + b[j]).sum();
        let eta = 2.0 * (off + eta_sum);
        for l in 0..d {
            let leak: f64 = (0..n)
                .filter(|&j| j != star)
                .map(|j| (p[j] + b[j]) * x[(j, l)].abs())
                .sum();
            let column_max = (0..n).map(|j| x[(j, l)].abs()).fold(0.0, f64::max);
            let gpu_side = leak
                + eta * x[(star, l)].abs()
                + diffusion_theorems::numerics::gamma_f32(n + 5) * (1.0 + eta) * column_max;
            let cpu_side = (cpu_samples[(i, l)] - x[(star, l)]).abs() + f64_rounding;
            let diff = (gpu_samples[(i, l)] - cpu_samples[(i, l)]).abs();
            assert!(
                diff <= gpu_side + cpu_side,
                "sample {i}, pixel {l}: |gpu − cpu| = {diff:e} > {:e}",
                gpu_side + cpu_side
            );
            worst = worst.max(diff / (gpu_side + cpu_side));
        }
    }
    println!("largest |gpu − cpu| / tolerance over the final samples: {worst:.3e}");
}

/// Reads `dir/name` as f64 values and its shape.
fn load(dir: &Path, name: &str) -> npy::NpyArray {
    npy::read(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn exported_models_reproduce_the_crates_predictions() {
    // `--export-models`: a NumPy user re-running the linear predictor (every K) and one
    // polynomial step from the exported arrays gets the crate's GPU outputs within the f32
    // error bound of those GPU computations (γ_k = k·u/(1 − k·u), inputs rounded to f32 counted
    // in the +5 of every GEMM bound); the reference here is computed in f64 from the exported
    // values, whose own rounding (≤ γ⁶⁴_{d+w} of the same sums) is added.
    let out = run_folder("export");
    // one polynomial degree (k = 3, the one re-run below; both feature maps are still fitted
    // and exported), N = 32
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 }).with_n(32);
    settings.degrees = vec![3];
    settings.export_models = true;
    images::run(gpu(), settings.clone(), "linear", &out, false).unwrap();
    images::run(gpu(), settings.clone(), "polynomial", &out, false).unwrap();
    let context = images::Context::new(gpu(), settings.clone()).unwrap();
    let (d, u64_) = (context.dim(), f64::EPSILON / 2.0);
    let f64_gamma = |k: usize| k as f64 * u64_ / (1.0 - k as f64 * u64_);
    // Inputs: x_t = α x₀ + σ ε at a middle step, for the first 4 images and noise rows.
    let inputs = |schedule: &Schedule, step: usize| {
        let (a, s) = (schedule.alpha(step), schedule.sigma(step));
        Mat::from_fn(4, d, |i, j| {
            a * context.data.images[(i, j)] + s * context.noise[(i, j)]
        })
    };

    // Linear: x̂₀ = μ + U diag(αλ/(α²λ + σ²)) Uᵀ(y − αμ) (models/README.md).
    let models = out.join("linear/models");
    let alpha = load(&models, "alpha.npy").data;
    let sigma = load(&models, "sigma.npy").data;
    let schedule = images::paper_schedule(settings.linear_steps).unwrap();
    assert_eq!(alpha.len(), schedule.steps() + 1);
    let step = schedule.steps() / 2;
    assert_eq!(
        (alpha[step], sigma[step]),
        (schedule.alpha(step), schedule.sigma(step))
    );
    let (a, s) = (alpha[step], sigma[step]);
    let y = inputs(&schedule, step);
    let pca = Pca::fit(&context.data.images).unwrap();
    for k in &settings.ranks {
        let name = format!("K{}", k.map_or("full".to_string(), |k| k.to_string()));
        let dir = models.join(&name);
        let mean = load(&dir, "mean.npy").data;
        let basis = load(&dir, "basis.npy");
        let lambda = load(&dir, "eigenvalues.npy").data;
        let rank = lambda.len();
        assert_eq!(basis.shape, [d, rank], "{name}");
        let u_ = |j: usize, c: usize| basis.data[j * rank + c];
        let crate_out = LinearPredictor::new(gpu(), pca.truncated(*k))
            .unwrap()
            .predict(&schedule, step, &y)
            .unwrap();
        for i in 0..y.nrows() {
            let centred: Vec<f64> = (0..d).map(|j| y[(i, j)] - a * mean[j]).collect();
            let shrink: Vec<f64> = lambda.iter().map(|l| a * l / (a * a * l + s * s)).collect();
            let (coef, coef_err): (Vec<f64>, Vec<f64>) = (0..rank)
                .map(|c| {
                    let abs: f64 = (0..d).map(|j| (centred[j] * u_(j, c)).abs()).sum();
                    let v: f64 = (0..d).map(|j| centred[j] * u_(j, c)).sum();
                    (
                        v,
                        diffusion_theorems::numerics::gamma_f32(d + 5) * abs + f64_gamma(d) * abs,
                    )
                })
                .unzip();
            for j in 0..d {
                let value: f64 = mean[j]
                    + (0..rank)
                        .map(|c| shrink[c] * coef[c] * u_(j, c))
                        .sum::<f64>();
                let bound: f64 = (0..rank)
                    .map(|c| {
                        let w = shrink[c].abs() * u_(j, c).abs();
                        w * coef_err[c]
                            + diffusion_theorems::numerics::gamma_f32(rank + 5)
                                * w
                                * (coef[c].abs() + coef_err[c])
                    })
                    .sum::<f64>()
                    + f64_gamma(rank + 1) * (mean[j].abs() + value.abs());
                let diff = (crate_out[(i, j)] - value).abs();
                assert!(
                    diff <= bound,
                    "{name}, input {i}, pixel {j}: {diff:e} > {bound:e}"
                );
            }
        }
    }

    // One polynomial step (degree k = 3): φ = (c_ℓ·R y)^k, x̂₀ = (1, φ) A_ℓ (models/README.md).
    let models = out.join("polynomial/models");
    let projection = load(&models, "projection.npy");
    let w = settings.width;
    assert_eq!(projection.shape, [w, d]);
    let k = settings.degrees[0];
    let scales = load(&models.join(format!("polynomial-k{k}")), "scale.npy").data;
    let schedule = images::paper_schedule(settings.steps).unwrap();
    let step = schedule.steps() / 2;
    let y = inputs(&schedule, step);
    let data = GpuMat::upload(gpu(), "images", &context.data.images).unwrap();
    let resident = polynomial::upload_projection(&context).unwrap();
    let readouts = run_folder("export-readout");
    let mut predictor = PolynomialPredictor::new(
        &context,
        &context.data.images,
        &data,
        &resident,
        k,
        FeatureMap::Polynomial,
    )
    .unwrap()
    .exporting_to(RunFolder::create(&readouts).unwrap());
    let crate_out = predictor.predict(&schedule, step, &y).unwrap();
    let readout = load(&readouts, &format!("readout-{step}.npy"));
    assert_eq!(readout.shape, [w + 1, d]);
    let r = |j: usize, l: usize| projection.data[j * d + l];
    let big_a = |j: usize, l: usize| readout.data[j * d + l];
    let c = scales[step];
    for i in 0..y.nrows() {
        // Features with the bound on the crate's: |Δz_j| ≤ γ_{d+5}Σ|y||R| from the f32 GEMM,
        // then |(c z̃)^k − (c z)^k| ≤ k(c(|z| + Δz))^{k−1}·cΔz by the mean value theorem.
        let mut phi = vec![1.0];
        let mut phi_err = vec![0.0];
        for j in 0..w {
            let z: f64 = (0..d).map(|l| y[(i, l)] * r(j, l)).sum();
            let abs: f64 = (0..d).map(|l| (y[(i, l)] * r(j, l)).abs()).sum();
            let dz = (diffusion_theorems::numerics::gamma_f32(d + 5) + f64_gamma(d)) * abs;
            phi.push((c * z).powi(k as i32));
            phi_err.push(k as f64 * (c * (z.abs() + dz)).powi(k as i32 - 1) * c * dz);
        }
        for l in 0..d {
            let value: f64 = (0..=w).map(|j| phi[j] * big_a(j, l)).sum();
            let bound: f64 = (0..=w)
                .map(|j| {
                    let a = big_a(j, l).abs();
                    phi_err[j] * a
                        + (diffusion_theorems::numerics::gamma_f32(w + 6) + f64_gamma(w + 1))
                            * (phi[j].abs() + phi_err[j])
                            * a
                })
                .sum();
            let diff = (crate_out[(i, l)] - value).abs();
            assert!(
                diff <= bound,
                "polynomial k={k}, input {i}, pixel {l}: {diff:e} > {bound:e}"
            );
        }
    }
    for file in ["README.md", "alpha.npy", "sigma.npy"] {
        assert!(
            models.join(file).is_file(),
            "missing polynomial/models/{file}"
        );
    }
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&readouts).ok();
}

/// The generalization sizes are the paper's powers of ten that two disjoint halves of the data
/// allow, then the half itself: {1, 10, 100, 500} for the default 1000 images, the paper's
/// {1, 10, 100, 1000} for `--n 2000`; and every such list passes validation.
#[test]
fn generalization_sizes_follow_the_number_of_images() {
    assert_eq!(
        Settings::generalization_sizes(1000, 10),
        vec![1, 10, 100, 500]
    );
    assert_eq!(
        Settings::generalization_sizes(2000, 10),
        vec![1, 10, 100, 1000]
    );
    assert_eq!(Settings::generalization_sizes(64, 4), vec![1, 4, 16, 32]);
    assert_eq!(Settings::generalization_sizes(3, 10), vec![1]);
    assert!(Settings::generalization_sizes(1, 10).is_empty());
    let data = DataSource::CAlpha { alpha: 2.0 };
    for n in [2, 7, 1000, 2000, 30_000] {
        let settings = Settings::paper(&data).with_n(n);
        assert_eq!(settings.n, n);
        settings.validate().unwrap();
    }
    assert_eq!(
        Settings::quick(&data).with_n(128).generalization_sizes,
        vec![1, 4, 16, 64]
    );
}

/// The bottleneck architecture in the generalization experiment trains on halves smaller than
/// one batch (N = 1 and 4 with batch 16): each is trained as one full batch instead of being
/// refused (a paper-scale `exp all` with `bottleneck` in the architectures stopped at N = 1).
#[test]
fn generalization_bottleneck_trains_on_fewer_images_than_a_batch() {
    let out = run_folder("generalization-bottleneck");
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 });
    settings.generalization_architectures = vec!["bottleneck".into()];
    settings.generalization_sizes = vec![1, 4];
    settings.epochs = 1;
    assert!(settings.batch > 4);
    let summary = images::run(gpu(), settings, "generalization", &out, false).unwrap();
    assert_eq!(summary.experiments.len(), 1);
    assert!(out.join("generalization/metrics.json").exists());
}

/// Issue 22 items 4 and 5: a run too large for the machine is refused before it allocates —
/// exit 2 with a message naming the size and the limit, never a panic (exit 101, an allocation
/// failure in faer) or the OOM killer: `exp polynomial-2d` and `exp bottleneck-2d` with
/// `--samples` 2⁶⁴ − 1, `exp linear --quick --n 100000000` (≈ 600 GiB of images), and the same
/// at a small explicit `--max-memory`.
#[test]
fn runs_beyond_memory_are_refused_before_allocating() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let out = run_folder("too-large");
    let max = "18446744073709551615";
    let folder = out.to_str().unwrap();
    for args in [
        vec!["exp", "polynomial-2d", "--samples", max, "--out", folder],
        vec!["exp", "bottleneck-2d", "--samples", max, "--out", folder],
        vec![
            "exp",
            "linear",
            "--quick",
            "--n",
            "100000000",
            "--out",
            folder,
        ],
        vec![
            "exp",
            "linear",
            "--quick",
            "--max-memory",
            "0.0001",
            "--out",
            folder,
        ],
    ] {
        let run = std::process::Command::new(exe)
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("GiB") && stderr.contains("limit") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !out.join("linear").exists(),
        "a refused run wrote its folder"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The memory estimate of the image settings: N + samples images of 3·size² f64.
#[test]
fn image_settings_estimate_their_memory() {
    let source: DataSource = "calpha".parse().unwrap();
    let mut settings = Settings::quick(&source);
    settings.n = 10;
    settings.samples = 6;
    assert_eq!(
        settings.minimum_bytes(),
        Some(16 * 3 * settings.size as u128 * settings.size as u128 * 8)
    );
    settings.max_memory_gib = Some(1e-9);
    assert!(settings.validate().unwrap_err().to_string().contains("GiB"));
}

/// Issue 22 item 6: `exp bottleneck` killed (SIGKILL) after its first DDIM step and run again
/// on the same folder ends with the same metrics and samples, bit for bit, as an uninterrupted
/// run — its metrics cover every step, not only those of the last process; a rerun of a
/// completed run keeps them; and while a run is active a second run on its folder is refused.
#[test]
fn killed_bottleneck_run_resumes_to_the_uninterrupted_result() {
    // one epoch per network on N = 32 images, 8 samples per model: the run is still 30
    // trained networks long (10 steps × 3 widths), the kill lands after the first, and the
    // resume path is the same as at four epochs and N = 64
    let run = |out: &Path| {
        exp_command(
            &[
                "bottleneck",
                "--quick",
                "--epochs",
                "1",
                "--n",
                "32",
                "--samples",
                "8",
                "--no-progress",
            ],
            out,
        )
    };
    let whole = run_folder("resume-whole");
    run_to_success(run(&whole));

    let killed = run_folder("resume-killed");
    let mut child = run(&killed).spawn().unwrap();
    // the checkpoint folders bottleneck/checkpoint-h<h>/ get progress.json after a step
    let first_step_done = || {
        std::fs::read_dir(killed.join("bottleneck"))
            .ok()
            .is_some_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().join("progress.json").is_file())
            })
    };
    let started = std::time::Instant::now();
    while !first_step_done() {
        assert!(
            started.elapsed().as_secs() < 600,
            "no checkpoint after 10 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = run(&killed).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        second.status.code() == Some(2) && stderr.contains("in use"),
        "a second writer was not refused: {stderr}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..2 {
        // resume, then rerun the completed run
        run_to_success(run(&killed));
        let metrics = |dir: &Path| -> serde_json::Value {
            serde_json::from_str(
                &std::fs::read_to_string(dir.join("bottleneck/metrics.json")).unwrap(),
            )
            .unwrap()
        };
        let (a, b) = (metrics(&whole), metrics(&killed));
        for h in 0..a["widths"].as_array().unwrap().len() {
            let w = |m: &serde_json::Value, key: &str| m["widths"][h][key].clone();
            assert_eq!(w(&a, "final_losses"), w(&b, "final_losses"), "width {h}");
            assert_eq!(w(&a, "training")["flops"], w(&b, "training")["flops"]);
        }
        for entry in std::fs::read_dir(whole.join("bottleneck"))
            .unwrap()
            .flatten()
        {
            let name = entry.file_name();
            if entry.path().extension().is_some_and(|e| e == "npy") {
                assert_eq!(
                    std::fs::read(entry.path()).unwrap(),
                    std::fs::read(killed.join("bottleneck").join(&name)).unwrap(),
                    "{name:?} differs"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&whole);
    let _ = std::fs::remove_dir_all(&killed);
}

/// Every entry of `images::EXPERIMENTS` is an `exp` subcommand whose help is the entry's own
/// `about` line (the command line is made from the table, so a new experiment is its file and
/// one line there), and `exp all` exists.
#[test]
fn every_image_experiment_is_an_exp_subcommand() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let help = |name: &str| {
        let out = std::process::Command::new(exe)
            .args(["exp", name, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "exp {name} --help failed");
        String::from_utf8(out.stdout).unwrap()
    };
    for e in images::EXPERIMENTS {
        let text = help(e.name());
        assert!(text.contains(e.about()), "exp {}: {text}", e.name());
        assert!(
            text.contains("--quick") && text.contains("--max-memory"),
            "{text}"
        );
    }
    assert!(help("all").contains("Every image experiment"));
}

/// `--sizes` and `--architectures` choose `exp generalization`'s sweep (book Fig. 3.10's is
/// `--sizes 1000,5000,10000,50000 --architectures bottleneck`); any other experiment refuses
/// them with exit code 2 and a message naming the option, before it loads data or an adapter.
#[test]
fn sweep_options_belong_to_exp_generalization() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    for option in [["--sizes", "1,2"], ["--architectures", "bottleneck"]] {
        let out = std::process::Command::new(exe)
            .args(["exp", "linear", "--quick", "--no-progress"])
            .args(option)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option:?}: {stderr}");
        assert!(
            stderr.contains(option[0]) && stderr.contains("only exp generalization"),
            "{stderr}"
        );
    }
}

/// Issue 22: `exp bottleneck-2d` killed (SIGKILL) after the h = 1 network's first checkpoint
/// (step 5 of 20, with `--checkpoint-every 5`) and run again on the same folder ends with the
/// same checkpoints (weights, Adam state, every step's loss), byte for byte, and the same
/// report numbers as an uninterrupted run.
#[test]
fn killed_bottleneck_2d_run_resumes_to_the_uninterrupted_result() {
    let run = |out: &Path| {
        exp_command(
            &[
                "bottleneck-2d",
                "--steps",
                "20",
                "--checkpoint-every",
                "5",
                "--samples",
                "100",
            ],
            out,
        )
    };
    let whole = run_folder("resume-2d-whole");
    run_to_success(run(&whole));
    let killed = run_folder("resume-2d-killed");
    let mut child = run(&killed).spawn().unwrap();
    let first_checkpoint = killed.join("bottleneck_2d_h1.ckpt.json");
    let started = std::time::Instant::now();
    while !first_checkpoint.is_file() {
        assert!(
            started.elapsed().as_secs() < 600,
            "no checkpoint after 10 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("bottleneck_2d.json").exists(),
        "the run finished before it was killed"
    );
    run_to_success(run(&killed));
    for h in [1, 2] {
        let name = format!("bottleneck_2d_h{h}.ckpt.json");
        assert!(
            std::fs::read(whole.join(&name)).unwrap() == std::fs::read(killed.join(&name)).unwrap(),
            "{name} differs"
        );
    }
    let report = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("bottleneck_2d.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (report(&whole), report(&killed));
    for h in 0..2 {
        for key in [
            "final_loss",
            "intrinsic_dimension",
            "ks_ratio",
            "max_curve_distance",
        ] {
            assert_eq!(a["widths"][h][key], b["widths"][h][key], "width {h}: {key}");
        }
    }
    let _ = std::fs::remove_dir_all(&whole);
    let _ = std::fs::remove_dir_all(&killed);
}

/// Issue 22 item 8: a `.npy` data set of 4-channel images is refused when it is loaded, naming
/// the channels and what is accepted — not after the models were fitted (when the figure
/// writer met it).
#[test]
fn four_channel_npy_is_refused_at_load() {
    let dir = run_folder("four-channels");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rgba.npy");
    let data: Vec<f32> = (0..64 * 4 * 16 * 16)
        .map(|i| ((i % 7) as f32) / 7.0)
        .collect();
    npy::write_f32(&file, &[64, 4, 16, 16], &data).unwrap();
    let source = format!("npy:{}", file.display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
        .args([
            "exp",
            "linear",
            &source,
            "--quick",
            "--no-progress",
            "--out",
        ])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("4 channels") && stderr.contains("1 (grey) or 3 (RGB)"),
        "{stderr}"
    );
    assert!(!dir.join("run/linear/metrics.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `exp generalization --shard` splits its (architecture, N) sweep and `merge` joins it: two
/// shards (one by `i/n`, one as a Slurm array task through `--shard env`) merged equal the
/// unsharded run configuration for configuration (every number but the wall times; the sweep
/// cut to N = 1, 4 with `--sizes`); a rerun shard keeps one line per key; a merge missing a
/// shard names the configurations no shard ran; and the experiments without a sweep refuse
/// `--shard`.
#[test]
fn generalization_shards_merge_to_the_unsharded_sweep() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let (whole, sharded, merged) = (
        run_folder("gen-whole"),
        run_folder("gen-sharded"),
        run_folder("gen-merged"),
    );
    run_to_success(exp_command(
        &[
            "generalization",
            "--quick",
            "--n",
            "32",
            "--sizes",
            "1,4",
            "--no-progress",
        ],
        &whole,
    ));
    run_to_success(exp_command(
        &[
            "generalization",
            "--quick",
            "--n",
            "32",
            "--sizes",
            "1,4",
            "--no-progress",
            "--shard",
            "0/2",
        ],
        &sharded,
    ));
    let mut slurm = exp_command(
        &[
            "generalization",
            "--quick",
            "--n",
            "32",
            "--sizes",
            "1,4",
            "--no-progress",
            "--shard",
            "env",
        ],
        &sharded,
    );
    slurm
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2");
    run_to_success(slurm);
    let shards = sharded.join("generalization/shards");
    let files = [
        shards.join("shard-0-of-2.jsonl"),
        shards.join("shard-1-of-2.jsonl"),
    ];
    let merge = |files: &[PathBuf]| {
        std::process::Command::new(exe)
            .arg("merge")
            .args(files)
            .arg("--out")
            .arg(&merged)
            .output()
            .unwrap()
    };
    // the first shard twice: a rerun's lines are the same keys, kept once
    let done = merge(&[files[0].clone(), files[1].clone(), files[0].clone()]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(merged.join("generalization.png").is_file());
    let results = |path: PathBuf| -> Vec<serde_json::Value> {
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        metrics["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("timing");
                r
            })
            .collect()
    };
    let joined = results(merged.join("metrics.json"));
    assert_eq!(joined, results(whole.join("generalization/metrics.json")));
    assert_eq!(
        joined.len(),
        3 * 2,
        "3 architectures × N = 1, 4 (--sizes 1,4)"
    );

    let half = merge(&files[..1]);
    assert_eq!(half.status.code(), Some(2));
    let message = String::from_utf8_lossy(&half.stderr);
    assert!(
        message.contains("not whole") && message.contains("N="),
        "{message}"
    );

    let refused = exp_command(&["linear", "--quick", "--shard", "0/2"], &sharded)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only exp generalization"));
    for dir in [whole, sharded, merged] {
        std::fs::remove_dir_all(dir).ok();
    }
}

/// The width and degree sweeps shard as generalization's does: `exp bottleneck --shard` (its
/// widths h) and `exp polynomial --shard` ((map, degree) pairs) in two shards, joined by `merge`, equal the unsharded run's metrics configuration for
/// configuration (every number but the wall times); a merge of one shard names what no shard
/// ran. The runs read a `--config` of the `--quick` settings cut to N = 16, 4 samples per
/// model, one epoch per MLP, widths h = 16, 8 and degrees k = 3, 9: two widths and four
/// (map, degree) pairs, so each of the two shards still runs at least one configuration, on
/// the same code paths as the paper's sweeps.
#[test]
fn width_and_degree_shards_merge_to_the_unsharded_sweep() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let config_dir = run_folder("sweep-shard-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("config.json");
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 }).with_n(16);
    settings.samples = 4;
    settings.columns = 4;
    settings.epochs = 1;
    settings.hidden = vec![16, 8];
    settings.degrees = vec![3, 9];
    std::fs::write(&config, serde_json::to_string(&settings).unwrap()).unwrap();
    let config = config.to_str().unwrap();
    for (experiment, list) in [("bottleneck", "widths"), ("polynomial", "models")] {
        let (whole, sharded, merged) = (
            run_folder(&format!("{experiment}-whole")),
            run_folder(&format!("{experiment}-sharded")),
            run_folder(&format!("{experiment}-merged")),
        );
        let args = |shard: Option<&'static str>| {
            let mut args = vec![experiment, "--config", config, "--no-progress"];
            if let Some(s) = shard {
                args.extend_from_slice(&["--shard", s]);
            }
            args
        };
        run_to_success(exp_command(&args(None), &whole));
        run_to_success(exp_command(&args(Some("0/2")), &sharded));
        run_to_success(exp_command(&args(Some("1/2")), &sharded));
        let shards = sharded.join(format!("{experiment}/shards"));
        let files = [
            shards.join("shard-0-of-2.jsonl"),
            shards.join("shard-1-of-2.jsonl"),
        ];
        let merge = |files: &[PathBuf]| {
            std::process::Command::new(exe)
                .arg("merge")
                .args(files)
                .arg("--out")
                .arg(&merged)
                .output()
                .unwrap()
        };
        let done = merge(&files);
        assert!(
            done.status.success(),
            "{experiment}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let without_times = |path: PathBuf| -> Vec<serde_json::Value> {
            let metrics: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            metrics[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    let object = r.as_object_mut().unwrap();
                    object.remove("timing");
                    if let Some(training) = object.get_mut("training") {
                        let training = training.as_object_mut().unwrap();
                        training.remove("seconds");
                        training.remove("tflops_per_second");
                    }
                    r
                })
                .collect()
        };
        let joined = without_times(merged.join("metrics.json"));
        assert_eq!(
            joined,
            without_times(whole.join(format!("{experiment}/metrics.json"))),
            "{experiment}"
        );
        // 2 widths; 2 feature maps × 2 degrees
        assert_eq!(joined.len(), if experiment == "bottleneck" { 2 } else { 4 });
        let half = merge(&files[1..]);
        assert_eq!(half.status.code(), Some(2), "{experiment}");
        let message = String::from_utf8_lossy(&half.stderr);
        assert!(message.contains("not whole"), "{experiment}: {message}");
        for dir in [whole, sharded, merged] {
            std::fs::remove_dir_all(dir).ok();
        }
    }
    std::fs::remove_dir_all(config_dir).ok();
}

/// `exp unet` (Levine–Weiss Fig. 1) resumes from its checkpoints: a run of 1 epoch per variant
/// continued to 2 epochs on the same folder ends with the same losses, training FLOPs and
/// samples, bit for bit, as a run of 2 epochs from scratch (the sampling checkpoints of the
/// 1-epoch models are not reused); every variant is in the metrics with its memorization
/// statistics, and the figure is written. N = 8, B = 4 (two batches per epoch), 3 DDIM steps,
/// 2 samples (N = 16, B = 8 and 4 samples before: twice the work on the same code paths).
#[test]
fn unet_run_continued_from_its_checkpoints_equals_an_uninterrupted_run() {
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 }).with_n(8);
    settings.batch = 4;
    settings.steps = 3;
    settings.samples = 2;
    settings.columns = 2;
    let run = |out: &Path, epochs: usize| {
        let mut s = settings.clone();
        s.unet.epochs = epochs;
        images::run(gpu(), s, "unet", out, false).unwrap()
    };
    let whole = run_folder("unet-whole");
    run(&whole, 2);
    let continued = run_folder("unet-continued");
    run(&continued, 1);
    run(&continued, 2);
    let metrics = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("unet/metrics.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (metrics(&whole), metrics(&continued));
    let variants = a["variants"].as_array().unwrap();
    let labels: Vec<&str> = variants
        .iter()
        .map(|v| v["variant"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["pool4", "pool3", "pool2", "pool3-small", "pool3-circular"]
    );
    for (i, v) in variants.iter().enumerate() {
        assert_eq!(
            v["final_loss"], b["variants"][i]["final_loss"],
            "{}",
            labels[i]
        );
        assert_eq!(
            v["training"]["flops"],
            b["variants"][i]["training"]["flops"]
        );
        assert!(v["memorization"]["mem_ratio"].is_number(), "{v}");
        assert!(v["memorization"]["median_max_cosine"].is_number(), "{v}");
    }
    assert!(whole.join("unet/fig1_unet.png").is_file());
    for i in 0..5 {
        let name = format!("unet/fig1_unet-{i}.npy");
        assert_eq!(
            std::fs::read(whole.join(&name)).unwrap(),
            std::fs::read(continued.join(&name)).unwrap(),
            "{name}"
        );
    }
}

/// `exp generalization --arch unet` (Kadkhodaie et al. Fig. 2 with a conv net): the standard
/// U-Net of `exp unet` trained on each disjoint half (N = 1 and 4, one epoch each: a half
/// smaller than a batch is one full batch) and sampled from the shared noise; every sample pair
/// is compared and each row has its histograms' values.
#[test]
fn generalization_unet_trains_on_each_half() {
    let out = run_folder("generalization-unet");
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 });
    settings.generalization_architectures = vec!["unet".into()];
    settings.generalization_sizes = vec![1, 4];
    settings.unet.epochs = 1;
    settings.steps = 4;
    settings.samples = 4;
    settings.columns = 4;
    let summary = images::run(gpu(), settings, "generalization", &out, false).unwrap();
    let results = summary.metrics["generalization"]["results"]
        .as_array()
        .unwrap();
    assert_eq!(results.len(), 2);
    for (r, n) in results.iter().zip([1, 4]) {
        assert_eq!(r["architecture"], "unet");
        assert_eq!(r["n"].as_u64(), Some(n));
        assert_eq!(r["compared"].as_u64(), Some(4), "{r}");
        assert_eq!(r["between_models"].as_array().unwrap().len(), 4);
        assert!(r["between_models_median"].as_f64().unwrap().abs() <= 1.0);
    }
    assert!(out.join("generalization/generalization.png").is_file());
    std::fs::remove_dir_all(&out).ok();
}

/// Issue 23: `exp polynomial --patch --quick` (Levine–Weiss Fig. 8: the patch polynomial
/// denoiser, patch side 7 → 3 over the 10 DDIM steps of 16×16 images; 8 samples instead of 16
/// and N = 32 instead of 64 to halve the per-pixel predictions and the fits) runs end to end through the command line and writes
/// both Fig. 8 grids, their samples and the metrics: one result
/// per (map, degree), the patch schedule shrinking from the largest side at ℓ = L to the
/// smallest at ℓ = 1, and the degree-3 polynomial's samples finite (none escaped).
#[test]
fn quick_patch_polynomial_writes_figure_8_and_its_metrics() {
    let out = run_folder("patch-polynomial");
    run_to_success(exp_command(
        &[
            "polynomial",
            "--patch",
            "--quick",
            "--n",
            "32",
            "--samples",
            "8",
            "--no-progress",
        ],
        &out,
    ));
    for file in [
        "config.json",
        "metrics.json",
        "polynomial/metrics.json",
        "polynomial/fig8_patch_polynomial.png",
        "polynomial/fig8_patch_max_normalized.png",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let config: Settings =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let patch = config.patch_polynomial.clone().expect("--patch sets them");
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("polynomial/metrics.json")).unwrap(),
    )
    .unwrap();
    let models = metrics["models"].as_array().unwrap();
    assert_eq!(models.len(), patch.maps.len() * config.degrees.len());
    let sides: Vec<u64> = metrics["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["side"].as_u64().unwrap())
        .collect();
    assert_eq!(sides.len(), config.steps);
    assert_eq!(sides.first(), Some(&(patch.largest as u64)), "{sides:?}");
    assert_eq!(sides.last(), Some(&(patch.smallest as u64)), "{sides:?}");
    assert!(sides.windows(2).all(|w| w[0] >= w[1]), "{sides:?}");
    let low = &models[0];
    assert_eq!(low["map"], "Polynomial");
    assert_eq!(low["degree"].as_u64(), Some(config.degrees[0] as u64));
    assert_eq!(low["escaped"].as_u64(), Some(0), "{low}");
    assert!(low["memorization"]["mem_ratio"].is_f64(), "{low}");
    let samples = npy::read(&out.join("polynomial/fig8_patch_polynomial-0.npy")).unwrap();
    assert_eq!(samples.shape[0], config.samples);
    assert!(samples.data.iter().all(|v| v.is_finite()));
    std::fs::remove_dir_all(&out).ok();
}

/// `--patch` belongs to `exp polynomial`: any other experiment refuses it with exit code 2 and
/// a message naming the option, before it loads data or an adapter.
#[test]
fn patch_option_belongs_to_exp_polynomial() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
        .args(["exp", "linear", "--quick", "--no-progress", "--patch"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--patch") && stderr.contains("only exp polynomial"),
        "{stderr}"
    );
    // Bad patch settings are typed errors naming the field, before any data or adapter.
    use diffusion_theorems::experiments::images::polynomial::patch::PatchSettings;
    let quick = Settings::quick(&DataSource::CAlpha { alpha: 2.0 });
    let cases: [(&str, PatchSettings, bool); 5] = [
        (
            "largest",
            PatchSettings {
                largest: 8,
                ..PatchSettings::quick()
            },
            false,
        ),
        (
            "smallest",
            PatchSettings {
                smallest: 11,
                ..PatchSettings::quick()
            },
            false,
        ),
        (
            "largest",
            PatchSettings {
                largest: 33,
                ..PatchSettings::quick()
            },
            false,
        ),
        (
            "pixels_per_image",
            PatchSettings {
                pixels_per_image: 0,
                ..PatchSettings::quick()
            },
            false,
        ),
        ("export_models", PatchSettings::quick(), true),
    ];
    for (field, patch, export_models) in cases {
        let settings = Settings {
            patch_polynomial: Some(patch),
            export_models,
            ..quick.clone()
        };
        let e = settings.validate().err().map(|e| e.to_string());
        assert!(
            e.as_ref().is_some_and(|e| e.contains(field)),
            "{field}: {e:?}"
        );
    }
}

/// The patch read-out under circular padding is translation-equivariant: every pixel's x̂₀ is
/// the same function (one read-out A_ℓ, one projection R_ℓ) of its wrapped-around patch, and a
/// cyclic shift of y moves every patch, unchanged, to the shifted pixel. So
/// `x̂₀(shift y) = shift x̂₀(y)` bit for bit: the patch rows are exact copies, the GPU products
/// compute each output row from its own input row in the same order wherever the row sits,
/// and the features are computed row by row on the CPU. Checked at the largest patch (ℓ = L,
/// P = 7 on 16×16, shift (3, 5)) and the smallest (ℓ = 1, P = 3). Positive control: the same
/// model with zero padding is not equivariant (a patch crossing the edge reads zeros on one
/// side and image values on the other).
#[test]
fn circular_patch_polynomial_commutes_with_cyclic_shifts() {
    use diffusion_theorems::experiments::images::polynomial::patch::{
        PatchPolynomialPredictor, PatchSettings,
    };
    use diffusion_theorems::gpu::conv::Padding;
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 }).with_n(32);
    settings.copies = 2;
    settings.samples = 4;
    settings.columns = 4;
    let context = images::Context::new(gpu(), settings.clone()).unwrap();
    let shape = context.data.shape;
    let (h_n, w_n) = (shape.height, shape.width);
    let shift = |x: &Mat| {
        Mat::from_fn(x.nrows(), x.ncols(), |i, j| {
            let (c, h, w) = (j / (h_n * w_n), (j / w_n) % h_n, j % w_n);
            let (h0, w0) = ((h + h_n - 3) % h_n, (w + w_n - 5) % w_n);
            x[(i, c * h_n * w_n + h0 * w_n + w0)]
        })
    };
    let schedule = images::paper_schedule(settings.steps).unwrap();
    let data = GpuMat::upload(gpu(), "images", &context.data.images).unwrap();
    let x = context.noise.clone();
    let largest_difference = |padding: Padding, step: usize| {
        let patch = PatchSettings {
            padding,
            ..PatchSettings::quick()
        };
        let mut predictor =
            PatchPolynomialPredictor::new(&context, &data, &patch, 3, FeatureMap::Polynomial)
                .unwrap();
        let direct = shift(&predictor.predict(&schedule, step, &x).unwrap());
        let shifted = predictor.predict(&schedule, step, &shift(&x)).unwrap();
        let cells = (0..x.nrows()).flat_map(|i| (0..x.ncols()).map(move |j| (i, j)));
        assert!(cells.clone().all(|(i, j)| direct[(i, j)].is_finite()));
        cells
            .map(|(i, j)| (direct[(i, j)] - shifted[(i, j)]).abs())
            .fold(0.0, f64::max)
    };
    for step in [settings.steps, 1] {
        assert_eq!(
            largest_difference(Padding::Circular, step),
            0.0,
            "ℓ = {step}"
        );
        let control = largest_difference(Padding::Zero, step);
        assert!(
            control > 1e-3,
            "ℓ = {step}: zero padding moved x̂₀ by {control:e}"
        );
    }
}

/// `exp els` alone on tiny settings (N = 8 images of 16×16, 3 DDIM steps, 2 samples, a bank
/// capped at 512 of the 2048 patches, one U-Net trained 1 epoch): the metrics hold the patch
/// schedule (3 → 5 → 5 for P 5 → 3 over 3 steps: ℓ = 2 interpolates to 4, whose nearest odd
/// sides tie and round up), the capped bank, and per noise level an r² for every patch side
/// with the best side among them; the figure and the U-Net's checkpoint (in the sibling
/// `unet/` folder, shared with `exp unet`) are written.
#[test]
fn els_run_reports_r2_per_level_and_writes_its_figure() {
    use diffusion_theorems::experiments::images::els;
    let mut settings = Settings::quick(&DataSource::CAlpha { alpha: 2.0 }).with_n(8);
    settings.batch = 8;
    settings.steps = 3;
    settings.samples = 2;
    settings.columns = 2;
    settings.unet.epochs = 1;
    settings.els = els::ElsSettings {
        samples: 2,
        patch_max: 5,
        patch_min: 3,
        max_patches: Some(512),
        r2_levels: 2,
        r2_images: 2,
        r2_patches: vec![3, 7],
        networks: vec!["pool3-circular".into()],
    };
    let out = run_folder("els");
    let summary = images::run(gpu(), settings.clone(), "els", &out, false).unwrap();
    let m = &summary.metrics["els"];
    assert_eq!(m["patch_schedule"], serde_json::json!([3, 5, 5]));
    assert_eq!(m["bank_patches"].as_u64(), Some(512));
    assert_eq!(m["all_patches"].as_u64(), Some(8 * 256));
    assert_eq!(m["subsampled"].as_bool(), Some(true));
    let network = &m["networks"][0];
    assert_eq!(network["variant"]["label"].as_str(), Some("pool3-circular"));
    let levels = network["levels"].as_array().unwrap();
    assert_eq!(
        levels
            .iter()
            .map(|l| l["step"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3]
    );
    for level in levels {
        let sides: Vec<u64> = level["by_patch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["patch"].as_u64().unwrap())
            .collect();
        let schedule = level["schedule_patch"].as_u64().unwrap();
        let mut expected = vec![3, 7, schedule];
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(sides, expected, "{level}");
        let best = level["best_r2"].as_f64().unwrap();
        for r in level["by_patch"].as_array().unwrap() {
            let r2 = r["r2"].as_f64().unwrap();
            assert!(r2 <= 1.0 && r2 <= best, "{level}");
        }
        assert!(level["schedule_r2"].is_f64(), "{level}");
        assert!(level["clean_r2"].as_f64().unwrap() <= 1.0, "{level}");
    }
    // the ELS against the clean images: at the lowest level (σ ≈ 0.16 on pixels in [−1, 1])
    // a P = 3 patch posterior mean is closer to x than the mean pixel, r² > 0 (a sanity check
    // of the measured behaviour, not a derived bound: `exp els --quick` measures 0.87 there)
    let els_levels = m["els_levels"].as_array().unwrap();
    assert_eq!(els_levels.len(), 2);
    let lowest = els_levels[0]["clean_r2"][0]["r2"].as_f64().unwrap();
    assert!(lowest > 0.0 && lowest <= 1.0, "{}", els_levels[0]);
    assert!(network["median_best_r2"].is_f64(), "{network}");
    assert!(m["memorization"]["mem_ratio"].is_number(), "{m}");
    assert!(out.join("els/els_samples.png").is_file());
    assert!(out
        .join("unet/checkpoint-unet-pool3-circular.json")
        .is_file());
    // an even patch side is a typed error naming the setting
    let mut bad = settings;
    bad.els.patch_max = 4;
    let e = images::run(gpu(), bad, "els", &run_folder("els-bad"), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("els.patch_max") && e.contains('4'), "{e}");
    std::fs::remove_dir_all(&out).ok();
}

/// Grey 8×8 images in [−1, 1] (Philox), N = 3, two noisy queries.
fn grey_els_case() -> (Mat, Mat) {
    use diffusion_theorems::rng::Rng;
    let mut rng = Rng::new(7, 0);
    let images = Mat::from_fn(3, 64, |_, _| 2.0 * rng.uniform() - 1.0);
    let y = Mat::from_fn(2, 64, |i, j| images[(i, j)] + 0.5 * rng.normal());
    (images, y)
}

/// The GPU ELS denoiser (`exp els`) against the f64 ELS of `theorems::locality` (index
/// arithmetic on the whole images, circular padding, every patch of every image) on grey 8×8
/// images, P ∈ {3, 5, 7}, σ ∈ {0.3, 1}, with the bank split into blocks of 50 patches and the
/// queries into tiles of 40 pixels: within the derived bound (the kernel's f32 bound from
/// `els_reference` plus the f64 route's own, `locality::softmax_average_bound`). Power: the
/// f64 ELS at the patch side P + 2 lies beyond the bound somewhere.
#[test]
fn gpu_els_matches_the_f64_els_of_grey_images() {
    use diffusion_theorems::experiments::images::els::{
        bank_locations, els_reference, GpuPatchDenoiser,
    };
    use diffusion_theorems::gpu::conv::Padding;
    use diffusion_theorems::io::grid::ImageShape;
    use diffusion_theorems::theorems::locality::{els_from_images, Locality};
    let (images, y) = grey_els_case();
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let rows = |m: &Mat| -> Vec<Vec<f64>> {
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect())
            .collect()
    };
    let all = bank_locations(3, 64, None, 0);
    assert_eq!(all.len(), 192);
    for patch in [3, 5, 7] {
        let els =
            GpuPatchDenoiser::with_tiling(gpu(), &images, shape, patch, &all, 50, 40).unwrap();
        for sigma in [0.3, 1.0] {
            let got = els.denoise(&y, sigma).unwrap();
            let (_, bound) =
                els_reference(&images, shape, patch, &all, &y, sigma, els.block_rows()).unwrap();
            let mut beyond_at_wrong_side = false;
            for (i, query) in rows(&y).iter().enumerate() {
                let (want, own) = els_from_images(
                    &rows(&images),
                    8,
                    patch,
                    Padding::Circular,
                    Locality::Equivariant,
                    query,
                    sigma,
                )
                .unwrap();
                for p in 0..64 {
                    let tol = bound[(i, p)] + own[p];
                    assert!(
                        (got[(i, p)] - want[p]).abs() <= tol,
                        "P {patch} σ {sigma} query {i} pixel {p}: {} vs {} (bound {tol:.2e})",
                        got[(i, p)],
                        want[p]
                    );
                    // meaningful: below 1% of max|x| ≤ 1 (as in gpu::empirical's parity test)
                    assert!(tol < 1e-2, "vacuous bound {tol}");
                }
                if patch < 7 {
                    let (wrong, _) = els_from_images(
                        &rows(&images),
                        8,
                        patch + 2,
                        Padding::Circular,
                        Locality::Equivariant,
                        query,
                        sigma,
                    )
                    .unwrap();
                    beyond_at_wrong_side |=
                        (0..64).any(|p| (got[(i, p)] - wrong[p]).abs() > bound[(i, p)] + own[p]);
                }
            }
            assert!(patch == 7 || beyond_at_wrong_side, "P {patch} σ {sigma}");
        }
    }
}

/// Three channels: with every channel a copy of the grey image, `‖Δ‖²` triples, so the
/// three-channel ELS at σ is the grey ELS at σ/√3 on every channel — checked against the f64
/// grey ELS of `theorems::locality` within the derived bound. And a subsampled bank (100 of the
/// 192 patches, `bank_locations`' seeded draw, distinct, in range): the GPU ELS within the
/// derived bound of `els_reference` on the same locations.
#[test]
fn gpu_els_of_three_channels_and_of_a_subsampled_bank_match_f64() {
    use diffusion_theorems::experiments::images::els::{
        bank_locations, els_reference, GpuPatchDenoiser,
    };
    use diffusion_theorems::gpu::conv::Padding;
    use diffusion_theorems::io::grid::ImageShape;
    use diffusion_theorems::theorems::locality::{els_from_images, Locality};
    let (grey, grey_y) = grey_els_case();
    let rgb = |m: &Mat| Mat::from_fn(m.nrows(), 3 * 64, |i, j| m[(i, j % 64)]);
    let (images, y) = (rgb(&grey), rgb(&grey_y));
    let shape = ImageShape::rgb_square(8);
    let all = bank_locations(3, 64, None, 0);
    let (patch, sigma) = (5, 0.8);
    let els = GpuPatchDenoiser::with_tiling(gpu(), &images, shape, patch, &all, 64, 64).unwrap();
    let got = els.denoise(&y, sigma).unwrap();
    let (_, bound) =
        els_reference(&images, shape, patch, &all, &y, sigma, els.block_rows()).unwrap();
    let grey_rows: Vec<Vec<f64>> = (0..3)
        .map(|i| (0..64).map(|j| grey[(i, j)]).collect())
        .collect();
    for i in 0..2 {
        let query: Vec<f64> = (0..64).map(|j| grey_y[(i, j)]).collect();
        let (want, own) = els_from_images(
            &grey_rows,
            8,
            patch,
            Padding::Circular,
            Locality::Equivariant,
            &query,
            sigma / 3f64.sqrt(),
        )
        .unwrap();
        for j in 0..3 * 64 {
            let tol = bound[(i, j)] + own[j % 64];
            assert!(
                (got[(i, j)] - want[j % 64]).abs() <= tol,
                "query {i} entry {j}: {} vs {} (bound {tol:.2e})",
                got[(i, j)],
                want[j % 64]
            );
        }
    }
    let some = bank_locations(3, 64, Some(100), 11);
    assert_eq!(some.len(), 100);
    assert!(some.windows(2).all(|w| w[0] < w[1]));
    assert!(some.iter().all(|&(i, p)| i < 3 && p < 64));
    let els = GpuPatchDenoiser::with_tiling(gpu(), &images, shape, 3, &some, 30, 50).unwrap();
    let got = els.denoise(&y, 0.5).unwrap();
    let (want, bound) = els_reference(&images, shape, 3, &some, &y, 0.5, els.block_rows()).unwrap();
    for i in 0..2 {
        for j in 0..3 * 64 {
            assert!(
                (got[(i, j)] - want[(i, j)]).abs() <= bound[(i, j)],
                "subsampled bank: query {i} entry {j}: {} vs {} (bound {:.2e})",
                got[(i, j)],
                want[(i, j)],
                bound[(i, j)]
            );
        }
    }
}
