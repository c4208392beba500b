//! `sure`: Stein's unbiased risk estimate and the MSE-optimality of the posterior mean. See
//! theorems/sure.md.

use crate::common;

use common::{assert_controlled, config, gmm, gpu};
use diffusion_theorems::denoisers::divergence::{
    hutchinson_divergence, hutchinson_divergence_bias, rademacher_probes,
};
use diffusion_theorems::denoisers::{Affine, Bayes, Denoiser, Mlp, SoftThreshold};
use diffusion_theorems::gpu::denoiser_jvp::JvpDenoiser;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::{PhiloxStream, Rng};
use diffusion_theorems::stats::two_sided_z;
use diffusion_theorems::targets::random_gmm;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::{self, sure, Depth};
use proptest::prelude::*;

/// Random square matrix entries and vectors (integers/8 are exact, the rest uniform).
const ENTRY: std::ops::Range<f64> = -2.0..2.0;

proptest! {
    #![proptest_config(config(256))]

    /// Affine f(y) = Wy + b (W not symmetric) on N(μ, Σ) with Σ = FFᵀ of any rank: the closed
    /// form of E‖x − f(y)‖² (joint law of x and the noise) equals E‖y − f(y)‖² + 2σ² tr W − σ²d
    /// (law of y) to f64 rounding.
    #[test]
    fn affine_sure_sides_agree_to_rounding(
        (d, w, b, mu, f, r) in (1usize..=8).prop_flat_map(|d| (
            Just(d),
            proptest::collection::vec(ENTRY, d * d),
            proptest::collection::vec(ENTRY, d),
            proptest::collection::vec(-3.0f64..3.0, d),
            proptest::collection::vec(-1.0f64..1.0, d * d),
            0..=d,
        )),
        log_sigma in -2.0f64..1.0,
    ) {
        let sigma = 10f64.powf(log_sigma);
        let den = Affine::new(Mat::from_fn(d, d, |i, j| w[i * d + j]), b).unwrap();
        let factor = Mat::from_fn(d, r, |i, j| f[i * d + j]);
        let cov = &factor * factor.transpose();
        let c = sure::affine_gaussian(&den, &mu, &cov, sigma).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }

    /// Prop. 2 in closed form: for a Gaussian target and f = f* + (ΔW y + Δb),
    /// MSE(f) = MSE(f*) + E‖ΔW y + Δb‖², to rounding and the solve's error.
    #[test]
    fn posterior_mean_is_mse_optimal_gaussian_closed_form(
        (d, dw, db, mu, f) in (1usize..=8).prop_flat_map(|d| (
            Just(d),
            proptest::collection::vec(ENTRY, d * d),
            proptest::collection::vec(ENTRY, d),
            proptest::collection::vec(-3.0f64..3.0, d),
            proptest::collection::vec(-1.0f64..1.0, d * d),
        )),
        log_sigma in -2.0f64..1.0,
    ) {
        let sigma = 10f64.powf(log_sigma);
        let factor = Mat::from_fn(d, d, |i, j| f[i * d + j]);
        let mut cov = &factor * factor.transpose();
        for i in 0..d {
            cov[(i, i)] += 0.05;
        }
        let dw = Mat::from_fn(d, d, |i, j| dw[i * d + j]);
        let c = sure::optimality_gaussian(&mu, &cov, sigma, &dw, &db).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }

    /// The chain-rule Jacobian-vector product of the GMM Bayes denoiser (the formula the GPU
    /// kernel runs) equals ∇f* z from central differences of Bayes' rule, within the
    /// central-difference error bound plus the f64 rounding of the formula.
    #[test]
    fn gmm_bayes_jvp_chain_rule_matches_central_differences(
        target in gmm(1..=6, 1..=4),
        log_sigma in -0.5f64..0.5,
        seed in 0u64..1000,
    ) {
        let sigma = 10f64.powf(log_sigma);
        let d = target.dim();
        let mut rng = Rng::new(seed, 0);
        let y: Vec<f64> = target
            .sample(&mut rng, 1)
            .row(0)
            .iter()
            .map(|v| v + sigma * rng.normal())
            .collect();
        let z = rademacher_probes(PhiloxStream::new(seed, 1), 1, d);
        let z: Vec<f64> = (0..d).map(|j| z[(0, j)]).collect();
        let bayes = Bayes::new(target.clone());
        let point = JvpDenoiser::from(&bayes).reference(&y, &z, sigma).unwrap();
        // the f32 analysis of the formula, rescaled from u = 2⁻²⁴ to f64's ε, bounds its f64
        // rounding (Rust's exp is more accurate than WGSL's, so this over-covers)
        let rescale = f64::EPSILON / diffusion_theorems::numerics::F32_UNIT_ROUNDOFF;
        let jz = point.jvp;
        let jac = bayes.jacobian(&y, sigma).unwrap();
        for (i, &chain) in jz.iter().enumerate() {
            let fd: f64 = (0..d).map(|j| jac.value[(i, j)] * z[j]).sum();
            let err: f64 = (0..d).map(|j| jac.error[(i, j)]).sum::<f64>()
                + rescale * point.jvp_bound[i];
            prop_assert!((fd - chain).abs() <= err, "i={i}: fd {fd} chain rule {chain} bound {err}");
        }
    }
}

