//! GPU kernels against their f64 CPU references, on random inputs, with poisoned outputs
//! (every output buffer starts as NaN / u32::MAX, so an unwritten element fails). Run a second
//! time in CI with WGPU_BACKEND=gl so both software backends stay working.

mod common;

use common::gpu;
use diffusion_theorems::gpu::gemm::{GemmKernel, GemmPlan, GemmTiling};
use diffusion_theorems::gpu::{gmm, monte_carlo, philox, shaders};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::{word_to_uniform, PhiloxStream, Rng};
use diffusion_theorems::targets::random_gmm;

/// Every file in gpu/ is part of some kernel, and every kernel parses and validates with naga
/// (with no optional capabilities, as requested from the device; the kernels of
/// `shaders::OPTIONAL` with the capabilities of their features) and the optional ones also
/// translate to SPIR-V — on the CPU, no adapter needed.
#[test]
fn every_wgsl_file_parses_and_validates_with_naga() {
    use naga::valid::Capabilities;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gpu");
    let capabilities = |features: wgpu::Features| {
        let mut caps = Capabilities::empty();
        for (feature, cap) in [
            (
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
                Capabilities::COOPERATIVE_MATRIX,
            ),
            (wgpu::Features::SHADER_F16, Capabilities::SHADER_FLOAT16),
            (wgpu::Features::SUBGROUP, Capabilities::SUBGROUP),
        ] {
            if features.contains(feature) {
                caps |= cap;
            }
        }
        caps
    };
    let kernels: Vec<(shaders::Shader, Capabilities)> = shaders::ALL
        .iter()
        .map(|s| (*s, Capabilities::empty()))
        .chain(
            shaders::OPTIONAL
                .iter()
                .map(|(s, features)| (*s, capabilities(*features))),
        )
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".wgsl") {
            assert!(
                kernels
                    .iter()
                    .any(|(s, _)| s.sources.iter().any(|(f, _)| *f == name)),
                "gpu/{name} belongs to no kernel in src/gpu/shaders.rs"
            );
        }
    }
    for (shader, caps) in kernels {
        let module = naga::front::wgsl::parse_str(&shader.source()).unwrap_or_else(|e| {
            panic!(
                "{}: {}",
                shader.entry_point,
                e.emit_to_string(&shader.source())
            )
        });
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {e:?}", shader.entry_point));
        assert!(
            module
                .entry_points
                .iter()
                .any(|e| e.name == shader.entry_point),
            "{} has no entry point of that name",
            shader.entry_point
        );
        if !caps.is_empty() {
            naga::back::spv::write_vec(&module, &info, &Default::default(), None)
                .unwrap_or_else(|e| panic!("{} to SPIR-V: {e:?}", shader.entry_point));
        }
    }
}

/// The tensor-core GEMM (operands rounded to f16, 16×16×16 cooperative matrices, f32
/// accumulation) within `gemm_tensor_core_reference`'s derived bound, for every layout and
/// epilogue, alone and split along k — where the adapter offers cooperative matrices (an H100).
/// There it must also differ from the f64 product by more than the f32 kernels' bound somewhere,
/// which shows that the operands really were rounded to f16. Elsewhere (llvmpipe in CI), asking
/// for the kernel is a typed error naming the adapter, and the test says it ran no kernel.
#[test]
fn gemm_on_tensor_cores_is_within_the_f16_bound() {
    use diffusion_theorems::error::Error;
    use diffusion_theorems::gpu::gemm::{gemm_fused_planned, gemm_reference, GpuMat, Product};
    let gpu = gpu();
    let tensor_cores = GemmKernel::TensorCoresF16;
    if !gpu.has_tensor_cores() {
        let a = GpuMat::upload(gpu, "A", &Mat::from_fn(3, 4, |i, j| (i + j) as f64)).unwrap();
        let c = GpuMat::poisoned(gpu, "C", 3, 3).unwrap();
        let refused = Product::new((&a, false), (&a, true), &c)
            .with_kernel(tensor_cores)
            .prepare(gpu);
        match refused {
            Err(Error::GpuLimit(message)) => assert!(
                message.contains("TensorCoresF16") && message.contains(&gpu.backend_name()),
                "{message}"
            ),
            other => panic!(
                "expected a GpuLimit error, got {:?}",
                other.map(|p| p.plan())
            ),
        }
        eprintln!(
            "{} has no cooperative f16 matrices: the tensor-core kernel was not run",
            gpu.backend_name()
        );
        return;
    }
    let mut rng = Rng::new(0x7C0F, 0);
    for ((m, k, n), splits) in [((130, 100, 67), None), ((129, 1000, 131), Some(3))] {
        let expect = GemmPlan {
            kernel: tensor_cores,
            splits: splits.unwrap_or(1),
        };
        check_gemm_epilogues(
            &mut rng,
            (m, k, n),
            Route::Planned(Some(tensor_cores), splits),
            Some(expect),
        );
    }
    let a = Mat::from_fn(96, 200, |_, _| rng.normal());
    let b = Mat::from_fn(200, 80, |_, _| rng.normal());
    let (exact, f32_bound) = gemm_reference(&a, false, &b, false, 1.0, 0.0, None).unwrap();
    let p = diffusion_theorems::gpu::gemm::HostProduct::new((&a, false), (&b, false));
    let (out, _) = gemm_fused_planned(gpu, &p, Some(tensor_cores), None).unwrap();
    let beyond_f32 = (0..96)
        .flat_map(|i| (0..80).map(move |j| (i, j)))
        .filter(|&ij| (out[ij] - exact[ij]).abs() > f32_bound[ij])
        .count();
    assert!(
        beyond_f32 > 0,
        "every entry within the f32 bound: the operands were not rounded to f16"
    );
}

/// The GPU Philox stream equals the CPU stream: words and f32 uniforms bit for bit, normals
/// within the WGSL-spec accuracy bound `philox::NORMAL_ABS_ERROR_F32`; including a block range
/// that crosses 2³² (the counter's carry into its high word).
#[test]
fn philox_gpu_stream_is_bit_identical_to_cpu() {
    let gpu = gpu();
    for (stream, first) in [
        (PhiloxStream::new(0, 0), 0u64),
        (PhiloxStream::new(0xDEAD_BEEF_0123_4567, 7), 1000),
        (PhiloxStream::new(42, 3), (1u64 << 32) - 100),
    ] {
        let n = 1000u32;
        let (words, normals) = philox::philox_fill(gpu, stream, first, n).unwrap();
        let mut worst = 0.0f64;
        for i in 0..n as usize {
            let b = first + i as u64;
            let cpu = stream.block(b);
            assert_eq!(words[i], cpu, "block {b} of {stream:?}");
            for l in 0..4 {
                let u32f = (2 * (words[i][l] >> 9) + 1) as f32 / 16_777_216.0;
                assert_eq!(f64::from(u32f), word_to_uniform(cpu[l]));
            }
            let z = stream.normals(b);
            for l in 0..4 {
                let err = (f64::from(normals[i][l]) - z[l]).abs();
                assert!(
                    err <= philox::NORMAL_ABS_ERROR_F32,
                    "block {b} lane {l}: {err}"
                );
                worst = worst.max(err);
            }
        }
        eprintln!("{}: max |z_gpu − z_cpu| = {worst:.3e}", gpu.backend_name());
    }
}

/// The GMM kernel (responsibilities, score, posterior mean) matches the f64 closed forms within
/// the derived f32 bound `gmm::f32_error_bound`, for random mixtures (d up to 64 — the kernel's
/// maximum — K up to 6), batch sizes that are not multiples of the workgroup, σ from 0.1 to 3,
/// and points near and far from the modes.
#[test]
fn gmm_posterior_kernel_matches_f64_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(0x9a11, 0);
    for (d, k, n, sigma) in [
        (1usize, 1usize, 1usize, 1.0),
        (2, 3, 257, 0.1),
        (5, 6, 130, 0.5),
        (16, 4, 65, 3.0),
        (64, 2, 33, 1.0),
    ] {
        let target = random_gmm(&mut rng, d, k).unwrap();
        let points = Mat::from_fn(n, d, |_, _| 4.0 * rng.normal());
        let out = gmm::gmm_posterior(gpu, &target, &points, sigma).unwrap();
        let reference = gmm::gmm_posterior_reference(&target, &points, sigma).unwrap();
        for p in 0..n {
            let y: Vec<f64> = (0..d).map(|j| points[(p, j)]).collect();
            let (rb, sb, mb) = gmm::f32_error_bound(&target, &y, sigma).unwrap();
            for (c, bound) in rb.iter().enumerate() {
                let (g, r) = (
                    out.responsibilities[p * k + c],
                    reference.responsibilities[p * k + c],
                );
                assert!(
                    (g - r).abs() <= *bound,
                    "d={d} K={k} point {p} ρ_{c}: {g} vs {r} (bound {bound})"
                );
            }
            for i in 0..d {
                let (g, r) = (out.score[p * d + i], reference.score[p * d + i]);
                assert!(
                    (g - r).abs() <= sb[i],
                    "d={d} K={k} point {p} score_{i}: {g} vs {r} (bound {})",
                    sb[i]
                );
                let (g, r) = (
                    out.posterior_mean[p * d + i],
                    reference.posterior_mean[p * d + i],
                );
                assert!(
                    (g - r).abs() <= mb[i],
                    "d={d} K={k} point {p} mean_{i}: {g} vs {r} (bound {})",
                    mb[i]
                );
            }
        }
    }
}

