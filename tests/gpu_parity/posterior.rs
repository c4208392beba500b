//! Posterior-mean kernels: the GMM closed form, the Monte Carlo estimator, the empirical denoiser.

use super::*;

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