/// Hides an architecture's exact Jacobian, so the trait's central-difference default is used.
struct BlackBox<'a>(&'a dyn Denoiser);

impl Denoiser for BlackBox<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn denoise(&self, y: &[f64], sigma: f64) -> diffusion_theorems::Result<Vec<f64>> {
        self.0.denoise(y, sigma)
    }
}

/// The two exact divergence routes agree: d central-difference JVPs (the `Denoiser` default,
/// with Richardson's error bound) against the closed-form Jacobians of the MLP, the cubic power
/// map and the affine map, for d up to 12.
#[test]
fn divergence_by_central_differences_matches_closed_form_jacobians() {
    let mut rng = Rng::new(0xd1f, 0);
    for d in [1usize, 4, 12] {
        let target = random_gmm(&mut rng, d, 2).unwrap();
        let (_, _, mlp, power) = sure::default_denoisers(&target, 1.0, &mut rng).unwrap();
        let affine = sure::random_affine(&mut rng, d).unwrap();
        let dens: [&dyn Denoiser; 3] = [&mlp, &power, &affine];
        for den in dens {
            let y = rng.normals(d);
            let exact = den.divergence(&y, 1.0).unwrap();
            let numeric = BlackBox(den).divergence(&y, 1.0).unwrap();
            assert!(
                (exact.value - numeric.value).abs() <= exact.error + numeric.error,
                "d={d}: exact {exact:?} vs central differences {numeric:?}"
            );
        }
    }
}

/// Non-linear f — the GMM Bayes denoiser, soft thresholding, a random tanh MLP and a random cubic
/// power map — on random GMMs (d ∈ {2, 5}), 2¹³ paired samples each on the GPU with one
/// Hutchinson probe per sample: the mean of D = ‖x−f‖² − ‖y−f‖² − 2σ²zᵀ∇f z + σ²d is zero
/// within z·SE + the f32 bias bound, family-wise false-failure probability 1e-6 over the
/// 2 × 2 × 4 cases (Bonferroni); the same test rejects the planted D' with σ² for 2σ².
#[test]
fn nonlinear_sure_holds_by_paired_gpu_monte_carlo() {
    let gpu = gpu();
    let mut rng = Rng::new(0x5e5e, 0);
    let alpha = 1e-6 / 16.0;
    let mut case = 0;
    let mut cases = Vec::new();
    for &d in &[2usize, 5] {
        for &sigma in &[0.3, 1.5] {
            let target = random_gmm(&mut rng, d, 3).unwrap();
            let (bayes, soft, mlp, power) =
                sure::default_denoisers(&target, sigma, &mut rng).unwrap();
            for den in [
                JvpDenoiser::from(&bayes),
                JvpDenoiser::from(&soft),
                JvpDenoiser::from(&mlp),
                JvpDenoiser::from(&power),
            ] {
                case += 1;
                let mc = sure::sure_monte_carlo(gpu, &den, &target, sigma, 1 << 13, case).unwrap();
                let c = mc.controlled(alpha);
                assert!(c.check.passed(), "d={d} σ={sigma} {den:?}: {mc:?} {c:?}");
                cases.push(c);
                // the estimate is not vacuous: the standard error is small against the MSE
                assert!(
                    mc.difference.std_error < 0.1 * mc.mse.mean.max(1e-3),
                    "{mc:?}"
                );
            }
        }
    }
    assert!(theorems::power(&cases) > 1.0, "{}", theorems::power(&cases));
}