/// The denoiser JVP kernels (affine, soft threshold, cubic power map, tanh MLP, GMM Bayes
/// denoiser) match their f64 reference `f(y)` and `∇f(y)z` within the derived f32 bounds of
/// `JvpDenoiser::reference`, on random inputs and Rademacher probes, for batch sizes that are
/// not multiples of the workgroup, d from 1 to 40, points near the threshold included.
#[test]
fn denoiser_jvp_kernels_match_f64_reference() {
    use diffusion_theorems::denoisers::divergence::rademacher_probes;
    use diffusion_theorems::denoisers::Mlp;
    use diffusion_theorems::gpu::denoiser_jvp::{
        denoiser_jvp, denoiser_jvp_reference, JvpDenoiser,
    };
    use diffusion_theorems::theorems::sure;
    let gpu = gpu();
    let mut rng = Rng::new(0x7a1f, 0);
    for (d, n, sigma) in [
        (1usize, 1usize, 1.0),
        (3, 70, 0.3),
        (8, 129, 1.0),
        (40, 65, 2.0),
    ] {
        let target = random_gmm(&mut rng, d, 4).unwrap();
        let (bayes, soft, mlp, power) = sure::default_denoisers(&target, sigma, &mut rng).unwrap();
        let affine = sure::random_affine(&mut rng, d).unwrap();
        let wide = Mlp::random(&mut rng, d, 200).unwrap();
        let mut points = Mat::from_fn(n, d, |_, _| 3.0 * rng.normal());
        points[(0, 0)] = soft.threshold() * 1.000_000_01; // on the threshold's f32 rounding edge
        let probes = rademacher_probes(PhiloxStream::new(0x7a1f, d as u32), n, d);
        let dens = [
            JvpDenoiser::Affine(&affine),
            JvpDenoiser::SoftThreshold(&soft),
            JvpDenoiser::PowerMap(&power),
            JvpDenoiser::Mlp(&mlp),
            JvpDenoiser::Mlp(&wide),
            JvpDenoiser::Gmm(&bayes),
        ];
        for den in dens {
            let out = denoiser_jvp(gpu, &den, &points, &probes, sigma).unwrap();
            let mut worst: f64 = 0.0;
            let reference = denoiser_jvp_reference(&den, &points, &probes, sigma).unwrap();
            for e in 0..n * d {
                let (g, r, b) = (out.values[e], reference.values[e], reference.value_bound[e]);
                assert!(
                    (g - r).abs() <= b,
                    "d={d} {den:?} f[{e}]: {g} vs {r} (bound {b})"
                );
                let (g, r, b) = (out.jvp[e], reference.jvp[e], reference.jvp_bound[e]);
                assert!(
                    (g - r).abs() <= b,
                    "d={d} {den:?} Jz[{e}]: {g} vs {r} (bound {b})"
                );
                if b > 0.0 {
                    worst = worst.max((g - r).abs() / b);
                }
            }
            println!(
                "d={d} {}: worst |gpu − f64|/bound = {worst:.3}",
                format!("{den:?}").split('(').next().unwrap_or("")
            );
        }
    }
}

/// The Monte Carlo kernel reproduces the f64 replay of the same estimator on the same Philox
/// samples. Bound: each sample differs by at most `|F|·NORMAL_ABS_ERROR_F32` (normals) plus f32
/// rounding, which moves each log-weight by at most `Δ = ‖y − x‖·|Δx|/σ² + (d+3)u·‖y − x‖²/2σ²`;
/// the self-normalised mean then moves by at most `2(Δ_max + γ_m)·max_j|x_j − x̂|` (m = the
/// longest f32 summation chain); here we bound `Δ_max` with the largest ‖y − x‖ seen.
#[test]
fn mc_posterior_kernel_matches_f64_replay() {
    let gpu = gpu();
    let mut rng = Rng::new(0x3c3c, 0);
    let u = diffusion_theorems::numerics::F32_UNIT_ROUNDOFF;
    for (d, k, n) in [(1usize, 2usize, 1000u32), (3, 3, 40_000), (16, 2, 5_000)] {
        let target = random_gmm(&mut rng, d, k).unwrap();
        let sigma = 1.5;
        let queries = Mat::from_fn(5, d, |_, _| 2.0 * rng.normal());
        let stream = PhiloxStream::new(5, d as u32);
        let gpu_est =
            monte_carlo::mc_posterior_mean(gpu, &target, &queries, sigma, n, stream).unwrap();
        let cpu_est =
            monte_carlo::mc_posterior_mean_reference(&target, &queries, sigma, n, stream).unwrap();
        let f_norm = target
            .components()
            .iter()
            .map(|c| c.factor.eigenvalues.iter().sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        let dx =
            f_norm * philox::NORMAL_ABS_ERROR_F32 * (d as f64).sqrt() + u * target.scale() * 8.0;
        let x_max = target.scale() * (1.0 + 5.8 * (d as f64).sqrt());
        for q in 0..5 {
            let y_max = (0..d).map(|j| queries[(q, j)].abs()).fold(0.0, f64::max);
            let dist = (x_max + y_max) * (d as f64).sqrt();
            let delta = dist * dx / (sigma * sigma)
                + (d as f64 + 3.0) * u * dist * dist / (2.0 * sigma * sigma);
            let m = f64::from(monte_carlo::SAMPLES_PER_GROUP) / 64.0 + 64.0;
            let bound = 2.0 * (delta + m * u) * 2.0 * x_max;
            for i in 0..d {
                let err = (gpu_est[q].mean[i] - cpu_est[q].mean[i]).abs();
                assert!(err <= bound, "d={d} query {q} coord {i}: {err} > {bound}");
            }
        }
    }
}

/// Inputs the kernels cannot take are typed errors, not panics.
#[test]
fn kernels_refuse_bad_input_with_typed_errors() {
    let gpu = gpu();
    let mut rng = Rng::new(1, 1);
    let target = random_gmm(&mut rng, 2, 2).unwrap();
    let bad_cols = Mat::zeros(3, 5);
    assert!(gmm::gmm_posterior(gpu, &target, &bad_cols, 1.0).is_err());
    assert!(gmm::gmm_posterior(gpu, &target, &Mat::zeros(3, 2), -1.0).is_err());
    let mut nan = Mat::zeros(2, 2);
    nan[(1, 1)] = f64::NAN;
    let e = gmm::gmm_posterior(gpu, &target, &nan, 1.0).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
    assert!(monte_carlo::mc_posterior_mean(
        gpu,
        &target,
        &Mat::zeros(1, 2),
        1.0,
        0,
        PhiloxStream::new(0, 0)
    )
    .is_err());
    // d = 16: 5 Philox blocks per sample, so 900 million samples overrun the u32 counter
    let wide = random_gmm(&mut rng, 16, 1).unwrap();
    let e = monte_carlo::mc_posterior_mean(
        gpu,
        &wide,
        &Mat::zeros(1, 16),
        1.0,
        900_000_000,
        PhiloxStream::new(0, 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("900000000"), "{e}");
    let big = random_gmm(&mut rng, 17, 1).unwrap();
    assert!(monte_carlo::mc_posterior_mean(
        gpu,
        &big,
        &Mat::zeros(1, 17),
        1.0,
        10,
        PhiloxStream::new(0, 0)
    )
    .is_err());
}

/// The DDIM kernel (affine denoiser, all L steps in f32) matches the f64 reference within the
/// bound `ddim::ddim_affine_reference` propagates step by step (inputs rounded to f32, d-term dot
/// products, the update `kx + af`), on random Gaussians (d = 1, 3, 7), random normal noise, batch
/// sizes not multiples of 64, VE and VP schedules; a sample the DDIM CPU sampler also produces.
#[test]
fn ddim_kernel_matches_f64_reference() {
    use diffusion_theorems::denoisers::linear::OptimalAffine;
    use diffusion_theorems::diffusion::{Ddim, Sampler, Schedule};
    use diffusion_theorems::gpu::ddim;
    let gpu = gpu();
    let mut rng = Rng::new(0xdd1, 0);
    for (d, n, schedule) in [
        (1usize, 1usize, Schedule::ve_uniform(5.0, 7).unwrap()),
        (3, 130, Schedule::vp_cosine(0.99, 40).unwrap()),
        (7, 65, Schedule::ve_exponential(0.05, 0.1, 30).unwrap()),
    ] {
        let f = Mat::from_fn(d, d, |_, _| rng.normal());
        let cov = &f * f.transpose();
        let mean = rng.normals(d);
        let den = OptimalAffine::from_moments(&mean, &cov).unwrap();
        let noise = Mat::from_fn(n, d, |_, _| rng.normal());
        let out = ddim::ddim_affine(gpu, &schedule, &den, &noise).unwrap();
        let (reference, bound) = ddim::ddim_affine_reference(&schedule, &den, &noise).unwrap();
        let cpu = Ddim {
            schedule: schedule.clone(),
        }
        .sample(&den, &noise)
        .unwrap();
        for p in 0..n {
            for j in 0..d {
                let err = (out[(p, j)] - reference[(p, j)]).abs();
                assert!(
                    err <= bound[(p, j)],
                    "d={d} ({p},{j}): {err} > {}",
                    bound[(p, j)]
                );
                assert!((cpu[(p, j)] - reference[(p, j)]).abs() <= 1e-3 * bound[(p, j)].max(1e-9));
            }
        }
    }
    let den = OptimalAffine::from_moments(&[0.0, 0.0], &Mat::zeros(2, 2)).unwrap();
    let s = Schedule::ve_uniform(1.0, 2).unwrap();
    assert!(ddim::ddim_affine(gpu, &s, &den, &Mat::zeros(3, 3)).is_err());
}

/// Both GEMM kernels (16×16-tiled, and register-blocked 64×64 for m, n ≥ 64) compute
/// `α·op(A)·op(B) + β·D` within the derived f32 bound `γ_{k+5}(|α||op(A)||op(B)| + |β||D|)` for
/// all four transpose combinations, shapes that are not multiples of the tiles (including 1×1, a
/// long inner dimension and ragged 64-blocks), β = 0 with no D.
#[test]
fn gemm_kernel_matches_f64_reference() {
    use diffusion_theorems::gpu::gemm::{gemm, gemm_reference};
    let gpu = gpu();
    let mut rng = Rng::new(0x6e33, 0);
    // (64, 64, 64) and larger take the register-blocked kernel; 130×150 has ragged 64-blocks
    for &(m, k, n) in &[
        (1usize, 1usize, 1usize),
        (17, 5, 33),
        (40, 300, 7),
        (64, 64, 64),
        (130, 70, 150),
    ] {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = random_operands(&mut rng, (m, k, n), (trans_a, trans_b));
            let d = Mat::from_fn(m, n, |_, _| rng.normal());
            for (alpha, beta, addend) in [(1.0, 0.0, None), (-0.7, 1.3, Some(&d))] {
                let out = gemm(gpu, &a, trans_a, &b, trans_b, alpha, beta, addend).unwrap();
                let (reference, bound) =
                    gemm_reference(&a, trans_a, &b, trans_b, alpha, beta, addend).unwrap();
                assert_within_bound(
                    &format!("{m}×{k}×{n} T=({trans_a},{trans_b}) α={alpha}: C"),
                    &out,
                    &reference,
                    &bound,
                );
            }
        }
    }
    let a = Mat::zeros(3, 4);
    let err = gemm(gpu, &a, false, &a, false, 1.0, 0.0, None).unwrap_err();
    assert!(err.to_string().contains("inner dimension"), "{err}");
}

/// A random batch for an n-dimensional network: x ~ N(0, I), σ log-uniform in [0.01, 10],
/// y = x + σg, loss weights uniform in [0, 3].
/// Standard-normal GEMM operands for `op(A)` m×k and `op(B)` k×n, stored transposed (A as k×m,
/// B as n×k) where asked.
fn random_operands(
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    (trans_a, trans_b): (bool, bool),
) -> (Mat, Mat) {
    let a_shape = if trans_a { (k, m) } else { (m, k) };
    let b_shape = if trans_b { (n, k) } else { (k, n) };
    (
        Mat::from_fn(a_shape.0, a_shape.1, |_, _| rng.normal()),
        Mat::from_fn(b_shape.0, b_shape.1, |_, _| rng.normal()),
    )
}

/// Asserts `|got − reference| ≤ bound` elementwise (naming `what` and the entry that fails) and
/// returns the largest `|got − reference|/bound`.
fn assert_within_bound(what: &str, got: &Mat, reference: &Mat, bound: &Mat) -> f64 {
    let mut worst = 0.0f64;
    for i in 0..got.nrows() {
        for j in 0..got.ncols() {
            let (g, r, e) = (got[(i, j)], reference[(i, j)], bound[(i, j)]);
            assert!(
                (g - r).abs() <= e,
                "{what}: [{i},{j}] {g} vs {r} (bound {e})"
            );
            worst = worst.max((g - r).abs() / e);
        }
    }
    worst
}

fn mlp_batch(rng: &mut Rng, m: usize, n: usize) -> diffusion_theorems::gpu::mlp::Batch {
    let x = Mat::from_fn(m, n, |_, _| rng.normal());
    let sigma: Vec<f64> = (0..m)
        .map(|_| 10f64.powf(3.0 * rng.uniform() - 2.0))
        .collect();
    let y = Mat::from_fn(m, n, |i, j| x[(i, j)] + sigma[i] * rng.normal());
    let weight = (0..m).map(|_| 3.0 * rng.uniform()).collect();
    diffusion_theorems::gpu::mlp::Batch {
        y,
        sigma,
        x,
        weight,
    }
}

/// `gpu/mlp.wgsl` forward (fused bias + activation), loss and backward (weight and input
/// gradients, fused activation derivative, reduction) against the f64 reference, on random
/// weights and batches, every activation and σ input, within the first-order f32 running
/// error bounds of `gpu::mlp::reference_with_bounds`.
#[test]
fn mlp_forward_backward_match_f64_reference() {
    use diffusion_theorems::denoisers::bottleneck::{
        Activation, Architecture, BottleneckNet, SigmaInput,
    };
    use diffusion_theorems::gpu::mlp::{reference_with_bounds, AdamConfig, GpuTrainer};
    let gpu = gpu();
    let mut rng = Rng::new(66, 0);
    let cases = [
        Architecture::paper_2d(1, 64, SigmaInput::Encoder),
        Architecture::paper_2d(2, 17, SigmaInput::EncoderAndDecoder),
        Architecture::paper_per_step(5, 3),
        Architecture {
            dim: 4,
            encoder: vec![9, 7],
            bottleneck: 2,
            decoder: vec![11],
            hidden: Activation::Tanh,
            code: Activation::Relu,
            output: Activation::Tanh,
            sigma: SigmaInput::Encoder,
        },
    ];
    for arch in cases {
        let n = arch.dim;
        let net = BottleneckNet::random(arch.clone(), &mut rng).unwrap();
        let batch = mlp_batch(&mut rng, 37, n);
        let trainer = GpuTrainer::new(gpu, &net, 37, AdamConfig::default()).unwrap();
        let (out, loss, grad) = trainer.evaluate(&batch).unwrap();
        let (r_out, b_out, r_loss, b_loss, r_grad, b_grad) =
            reference_with_bounds(&net, &batch).unwrap();
        for i in 0..37 {
            for j in 0..n {
                assert!(
                    (out[(i, j)] - r_out[(i, j)]).abs() <= b_out[(i, j)],
                    "{arch:?} out[{i},{j}] {} vs {} (bound {})",
                    out[(i, j)],
                    r_out[(i, j)],
                    b_out[(i, j)]
                );
            }
        }
        assert!(
            (loss - r_loss).abs() <= b_loss,
            "loss {loss} vs {r_loss} ({b_loss})"
        );
        let worst = (0..grad.len())
            .map(|k| (grad[k] - r_grad[k]).abs() / b_grad[k])
            .fold(0.0, f64::max);
        let largest = r_grad.iter().fold(0.0f64, |a, g| a.max(g.abs()));
        eprintln!("{arch:?}: worst gradient error/bound {worst:.3}, max |grad| {largest:.3e}");
        for k in 0..grad.len() {
            assert!(
                (grad[k] - r_grad[k]).abs() <= b_grad[k],
                "{arch:?} grad[{k}] {} vs {} (bound {})",
                grad[k],
                r_grad[k],
                b_grad[k]
            );
        }
    }
}

/// The `mlp_adam` kernel against one f64 Adam step from the same f32 inputs, at steps 1 and 1000.
#[test]
fn mlp_adam_step_matches_f64_reference() {
    use diffusion_theorems::gpu::mlp::{adam_reference, adam_step, AdamConfig};
    let gpu = gpu();
    let mut rng = Rng::new(67, 0);
    let p = 1000;
    let theta: Vec<f64> = rng.normals(p);
    let grad: Vec<f64> = rng.normals(p).iter().map(|g| 0.1 * g).collect();
    let m: Vec<f64> = rng.normals(p).iter().map(|g| 0.01 * g).collect();
    let v: Vec<f64> = rng.normals(p).iter().map(|g| 1e-4 * g * g).collect();
    let adam = AdamConfig {
        lr: 3e-3,
        ..AdamConfig::default()
    };
    for step in [1, 1000] {
        let (t2, m2, v2) = adam_step(gpu, &adam, step, &theta, &grad, &m, &v).unwrap();
        let (rt, rm, rv, bt, bm, bv) = adam_reference(&adam, step, &theta, &grad, &m, &v);
        for k in 0..p {
            assert!(
                (t2[k] - rt[k]).abs() <= bt[k],
                "θ[{k}] {} vs {} ({})",
                t2[k],
                rt[k],
                bt[k]
            );
            assert!(
                (m2[k] - rm[k]).abs() <= bm[k],
                "m[{k}] {} vs {} ({})",
                m2[k],
                rm[k],
                bm[k]
            );
            assert!(
                (v2[k] - rv[k]).abs() <= bv[k],
                "v[{k}] {} vs {} ({})",
                v2[k],
                rv[k],
                bv[k]
            );
        }
    }
}

/// The power-feature kernel writes `[1 | (c_j Z_ij)^k]` within the bound of
/// `gpu::power_features` (Z rounded to f32 on upload, so `|ΔZ| ≤ u|Z|`):
/// `k|v|^{k−1}(c_j u|Z_ij| + 2u|v|) + (k − 1)u|v|^k`, doubled, on random Z with |c_j Z_ij| ≤ 1,
/// for k = 1, 3, 27 and a shape that is not a multiple of the workgroup; outputs poisoned first.
#[test]
fn power_feature_kernel_matches_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::power_features::power_features;
    use diffusion_theorems::numerics::F32_UNIT_ROUNDOFF as U;
    let gpu = gpu();
    let mut rng = Rng::new(0x90e7, 0);
    let (n, w) = (77usize, 13usize);
    let z = Mat::from_fn(n, w, |_, _| 3.0 * rng.normal());
    let scales: Vec<f64> = (0..w)
        .map(|j| 1.0 / (0..n).map(|i| z[(i, j)].abs()).fold(0.0, f64::max))
        .collect();
    let gz = GpuMat::upload(gpu, "z", &z).unwrap();
    for power in [1usize, 3, 27] {
        let out = power_features(gpu, &gz, &scales, power)
            .unwrap()
            .download(gpu)
            .unwrap();
        let k = power as i32;
        for i in 0..n {
            assert_eq!(out[(i, 0)], 1.0);
            for j in 0..w {
                let v = scales[j] * z[(i, j)];
                let exact = v.powi(k);
                let a = v.abs();
                let bound = 2.0
                    * (f64::from(k)
                        * a.powi(k - 1)
                        * (scales[j] * U * z[(i, j)].abs() + 2.0 * U * a)
                        + f64::from(k - 1) * U * a.powi(k))
                    + f64::from(f32::MIN_POSITIVE);
                let got = out[(i, j + 1)];
                assert!(
                    (got - exact).abs() <= bound,
                    "k={power} [{i},{j}]: {got} vs {exact} (bound {bound})"
                );
            }
        }
    }
    assert!(power_features(gpu, &gz, &scales[..3], 3).is_err());
    assert!(power_features(gpu, &gz, &scales, 0).is_err());
}