/// The planted variant is what it claims to be (the factor 2 dropped), not merely something that
/// fails: for an affine f = Wy + b, `D' = D + σ²zᵀWz`, so E D' = σ² tr W (E D = 0 by SURE and
/// E zᵀWz = tr W for Rademacher z). On a random 3-D GMM, 2¹³ paired GPU samples: |mean D' −
/// σ² tr W| ≤ z(1e-6)·SE + the f32 bias bound.
#[test]
fn planted_difference_has_mean_sigma2_trace_for_affine_f() {
    let gpu = gpu();
    let mut rng = Rng::new(0x9d1f, 0);
    let target = random_gmm(&mut rng, 3, 2).unwrap();
    let w = Mat::from_fn(3, 3, |i, j| {
        if i == j {
            0.6
        } else {
            0.1 * (i + 2 * j) as f64
        }
    });
    let affine = Affine::new(w.clone(), vec![0.2, -0.1, 0.3]).unwrap();
    let sigma = 0.8;
    let mc = sure::sure_monte_carlo(gpu, &JvpDenoiser::from(&affine), &target, sigma, 1 << 13, 7)
        .unwrap();
    let expected = sigma * sigma * (0..3).map(|i| w[(i, i)]).sum::<f64>();
    let planted = &mc.planted_difference;
    let tolerance = two_sided_z(1e-6) * planted.std_error + planted.bias_bound;
    assert!(
        (planted.mean - expected).abs() <= tolerance,
        "mean D' = {} vs σ² tr W = {expected} (tolerance {tolerance}): {mc:?}",
        planted.mean
    );
}

/// Hutchinson's estimate of tr ∇f on the GPU (4096 Rademacher probes) for a random tanh MLP in
/// d = 48 agrees with the exact trace of its closed-form Jacobian within z·SE (α = 1e-6) plus
/// the f32 bound and the Jacobian's rounding bound.
#[test]
fn hutchinson_gpu_divergence_matches_exact_trace() {
    let gpu = gpu();
    let d = 48;
    let mlp = Mlp::random(&mut Rng::new(0x4a7c, 0), d, 64).unwrap();
    let y = Rng::new(0x4a7c, 1).normals(d);
    let exact = mlp.divergence(&y, 1.0).unwrap();
    let stream = PhiloxStream::new(0x4a7c, 2);
    let den = JvpDenoiser::from(&mlp);
    let est = hutchinson_divergence(gpu, &den, &y, 1.0, 4096, stream).unwrap();
    let bias =
        hutchinson_divergence_bias(&den, &y, 1.0, &rademacher_probes(stream, 4096, d)).unwrap();
    let tolerance = two_sided_z(1e-6) * est.std_error + bias + exact.error;
    assert!(
        (est.mean - exact.value).abs() <= tolerance,
        "Hutchinson {est:?} vs exact {exact:?} (tolerance {tolerance})"
    );
    assert!(est.std_error > 0.0 && est.std_error < 0.05 * exact.value.abs().max(1.0));
}