/// How [`check_gemm_epilogues`] runs each product.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// One pass of `gemm_fused_planned`, with the kernel and the split-K slices forced where
    /// given.
    Planned(Option<GemmKernel>, Option<usize>),
    /// `gemm_fused_tiled`, cut into these blocks.
    Tiled(GemmTiling),
}

/// Runs one m×k×n product shape through [`gemm_fused_planned`] with the kernel and split-K
/// slices forced where given (or cut into blocks by `gemm_fused_tiled`), for all four transposes, with and without `β·D`, and every fused
/// epilogue — bias (per row, per column) + activation (identity, tanh, ReLU, leaky ReLU), the
/// derivative mask read off a stored activation output, and the power `(s_j t_ij)^k` — against
/// `gemm::gemm_fused_reference` and its derived bound (outputs poisoned first); asserts that the
/// plan that ran is `expect` where given, and that a split product reruns bit for bit.
fn check_gemm_epilogues(
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    route: Route,
    expect: Option<GemmPlan>,
) {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::gemm::{
        gemm_fused_planned, gemm_fused_reference, gemm_fused_tiled, gemm_reference,
        gemm_tensor_core_reference, Bias, Epilogue, HostProduct,
    };
    let gpu = gpu();
    let leaky = Activation::LeakyRelu { slope: 0.2 };
    let reference_of = if matches!(route, Route::Planned(Some(GemmKernel::TensorCoresF16), _)) {
        gemm_tensor_core_reference
    } else {
        gemm_fused_reference
    };
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let (a, b) = random_operands(rng, (m, k, n), (trans_a, trans_b));
        let d = Mat::from_fn(m, n, |_, _| rng.normal());
        let row_bias = Mat::from_fn(m, 1, |_, _| rng.normal());
        let col_bias = Mat::from_fn(1, n, |_, _| rng.normal());
        let pre = Mat::from_fn(m, n, |_, _| 2.0 * rng.normal());
        let h_tanh = Mat::from_fn(m, n, |i, j| pre[(i, j)].tanh());
        let h_relu = Mat::from_fn(m, n, |i, j| Activation::Relu.apply(pre[(i, j)]));
        let h_leaky = Mat::from_fn(m, n, |i, j| leaky.apply(pre[(i, j)]));
        for (alpha, beta, addend) in [(1.0, 0.0, None), (-0.7, 1.3, Some(&d))] {
            // scales with |s_j t_ij| ≤ 1 so no power overflows
            let (t, _) = gemm_reference(&a, trans_a, &b, trans_b, alpha, beta, addend).unwrap();
            let scale = Mat::from_fn(1, n, |_, j| {
                1.0 / (0..m).map(|i| t[(i, j)].abs()).fold(0.0, f64::max)
            });
            let epilogues: Vec<(&str, Epilogue<&Mat>)> = vec![
                ("none", Epilogue::None),
                (
                    "identity",
                    Epilogue::Activation {
                        bias: Bias::None,
                        activation: Activation::Identity,
                    },
                ),
                (
                    "row bias + tanh",
                    Epilogue::Activation {
                        bias: Bias::PerRow(&row_bias),
                        activation: Activation::Tanh,
                    },
                ),
                (
                    "column bias + relu",
                    Epilogue::Activation {
                        bias: Bias::PerColumn(&col_bias),
                        activation: Activation::Relu,
                    },
                ),
                (
                    "column bias + leaky",
                    Epilogue::Activation {
                        bias: Bias::PerColumn(&col_bias),
                        activation: leaky,
                    },
                ),
                (
                    "tanh mask",
                    Epilogue::DerivativeMask {
                        activation: Activation::Tanh,
                        output: &h_tanh,
                    },
                ),
                (
                    "relu mask",
                    Epilogue::DerivativeMask {
                        activation: Activation::Relu,
                        output: &h_relu,
                    },
                ),
                (
                    "leaky mask",
                    Epilogue::DerivativeMask {
                        activation: leaky,
                        output: &h_leaky,
                    },
                ),
                (
                    "identity mask",
                    Epilogue::DerivativeMask {
                        activation: Activation::Identity,
                        output: &pre,
                    },
                ),
                (
                    "power 1",
                    Epilogue::Power {
                        scale: &scale,
                        power: 1,
                    },
                ),
                (
                    "power 3",
                    Epilogue::Power {
                        scale: &scale,
                        power: 3,
                    },
                ),
                (
                    "power 7",
                    Epilogue::Power {
                        scale: &scale,
                        power: 7,
                    },
                ),
            ];
            for (name, epilogue) in epilogues {
                let p = HostProduct {
                    a: &a,
                    trans_a,
                    b: &b,
                    trans_b,
                    alpha,
                    beta,
                    d: addend,
                    epilogue,
                };
                let (out, plan) = match route {
                    Route::Planned(kernel, splits) => {
                        let (out, plan) = gemm_fused_planned(gpu, &p, kernel, splits).unwrap();
                        if let Some(expect) = expect {
                            assert_eq!(plan, expect, "{m}×{k}×{n} {name}: the plan that ran");
                        }
                        if plan.splits > 1 && matches!(epilogue, Epilogue::None) {
                            // the partials are added in slice order, no atomics: bit-identical
                            let (again, _) = gemm_fused_planned(gpu, &p, kernel, splits).unwrap();
                            for i in 0..m {
                                for j in 0..n {
                                    assert_eq!(out[(i, j)].to_bits(), again[(i, j)].to_bits());
                                }
                            }
                        }
                        (out, format!("{plan:?}"))
                    }
                    Route::Tiled(tiling) => (
                        gemm_fused_tiled(gpu, &p, tiling).unwrap(),
                        format!("{tiling:?}"),
                    ),
                };
                let (reference, bound) = reference_of(&p).unwrap();
                let worst = assert_within_bound(
                    &format!("{m}×{k}×{n} {plan} T=({trans_a},{trans_b}) α={alpha} {name}: C"),
                    &out,
                    &reference,
                    &bound,
                );
                if (trans_a, trans_b, beta) == (false, false, 0.0) {
                    println!("{m}×{k}×{n} {plan} {name}: worst |gpu − f64|/bound = {worst:.3}");
                }
            }
        }
    }
}