/// SURE as a per-image risk estimate: on one observation of d = 2¹⁴ coordinates from the
/// spike-and-slab prior 0.9δ₀ + 0.1N(0, 9) at each σ ∈ {0.5, 1, 2}, the soft-threshold level
/// minimising SURE over τ ∈ σ·{0, 0.1, …, 3} has true risk within the derived margin
/// (family-wise α = 1e-6 over the three σ) of the risk-minimising level, and the margin is a
/// small fraction of the risk; the level chosen by the planted SURE (factor 2 dropped) is
/// rejected at some σ.
#[test]
fn sure_chosen_soft_threshold_is_near_risk_optimal() {
    let prior = sure::sparse_prior().unwrap();
    let mut cases = Vec::new();
    for sigma in sure::THRESHOLD_SIGMAS {
        let levels = sure::threshold_levels(sigma);
        let alpha = 1e-6 / sure::THRESHOLD_SIGMAS.len() as f64;
        let sel = sure::choose_soft_threshold(&prior, 1 << 14, sigma, &levels, 11, alpha).unwrap();
        let c = &sel.stein;
        assert!(
            c.excess_risk >= 0.0 && c.excess_risk <= c.margin,
            "σ={sigma}: {c:?}"
        );
        // the margin is informative: under 2% of the risk at τ = 0 (which is σ²d)
        assert!(
            c.margin < 0.02 * sigma * sigma * (1 << 14) as f64,
            "σ={sigma}: {c:?}"
        );
        assert!(
            c.oracle_level > 0.5 * sigma,
            "thresholding should help a sparse signal: {c:?}"
        );
        cases.push(sel.controlled());
    }
    assert!(theorems::power(&cases) > 1.0, "{}", theorems::power(&cases));
}

/// The verify row [`sure::AFFINE`] on the default cases, and the SURE with σ² tr W for
/// 2σ² tr W rejected.
#[test]
fn affine_row_passes_and_rejects_dropped_factor_two() {
    assert_controlled(&sure::affine_cases(Depth::Default).unwrap());
}

/// The verify row [`sure::OPTIMALITY`] on the default cases, and the Pythagorean identity for
/// the Wiener filter at noise variance σ (not the posterior mean) rejected.
#[test]
fn optimality_row_passes_and_rejects_wrong_wiener_gain() {
    assert_controlled(&sure::optimality_cases(Depth::Default).unwrap());
}

/// Prop. 2 on mixtures by Monte Carlo (CPU, f64): the posterior-mean error is orthogonal to a
/// perturbation Δ(y) (a random tanh MLP), so MSE(f* + Δ) − MSE(f*) − E‖Δ‖² has mean zero
/// within z·SE (family-wise α = 1e-6 over 4 cases).
#[test]
fn posterior_mean_error_is_orthogonal_to_perturbations() {
    let mut rng = Rng::new(0x0b7, 0);
    for (case, &(d, sigma)) in [(1usize, 0.3), (2, 1.0), (3, 0.5), (4, 2.0)]
        .iter()
        .enumerate()
    {
        let target = random_gmm(&mut rng, d, 3).unwrap();
        let delta = Mlp::random(&mut rng, d, 16).unwrap();
        let est =
            sure::optimality_monte_carlo(&target, &delta, sigma, 1 << 13, case as u64).unwrap();
        assert!(
            est.mean.abs() <= two_sided_z(1e-6 / 4.0) * est.std_error,
            "d={d} σ={sigma}: {est:?}"
        );
    }
}

/// Bad input is a typed error naming the value, never a panic.
#[test]
fn bad_inputs_are_typed_errors() {
    let w = Mat::from_fn(2, 2, |i, j| (i + j) as f64);
    let den = Affine::new(w.clone(), vec![0.0, 1.0]).unwrap();
    let cov = Mat::identity(2, 2);
    let err = sure::affine_gaussian(&den, &[0.0, 0.0], &cov, -1.0).unwrap_err();
    assert!(err.to_string().contains("-1"), "{err}");
    let err = sure::affine_gaussian(&den, &[0.0], &cov, 1.0).unwrap_err();
    assert!(err.to_string().contains("mean"), "{err}");
    let err = sure::affine_gaussian(&den, &[f64::NAN, 0.0], &cov, 1.0).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    assert!(Affine::new(Mat::zeros(2, 3), vec![0.0, 0.0]).is_err());
    assert!(SoftThreshold::new(2, -0.5).is_err());
    let prior = sure::sparse_prior().unwrap();
    assert!(sure::choose_soft_threshold(&prior, 16, 1.0, &[], 0, 1e-6).is_err());
    let err = den.denoise(&[1.0, f64::INFINITY], 1.0).unwrap_err();
    assert!(err.to_string().contains("inf"), "{err}");
}

/// Reproducibility: every verify row of `sure` passes and reproduces its recorded numbers —
/// cases, power, and the geometric means over all cases of the tolerance and of the planted
/// variant's residual (`tests/common/pins/sure.json`). A changed allowance or negative control in any
/// case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("sure");
}