/// Both GEMM kernels with every fused epilogue — bias (per row, per column) + activation
/// (identity, tanh, ReLU, leaky ReLU), the derivative mask read off a stored activation output,
/// and the power `(s_j t_ij)^k` — against `gemm::gemm_fused_reference`, whose bounds are derived
/// from the dot product's `γ_{k+5}` and each epilogue's own roundings (see its doc: the power's
/// relative error is `k·(γ_{k+5}κ + 2u) + (k − 1)u` to first order, κ the dot product's
/// condition number). Shapes are not multiples of the tiles (ragged 64-blocks for the blocked
/// kernel), all transposes, with and without `β·D`; outputs are poisoned first.
#[test]
fn gemm_epilogues_match_f64_reference() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::gemm::{gemm_fused, Bias, Epilogue, GpuMat, HostProduct, Product};
    let gpu = gpu();
    let mut rng = Rng::new(0xe911, 0);
    // (17, 5, 33) and (40, 300, 7) run the tiled kernel, (130, 70, 150) the blocked one
    for shape in [(17usize, 5usize, 33usize), (40, 300, 7), (130, 70, 150)] {
        check_gemm_epilogues(&mut rng, shape, Route::Planned(None, None), None);
    }
    // bad epilogues are typed errors naming the value
    let a = Mat::from_fn(3, 4, |_, _| rng.normal());
    let b = Mat::from_fn(4, 5, |_, _| rng.normal());
    let wrong = Mat::from_fn(1, 3, |_, _| 1.0);
    let base = HostProduct::new((&a, false), (&b, false));
    let bad = |epilogue| HostProduct { epilogue, ..base };
    let e = gemm_fused(
        gpu,
        &bad(Epilogue::Activation {
            bias: Bias::PerRow(&wrong),
            activation: Activation::Tanh,
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("per-row bias"), "{e}");
    let h = Mat::from_fn(3, 5, |_, _| 1.0);
    let e = gemm_fused(
        gpu,
        &bad(Epilogue::DerivativeMask {
            activation: Activation::LeakyRelu { slope: -0.1 },
            output: &h,
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("-0.1"), "{e}");
    let s = Mat::from_fn(1, 5, |_, _| 1.0);
    let e = gemm_fused(
        gpu,
        &bad(Epilogue::Power {
            scale: &s,
            power: 0,
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("power"), "{e}");
    let ga = GpuMat::upload(gpu, "a", &Mat::from_fn(4, 4, |_, _| 1.0)).unwrap();
    let e = Product::new((&ga, false), (&ga, false), &ga)
        .prepare(gpu)
        .err()
        .unwrap();
    assert!(e.to_string().contains("shares its buffer"), "{e}");
}

/// Rigorous interval of one Adam step's `(θ', m', v')` (from f32-rounded hyper-parameters, as
/// the kernel sees them) when the gradient is only known to lie in `[g − δ, g + δ]`: m' and v'
/// are monotone in g and g², and `θ' = θ − lr·c₁m'/(√(c₂v') + ε)` is bounded by interval
/// division.
#[allow(clippy::type_complexity)]
fn adam_interval(
    adam: &diffusion_theorems::gpu::mlp::AdamConfig,
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
/// `mlp::adam_reference`'s rounding bound; and a trained epoch equals its batches' steps taken
/// one by one, bit for bit.
#[test]
fn dense_trainer_step_matches_f64_reference() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::dense::{
        batch_inputs_reference, batch_reference, DenseConfig, DenseTrainer,
    };
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::mlp::{adam_reference, AdamConfig};
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
                let net = params.network(activation).unwrap();
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
        // the epoch loss is summed in f32 on the GPU: 50 values, ≤ ⌈50/64⌉ + 6 additions each
        let g = 8.0 * diffusion_theorems::numerics::F32_UNIT_ROUNDOFF;
        assert!((losses[0] - total / n as f64).abs() <= 2.0 * g * losses[0]);
    }
}

/// A checkpoint resumes bit for bit: train 2 epochs, save the state (through JSON), train a
/// third; a fresh trainer (other seed) loaded with the state trains the same third epoch — same
/// loss, parameters, Adam moments and counters. Mismatched checkpoints are refused.
#[test]
fn dense_trainer_resumes_bit_for_bit() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::dense::{DenseConfig, DenseState, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::mlp::AdamConfig;
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
    use diffusion_theorems::gpu::dense::{batch_reference, DenseConfig, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::mlp::AdamConfig;
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
    use diffusion_theorems::gpu::dense::{DenseConfig, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::mlp::AdamConfig;
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
    use diffusion_theorems::gpu::dense::{DenseConfig, DenseTrainer};
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::mlp::AdamConfig;
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

/// Random test matrix whose row i has entries `N(0, spread_i²)`, the spreads cycling through
/// 1, 30 and 0.01 so that some rows have exponentials that underflow f32 and some are flat.
fn spread_rows(rng: &mut Rng, rows: usize, cols: usize) -> Mat {
    let spreads = [1.0, 30.0, 0.01];
    Mat::from_fn(rows, cols, |i, _| spreads[i % 3] * rng.normal())
}

/// Row log-sum-exp and row softmax (one workgroup per row) match the f64 max-shifted
/// references within the bounds of `gpu::rowwise` (logits `γ₄(|scale·x| + |shift·v|)`, exp within
/// `3 + 2|x|` ULP, the workgroup sum `γ_{⌈n/256⌉+8}`, the division 2.5 ULP, underflow `2⁻¹²⁵`),
/// for rows shorter than, equal to and longer than the 256-wide workgroup, with and without an
/// affine column shift; outputs are poisoned before the kernels run.
#[test]
fn row_logsumexp_and_softmax_match_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise::{self, ColumnShift};
    let gpu = gpu();
    let mut rng = Rng::new(0x50f7, 0);
    for &(m, n) in &[
        (1usize, 1usize),
        (3, 255),
        (5, 256),
        (7, 257),
        (2, 1000),
        (70, 37),
    ] {
        let x = spread_rows(&mut rng, m, n);
        let v: Vec<f64> = (0..n).map(|_| 5.0 * rng.normal()).collect();
        let gx = GpuMat::upload(gpu, "x", &x).unwrap();
        let gv = GpuMat::upload(gpu, "v", &Mat::from_fn(1, n, |_, j| v[j])).unwrap();
        let mut worst = (0.0f64, 0.0f64);
        for (scale, shift) in [(1.0, 0.0), (0.7, -1.3)] {
            let cs = ColumnShift {
                scale,
                shift,
                v: (shift != 0.0).then_some(&gv),
            };
            let lse = rowwise::row_logsumexp(gpu, &gx, cs)
                .unwrap()
                .download(gpu)
                .unwrap();
            let (lse_ref, lse_bound) =
                rowwise::row_logsumexp_reference(&x, scale, shift, &v).unwrap();
            for i in 0..m {
                let err = (lse[(i, 0)] - lse_ref[i]).abs();
                worst.0 = worst.0.max(err / lse_bound[i]);
                assert!(
                    err <= lse_bound[i],
                    "{m}×{n} shift {shift}: lse[{i}] {} vs {} (bound {})",
                    lse[(i, 0)],
                    lse_ref[i],
                    lse_bound[i]
                );
            }
            let p = rowwise::row_softmax(gpu, &gx, cs)
                .unwrap()
                .download(gpu)
                .unwrap();
            let (p_ref, p_bound) =
                rowwise::row_softmax_reference(&x, scale, shift, &v, &[n]).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let err = (p[(i, j)] - p_ref[(i, j)]).abs();
                    worst.1 = worst.1.max(err / p_bound[(i, j)]);
                    assert!(
                        err <= p_bound[(i, j)],
                        "{m}×{n} shift {shift}: p[{i},{j}] {} vs {} (bound {})",
                        p[(i, j)],
                        p_ref[(i, j)],
                        p_bound[(i, j)]
                    );
                }
            }
        }
        eprintln!(
            "{m}×{n}: worst error/bound: lse {:.2e}, softmax {:.2e}",
            worst.0, worst.1
        );
    }
}

/// The softmax across column blocks held in separate buffers (the empirical denoiser's form:
/// running `(max, Σexp)` merged block by block, then `exp(z − m)/s` in place) matches the f64
/// softmax of the concatenated row within the blocked bound of `gpu::rowwise` (which adds the
/// merges' exp and rounding errors), for ragged block widths and more rows than fit one grid
/// row of 256. The kernel writes in place, so instead of poison every input entry is a random
/// normal that no softmax value can match within the bound.
#[test]
fn row_softmax_across_column_blocks_matches_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise::{self, ColumnShift};
    let gpu = gpu();
    let mut rng = Rng::new(0xb10c, 0);
    let widths = [100usize, 37, 300, 1];
    let n: usize = widths.iter().sum();
    let m = 300;
    let x = spread_rows(&mut rng, m, n);
    let v: Vec<f64> = (0..n).map(|_| 5.0 * rng.normal()).collect();
    let (scale, shift) = (0.9, -0.4);
    let mut start = 0;
    let mut blocks = Vec::new();
    for &w in &widths {
        let gx =
            GpuMat::upload(gpu, "block", &Mat::from_fn(m, w, |i, j| x[(i, start + j)])).unwrap();
        let gv = GpuMat::upload(gpu, "block v", &Mat::from_fn(1, w, |_, j| v[start + j])).unwrap();
        blocks.push((gx, gv, start));
        start += w;
    }
    let views: Vec<(&GpuMat, ColumnShift)> = blocks
        .iter()
        .map(|(gx, gv, _)| {
            (
                gx,
                ColumnShift {
                    scale,
                    shift,
                    v: Some(gv),
                },
            )
        })
        .collect();
    rowwise::row_softmax_blocks(gpu, &views).unwrap();
    let (p_ref, p_bound) = rowwise::row_softmax_reference(&x, scale, shift, &v, &widths).unwrap();
    for (gx, _, start) in &blocks {
        let p = gx.download(gpu).unwrap();
        for i in 0..m {
            for j in 0..p.ncols() {
                let (got, want, bound) =
                    (p[(i, j)], p_ref[(i, start + j)], p_bound[(i, start + j)]);
                assert!(
                    (got - want).abs() <= bound,
                    "p[{i},{}] {got} vs {want} (bound {bound})",
                    start + j
                );
            }
        }
    }
    assert!(rowwise::row_softmax_blocks(gpu, &[]).is_err());
}

/// Row max-|·| (exact up to the inputs' rounding, bound `u·max|x|`) and column sums (one
/// sequential f32 sum per column, bound `γ_m Σ_i|x_ij|`) match their f64 references on ragged
/// shapes, including a single long column and a row longer than the workgroup; outputs
/// poisoned first.
#[test]
fn row_max_abs_and_column_sums_match_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise;
    let gpu = gpu();
    let mut rng = Rng::new(0x3a5, 0);
    for &(m, n) in &[(1usize, 1usize), (300, 1), (3, 513), (70, 37)] {
        let x = spread_rows(&mut rng, m, n);
        let gx = GpuMat::upload(gpu, "x", &x).unwrap();
        let mx = rowwise::row_max_abs(gpu, &gx)
            .unwrap()
            .download(gpu)
            .unwrap();
        let (mx_ref, mx_bound) = rowwise::row_max_abs_reference(&x);
        for i in 0..m {
            assert!(
                (mx[(i, 0)] - mx_ref[i]).abs() <= mx_bound[i],
                "{m}×{n}: max|x[{i},:]| {} vs {}",
                mx[(i, 0)],
                mx_ref[i]
            );
        }
        let cs = rowwise::col_sums(gpu, &gx).unwrap().download(gpu).unwrap();
        let (cs_ref, cs_bound) = rowwise::col_sums_reference(&x);
        for j in 0..n {
            assert!(
                (cs[(0, j)] - cs_ref[j]).abs() <= cs_bound[j],
                "{m}×{n}: Σ x[:,{j}] {} vs {} (bound {})",
                cs[(0, j)],
                cs_ref[j],
                cs_bound[j]
            );
        }
    }
}

/// The broadcast add `x_ij += c·v_j` matches f64 within `γ₄(|x_ij| + |c·v_j|)` (x, c, v rounded
/// to f32, one product, one sum; in place, so the random input itself is the "poison"), and
/// the vec4 copy reproduces its f32 input bit for bit into a poisoned destination; lengths that
/// are not a multiple of 4 are refused.
#[test]
fn add_row_vector_and_copy_match_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise;
    use diffusion_theorems::numerics::gamma_f32 as gamma;
    let gpu = gpu();
    let mut rng = Rng::new(0xadd, 0);
    let (m, n, c) = (13usize, 77usize, -0.37);
    let x = Mat::from_fn(m, n, |_, _| rng.normal());
    let v = Mat::from_fn(1, n, |_, _| 3.0 * rng.normal());
    let gx = GpuMat::upload(gpu, "x", &x).unwrap();
    let gv = GpuMat::upload(gpu, "v", &v).unwrap();
    rowwise::add_row_vector(gpu, &gx, c, &gv).unwrap();
    let out = gx.download(gpu).unwrap();
    for i in 0..m {
        for j in 0..n {
            let want = x[(i, j)] + c * v[(0, j)];
            let bound = gamma(4) * (x[(i, j)].abs() + (c * v[(0, j)]).abs());
            assert!((out[(i, j)] - want).abs() <= bound, "[{i},{j}]");
        }
    }
    assert!(rowwise::add_row_vector(gpu, &gx, c, &gx).is_err());
    let src = Mat::from_fn(7, 36, |_, _| rng.normal());
    let gs = GpuMat::upload(gpu, "copy src", &src).unwrap();
    let gd = GpuMat::poisoned(gpu, "copy dst", 7, 36).unwrap();
    rowwise::copy(gpu, &gs, &gd).unwrap();
    let copied = gd.download(gpu).unwrap();
    for i in 0..7 {
        for j in 0..36 {
            assert_eq!(copied[(i, j)], f64::from(src[(i, j)] as f32), "[{i},{j}]");
        }
    }
    let odd = GpuMat::poisoned(gpu, "odd", 5, 3).unwrap();
    let odd2 = GpuMat::poisoned(gpu, "odd2", 5, 3).unwrap();
    assert!(rowwise::copy(gpu, &odd, &odd2).is_err());
    assert!(rowwise::copy(gpu, &gs, &odd).is_err());
}

/// Inputs the row kernels cannot take are typed errors naming the value: an empty row, a shift
/// without its vector, a vector of the wrong length, a non-finite or f32-overflowing factor.
#[test]
fn rowwise_kernels_refuse_bad_input_with_typed_errors() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise::{self, ColumnShift};
    let gpu = gpu();
    let x = GpuMat::upload(gpu, "x", &Mat::from_fn(2, 3, |i, j| (i + j) as f64 + 0.5)).unwrap();
    let empty = GpuMat::poisoned(gpu, "empty", 2, 0).unwrap();
    assert!(rowwise::row_softmax(gpu, &empty, ColumnShift::identity()).is_err());
    let no_v = ColumnShift {
        scale: 1.0,
        shift: 2.0,
        v: None,
    };
    assert!(rowwise::row_logsumexp(gpu, &x, no_v).is_err());
    let short = GpuMat::upload(gpu, "v", &Mat::from_fn(1, 2, |_, _| 1.0)).unwrap();
    let e = rowwise::row_softmax(
        gpu,
        &x,
        ColumnShift {
            scale: 1.0,
            shift: 2.0,
            v: Some(&short),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("expected 3, got 2"), "{e}");
    for bad in [f64::NAN, 1e39] {
        let e = rowwise::row_softmax(
            gpu,
            &x,
            ColumnShift {
                scale: bad,
                shift: 0.0,
                v: None,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains(&format!("{bad}")), "{e}");
    }
}

/// The GPU empirical denoiser (book eq. 3.3.3: S = Y·Xᵀ by the GEMM, logits
/// (2αS − α²‖x‖²)/(2σ²), blocked row softmax, P·X by the GEMM) matches the posterior mean of
/// the empirical law computed in f64 from Bayes' rule (`targets::empirical`, at x_t/α with noise
/// σ/α) within the derived bound of `gpu::empirical::denoise_reference`, for VE (α = 1) and VP
/// (α = 0.6) queries near training points and far from them, with one resident block and with
/// ragged blocks (64, 64, 22 images) and query tiles (32, 32, 6), from host matrices and from
/// resident ones (poisoned outputs). σ is chosen where the bound is meaningful (asserted below
/// 1% of max|x|); at small σ/‖x‖ the f32 logits' worst-case error δ ≫ 1 makes it vacuous (see
/// the module docs) — with d = 37 that happens only far below the σ/α ≈ 0.8 tested here.
#[test]
fn empirical_denoiser_matches_f64_posterior_mean() {
    use diffusion_theorems::gpu::empirical::{denoise_reference, GpuEmpirical};
    use diffusion_theorems::gpu::gemm::GpuMat;
    let gpu = gpu();
    let mut rng = Rng::new(0xe3e, 0);
    let (n, d, b) = (150usize, 37usize, 70usize);
    let data = Mat::from_fn(n, d, |_, _| rng.normal());
    let max_x = (0..n)
        .flat_map(|i| (0..d).map(move |l| (i, l)))
        .map(|(i, l)| data[(i, l)].abs())
        .fold(0.0, f64::max);
    let single = GpuEmpirical::new(gpu, &data).unwrap();
    let tiled = GpuEmpirical::with_tiling(gpu, &data, 64, 32).unwrap();
    assert_eq!(
        (single.block_rows(), tiled.block_rows(), tiled.tile_rows()),
        (150, 64, 32)
    );
    for (alpha, sigma) in [(1.0, 2.0), (0.6, 0.5), (1.0, 0.7)] {
        let y = Mat::from_fn(b, d, |p, l| {
            if p % 5 == 4 {
                3.0 * rng.normal()
            } else {
                alpha * data[((p * 37) % n, l)] + sigma * rng.normal()
            }
        });
        for emp in [&single, &tiled] {
            let (reference, bound) =
                denoise_reference(&data, &y, alpha, sigma, emp.block_rows()).unwrap();
            let worst = (0..b)
                .flat_map(|p| (0..d).map(move |l| (p, l)))
                .map(|(p, l)| bound[(p, l)])
                .fold(0.0, f64::max);
            assert!(
                worst < 0.01 * max_x,
                "bound {worst} is vacuous at σ = {sigma}"
            );
            let host = emp.denoise(&y, alpha, sigma).unwrap();
            let gy = GpuMat::upload(gpu, "queries", &y).unwrap();
            let gout = GpuMat::poisoned(gpu, "denoised", b, d).unwrap();
            emp.denoise_resident(&gy, &gout, alpha, sigma).unwrap();
            let resident = gout.download(gpu).unwrap();
            let mut ratio = 0.0f64;
            for p in 0..b {
                for l in 0..d {
                    let (want, e) = (reference[(p, l)], bound[(p, l)]);
                    for (route, got) in [("host", host[(p, l)]), ("resident", resident[(p, l)])] {
                        ratio = ratio.max((got - want).abs() / e);
                        assert!(
                            (got - want).abs() <= e,
                            "α={alpha} σ={sigma} blocks of {} {route}: x̂[{p},{l}] {got} vs {want} (bound {e})",
                            emp.block_rows()
                        );
                    }
                }
            }
            eprintln!(
                "α={alpha} σ={sigma} blocks of {}: max bound {worst:.2e}, worst error/bound {ratio:.2e}",
                emp.block_rows()
            );
        }
    }
    let y = Mat::from_fn(3, d, |_, _| 1.0);
    assert!(single.denoise(&y, 1.0, 0.0).is_err());
    assert!(single.denoise(&y, -1.0, 1.0).is_err());
    assert!(single.denoise(&Mat::zeros(3, d + 1), 1.0, 1.0).is_err());
    let gy = GpuMat::upload(gpu, "queries", &y).unwrap();
    assert!(single.denoise_resident(&gy, &gy, 1.0, 1.0).is_err());
    let wrong = GpuMat::poisoned(gpu, "wrong", 2, d).unwrap();
    assert!(single.denoise_resident(&gy, &wrong, 1.0, 1.0).is_err());
    assert!(GpuEmpirical::new(gpu, &Mat::zeros(0, 3)).is_err());
    assert!(GpuEmpirical::with_tiling(gpu, &data, 0, 1).is_err());
}

/// Smoke test of `diffusion-theorems bench` at tiny sizes: the FLOP and byte counts of known
/// sizes, every workload runs on the GPU (and its CPU path where it has one), and the JSON
/// report carries the fields the table and `benches/pytorch_reference.py` comparisons rely on.
#[test]
fn bench_module_reports_json_fields_and_flop_counts() {
    use diffusion_theorems::bench::workloads::{
        Covariance, DdimAffine, EmpiricalDenoiser, Gemm, GmmPosterior, PolynomialFeatures,
    };
    use diffusion_theorems::bench::{self, Scale, Settings, Workload};
    let gpu = gpu();
    assert_eq!(Gemm { n: 100 }.flops(), 2e6);
    assert_eq!(Gemm { n: 100 }.bytes(), 12e4);
    assert_eq!(Covariance { n: 10, d: 20 }.flops(), 8000.0);
    assert_eq!(Covariance { n: 10, d: 20 }.bytes(), 4.0 * (200.0 + 400.0));
    assert_eq!(Covariance { n: 1000, d: 12288 }.tile_rows(1 << 25), 2730);
    assert_eq!(
        GmmPosterior {
            batch: 10,
            d: 2,
            k: 3
        }
        .flops(),
        960.0
    );
    assert_eq!(EmpiricalDenoiser { b: 2, n: 3, d: 4 }.flops(), 132.0);
    assert_eq!(
        PolynomialFeatures {
            m: 5,
            d: 6,
            w: 7,
            k: 3
        }
        .flops(),
        560.0
    );
    assert_eq!(
        DdimAffine {
            n: 2,
            steps: 3,
            d: 4
        }
        .flops(),
        312.0
    );
    let workloads: Vec<Box<dyn Workload>> = vec![
        Box::new(Gemm { n: 33 }),
        Box::new(Covariance { n: 7, d: 19 }),
        Box::new(GmmPosterior {
            batch: 65,
            d: 3,
            k: 2,
        }),
        Box::new(EmpiricalDenoiser { b: 5, n: 9, d: 13 }),
        Box::new(PolynomialFeatures {
            m: 17,
            d: 11,
            w: 6,
            k: 3,
        }),
        Box::new(DdimAffine {
            n: 3,
            steps: 4,
            d: 10,
        }),
    ];
    for w in &workloads {
        if let Some(mut cpu) = w.cpu() {
            cpu.run().unwrap();
        }
    }
    let settings = Settings {
        scale: Scale::Quick,
        warmup: 0,
        runs: 2,
        filter: None,
    };
    let report = bench::run(gpu, &settings, &workloads).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    for field in [
        "version",
        "adapter",
        "device_type",
        "clock",
        "scale",
        "runs",
    ] {
        assert!(!json[field].is_null(), "missing {field}");
    }
    assert!(json["peaks"]["copy_gbs"].as_f64().unwrap() > 0.0);
    assert!(json["peaks"]["gemm_tflops"].as_f64().unwrap() > 0.0);
    assert_eq!(json["peaks"]["gemm_size"], "n=33");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 1 + workloads.len());
    assert_eq!(results[0]["name"], "copy");
    for (r, w) in results[1..].iter().zip(&workloads) {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["name"], w.name());
        assert_eq!(r["size"], w.size().as_str());
        assert_eq!(r["flops"].as_f64().unwrap(), w.flops());
        assert_eq!(r["bytes"].as_f64().unwrap(), w.bytes());
        let secs = r["seconds"].as_f64().unwrap();
        assert!(
            secs > 0.0 && r["wall_seconds"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        let tflops = r["tflops"].as_f64().unwrap();
        assert!((tflops - w.flops() / secs / 1e12).abs() <= 1e-12 * tflops.max(1.0));
        assert!(
            r["flop_fraction"].as_f64().is_some() && r["bandwidth_fraction"].as_f64().is_some()
        );
    }
    let table = bench::table(&report);
    for w in &workloads {
        assert!(table.contains(w.name()), "{table}");
    }
    let only = Settings {
        filter: Some("gemm".into()),
        ..settings
    };
    let filtered = bench::run(gpu, &only, &workloads).unwrap();
    assert_eq!(filtered.results.len(), 2);
    assert!(bench::measure(gpu, workloads[0].as_ref(), 0, 0).is_err());
}

/// The GEMM plan ([`GemmPlan::choose`]): the 128×128 kernel for large outputs whose 128-grid
/// pads little and (split along k where that applies) fills an H100's 132 SMs, where the
/// adapter's workgroup limits allow it; the 64×64 and 16×16 kernels otherwise; split-K exactly
/// for grids of fewer than 264 tiles with k ≥ 512, into `min(⌈264/tiles⌉, ⌊k/256⌋)` slices. Checked on an H100's limits, on WebGPU's default limits
/// (16 KiB of workgroup memory: too little for the 128×128 kernel), on this adapter, and on the
/// dispatches a prepared product records — so the parity tests cannot silently run another
/// kernel than the one they name.
#[test]
fn gemm_plan_picks_large_kernel_and_split_k() {
    use diffusion_theorems::gpu::gemm::{split_k, GpuMat, Product};
    use GemmKernel::{Blocked, Large, Tiled};
    let gpu = gpu();
    let limits = gpu.limits();
    println!(
        "{}: workgroup memory {} B, {} invocations, bindings {} B",
        gpu.backend_name(),
        limits.max_compute_workgroup_storage_size,
        limits.max_compute_invocations_per_workgroup,
        gpu.max_binding_bytes()
    );
    let h100 = wgpu::Limits {
        max_compute_workgroup_storage_size: 48 << 10,
        max_compute_invocations_per_workgroup: 1024,
        max_storage_buffer_binding_size: (2 << 30) - 4,
        max_buffer_size: 4 << 30,
        ..wgpu::Limits::default()
    };
    let plan = |kernel, splits| GemmPlan { kernel, splits };
    // (m, n, k) → plan on an H100
    for (shape, expect) in [
        ((4096, 4096, 4096), plan(Large, 1)),
        ((1000, 1000, 1000), plan(Large, 3)),
        ((128, 1000, 12288), plan(Large, 33)),
        ((512, 512, 512), plan(Blocked, 2)), // 16·2 = 32 Large workgroups would not fill
        ((128, 1000, 1024), plan(Blocked, 4)), // nor 8·4 = 32
        ((300, 300, 64), plan(Blocked, 1)),
        ((130, 257, 67), plan(Blocked, 1)),
        ((129, 131, 1000), plan(Blocked, 3)),
        ((40, 7, 300), plan(Tiled, 1)),
        ((1, 200, 5000), plan(Tiled, 19)),
    ] {
        assert_eq!(
            GemmPlan::choose(&h100, shape),
            expect,
            "{shape:?} on an H100"
        );
    }
    let webgpu = wgpu::Limits::default();
    assert!(!Large.fits(&webgpu) && Blocked.fits(&webgpu));
    assert_eq!(
        GemmPlan::choose(&webgpu, (4096, 4096, 4096)),
        plan(Blocked, 1)
    );
    assert_eq!(
        GemmPlan::choose(&webgpu, (128, 1000, 12288)),
        plan(Blocked, 9)
    );
    // this adapter: the rule applied to its own limits, and what a prepared product records
    assert!(
        Large.fits(limits),
        "{} cannot run the 128×128 kernel (needs {} B of workgroup memory, 256 invocations): \
         the large-kernel parity tests would not run it",
        gpu.backend_name(),
        Large.workgroup_bytes()
    );
    assert_eq!(
        GemmPlan::choose(limits, (128, 1000, 12288)),
        plan(Large, split_k(Large, limits, (128, 1000, 12288)))
    );
    let a = GpuMat::poisoned(gpu, "a", 128, 12288).unwrap();
    let b = GpuMat::poisoned(gpu, "b", 12288, 1000).unwrap();
    let c = GpuMat::poisoned(gpu, "c", 128, 1000).unwrap();
    let product = Product::new((&a, false), (&b, false), &c);
    let split = product.prepare(gpu).unwrap();
    assert_eq!(split.plan(), plan(Large, 33)); // 8 tiles, ⌈264/8⌉ = 33
    let names: Vec<_> = split
        .dispatches()
        .iter()
        .map(|(shader, _, groups)| (shader.entry_point, *groups))
        .collect();
    assert_eq!(names[0], ("gemm_large", [8, 1, 33]));
    assert_eq!(names[1].0, shaders::GEMM_SPLIT_REDUCE.entry_point);
    assert_eq!(names.len(), 2);
    let one = product.with_splits(1).prepare(gpu).unwrap();
    assert_eq!(one.dispatches().len(), 1);
    let tiled = product.with_kernel(Tiled).prepare(gpu).unwrap();
    assert_eq!(tiled.plan(), plan(Tiled, 1)); // 8·63 = 504 tiles: no split
    for bad in [0, 769] {
        // 12288 = 768 k-steps of 16: at most 768 slices
        let e = product.with_splits(bad).prepare(gpu).err().unwrap();
        assert!(e.to_string().contains("slices"), "{e}");
    }
}

/// The 128×128 register-blocked kernel (forced: these ragged shapes pad too much for the
/// automatic rule to pick it) against the f64 reference with every epilogue, all four
/// transposes, with and without `β·D`, outputs poisoned (see `check_gemm_epilogues`). m×k×n =
/// 130×67×257 loads every operand word by word (no stored row length is a multiple of 4),
/// 132×68×260 every operand by vec4, 128×68×257 mixes the two (B by words, Bᵀ by vec4); none is
/// a multiple of the 128×128×16 tile in every dimension.
#[test]
fn gemm_large_kernel_matches_f64_reference() {
    let mut rng = Rng::new(0x1a28, 0);
    let large = GemmPlan {
        kernel: GemmKernel::Large,
        splits: 1,
    };
    for shape in [(130, 67, 257), (132, 68, 260), (128, 68, 257)] {
        check_gemm_epilogues(
            &mut rng,
            shape,
            Route::Planned(Some(large.kernel), Some(1)),
            Some(large),
        );
    }
}

/// Split-K against the f64 reference with every epilogue, all four transposes, with and without
/// `β·D`, outputs and workspace poisoned, within the same bound as one pass (module doc of
/// `gpu::gemm`: no term meets more than k − 1 additions): m×k×n = 129×1000×131 with S = 3
/// forced (the automatic rule's choice too: 64×64 kernel, 9 tiles, S = ⌊1000/256⌋ = 3; see
/// `gemm_plan_picks_large_kernel_and_split_k`), 1×5000×200 by the automatic rule (16×16
/// kernel: 13 tiles, S = min(⌈264/13⌉, ⌊5000/256⌋) = 19), and 132×200×129 with S = 3 forced
/// on the 128×128 kernel (slices of 64, 64 and 72; vec4 and word loads mixed). The split sum is
/// deterministic: a second run of each plain split product is bit-identical.
#[test]
fn gemm_split_k_matches_f64_reference() {
    let mut rng = Rng::new(0x5b17, 0);
    let plan = |kernel, splits| GemmPlan { kernel, splits };
    check_gemm_epilogues(
        &mut rng,
        (129, 1000, 131),
        Route::Planned(None, Some(3)),
        Some(plan(GemmKernel::Blocked, 3)),
    );
    check_gemm_epilogues(
        &mut rng,
        (1, 5000, 200),
        Route::Planned(None, None),
        Some(plan(GemmKernel::Tiled, 19)),
    );
    check_gemm_epilogues(
        &mut rng,
        (132, 200, 129),
        Route::Planned(Some(GemmKernel::Large), Some(3)),
        Some(plan(GemmKernel::Large, 3)),
    );
}

/// A product cut into blocks (`gemm_fused_tiled`, the route `gemm_fused` takes when operands
/// exceed a storage binding) stays within the one-pass bounds of `gemm_fused_reference`: ragged
/// blocks of C, and the inner dimension cut into slices accumulated on the GPU through `β·D`
/// with the epilogue (its bias, scale or H cut to the block) applied by the last slice only —
/// the rounding count at `GemmTiling` — for every epilogue, transpose and `β·D`, outputs
/// poisoned first. k = 50 in slices of 16, 16, 16 and 2; C 23×12 in blocks of 7×5 (ragged
/// 2×2 corner); then whole-k blocks. A zero block size is a typed error naming it.
#[test]
fn gemm_cut_into_blocks_matches_f64_reference() {
    let mut rng = Rng::new(0x711e, 0);
    for tiling in [
        GemmTiling {
            rows: 7,
            cols: 5,
            depth: 16,
        },
        GemmTiling {
            rows: 16,
            cols: 16,
            depth: 50,
        },
    ] {
        check_gemm_epilogues(&mut rng, (23, 50, 12), Route::Tiled(tiling), None);
    }
    let a = Mat::from_fn(3, 4, |_, _| rng.normal());
    let e = diffusion_theorems::gpu::gemm::gemm_fused_tiled(
        gpu(),
        &diffusion_theorems::gpu::gemm::HostProduct::new((&a, false), (&a, true)),
        GemmTiling {
            rows: 2,
            cols: 0,
            depth: 16,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("cols"), "{e}");
}

proptest::proptest! {
    #![proptest_config(common::config(256))]
    /// `GemmTiling::choose` fits every operand block of an m×n×k product in one storage binding
    /// of W words (op(A)'s `rows·depth`, op(B)'s `depth·cols`, C's, D's and H's `rows·cols`) and
    /// every grid within `max_groups` 16-wide tiles, and cuts nothing when the whole product
    /// already fits.
    #[test]
    fn gemm_tiling_fits_every_block_in_one_binding(
        w in 256usize..1 << 20,
        max_groups in 1usize..70_000,
        m in 0usize..1 << 18,
        n in 0usize..1 << 18,
        k in 0usize..1 << 18,
    ) {
        let t = GemmTiling::choose(w, max_groups, (m, n, k)).unwrap();
        proptest::prop_assert!(t.rows >= 1 && t.cols >= 1 && t.depth >= 1, "{t:?}");
        proptest::prop_assert!(t.rows * t.depth <= w && t.depth * t.cols <= w, "{t:?}");
        proptest::prop_assert!(t.rows * t.cols <= w, "{t:?}");
        proptest::prop_assert!(t.rows.max(t.cols) <= 16 * max_groups, "{t:?}");
        proptest::prop_assert!(t.depth >= k || t.depth.is_multiple_of(16), "{t:?}");
        let fits = m * k <= w && k * n <= w && m * n <= w && m.max(n) <= 16 * max_groups;
        if fits && m > 0 && n > 0 && k > 0 {
            proptest::prop_assert_eq!(t, GemmTiling { rows: m, cols: n, depth: k });
        }
    }
}

/// An operand larger than the adapter's storage binding (128 MiB on llvmpipe) cannot be one
/// resident matrix (`GpuMat::upload` returns a typed `GpuLimit`), but `gemm_fused` cuts the
/// product into blocks that fit (`GemmTiling::choose`) instead of refusing it, and the result is
/// within the one-pass f32 bound. Sized from the adapter: A has ⌊W/1024⌋ + 100 rows of
/// k = 1024 (W the binding in words); adapters with bindings over 256 MiB only check that such a
/// product would be one block there, as the host matrices would take gigabytes.
#[test]
fn gemm_larger_than_a_storage_binding_is_cut_not_refused() {
    use diffusion_theorems::gpu::gemm::{gemm_fused, gemm_fused_reference, GpuMat, HostProduct};
    let gpu = gpu();
    let words = (gpu.max_binding_bytes() / 4) as usize;
    let k = 1024;
    let (m, n) = (words / k + 100, 3);
    let tiling = GemmTiling::choose(
        words,
        gpu.limits().max_compute_workgroups_per_dimension as usize,
        (m, n, k),
    )
    .unwrap();
    assert!(tiling.rows < m && tiling.depth == k, "{tiling:?}");
    if words > 1 << 26 {
        println!("binding of {words} words: skipping the {m}×{k} operand");
        return;
    }
    let mut rng = Rng::new(0xb16a, 0);
    let a = Mat::from_fn(m, k, |_, _| rng.normal());
    let b = Mat::from_fn(k, n, |_, _| rng.normal());
    let refused = GpuMat::upload(gpu, "A", &a).err().unwrap();
    assert!(refused.to_string().contains("binding limit"), "{refused}");
    let p = HostProduct::new((&a, false), (&b, false));
    let out = gemm_fused(gpu, &p).unwrap();
    let (reference, bound) = gemm_fused_reference(&p).unwrap();
    assert_within_bound("C", &out, &reference, &bound);
}
