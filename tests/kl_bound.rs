//! `kl_bound`: D_KL(p‖p_θ) ≤ ∫(MSE(f_θ) − MSE(f*))σ⁻³dσ, with equality for Bayes denoisers of a
//! model. See theorems/kl_bound.md.

mod common;

use common::config;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::targets::{GaussianMixture, Target};
use diffusion_theorems::theorems::kl_bound::{self, Gaussian, RotatedFamily};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(64))]

    /// Gaussians p and q in d = 1–5 with random, non-commuting covariances and random means:
    /// KL(p‖q) in closed form equals the integral of q's Bayes denoiser's MSE gap, by
    /// double-exponential quadrature — equality, not just the inequality.
    #[test]
    fn gaussian_kl_equals_integrated_mse_gap(d in 1usize..=5, seed in 0u64..10_000) {
        let mut rng = Rng::new(seed, 0);
        let p = Gaussian::new(rng.normals(d), kl_bound::random_spd(&mut rng, d)).unwrap();
        let q = Gaussian::new(rng.normals(d), kl_bound::random_spd(&mut rng, d)).unwrap();
        let check = kl_bound::gaussian_equality(&p, &q).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }
}

/// The 1-D case in closed form: for p = N(0, a), q = N(0, b) the integral is
/// ∫₀^∞ (b − a)²/(2(a + s)(b + s)²) ds = ½(a/b − 1 − ln(a/b)) = KL, so the quadrature and the
/// closed form must both agree with it.
#[test]
fn one_dimensional_gaussian_integral_matches_its_antiderivative() {
    for &(a, b) in &[(1.0, 2.0), (0.3, 5.0), (4.0, 0.5)] {
        let p = Gaussian::new(vec![0.0], Mat::from_fn(1, 1, |_, _| a)).unwrap();
        let q = Gaussian::new(vec![0.0], Mat::from_fn(1, 1, |_, _| b)).unwrap();
        let exact: f64 = 0.5 * (a / b - 1.0 - (a / b).ln());
        let kl = kl_bound::gaussian_kl(&p, &q).unwrap();
        let integral = kl_bound::gaussian_gap_integral(&p, &q).unwrap();
        // 16ε relative: a handful of operations on O(1) numbers
        assert!(
            (kl - exact).abs() <= 16.0 * f64::EPSILON * (1.0 + exact),
            "{kl} vs {exact}"
        );
        assert!(
            (integral.value - exact).abs()
                <= 10.0 * integral.error + 64.0 * f64::EPSILON * (1.0 + exact),
            "{integral:?} vs {exact}"
        );
    }
}

/// A 1-D three-component mixture p against Gaussians q (moment-matched and not): KL by
/// quadrature of p log p equals the nested-quadrature integral of the MSE gap.
#[test]
fn mixture_kl_equals_integrated_mse_gap() {
    let p = kl_bound::three_component_mixture().unwrap();
    let (m, v) = (p.mean()[0], p.covariance()[(0, 0)]);
    for (qm, qv) in [(m, v), (0.0, 1.0), (1.0, 0.2)] {
        let check = kl_bound::mixture_equality(&p, qm, qv).unwrap();
        assert!(check.passed(), "q = N({qm}, {qv}): {check:?}");
    }
}

/// The reverse SDE driven by q's Bayes denoiser, started from p_T, generates q: KL(p‖p_θ) from
/// the moment ODE equals the bound's integral (equality), for d = 2, 3.
#[test]
fn reverse_sde_with_bayes_denoiser_attains_the_bound() {
    let mut rng = Rng::new(0x0c1d, 0);
    for d in [2usize, 3] {
        let p = Gaussian::new(rng.normals(d), kl_bound::random_spd(&mut rng, d)).unwrap();
        let q = Gaussian::new(rng.normals(d), kl_bound::random_spd(&mut rng, d)).unwrap();
        let family = RotatedFamily {
            model: q.clone(),
            rotation: kl_bound::rotation(d, 0.0),
        };
        let o = kl_bound::rotated_family(&family, &p).unwrap();
        assert!(
            (o.kl - o.bound.value).abs() <= o.kl_error + 10.0 * o.bound.error,
            "d={d}: {o:?}"
        );
        let direct = kl_bound::gaussian_kl(&p, &q).unwrap();
        assert!(
            (o.kl - direct).abs() <= o.kl_error,
            "d={d}: {o:?} vs KL(p‖q) = {direct}"
        );
    }
}

/// Documented case: a denoiser family with a non-symmetric Jacobian (q's Bayes denoiser plus a
/// rotation s/(1+s)²·R) is Bayes-optimal for no model. The bound still holds, strictly:
/// KL(p‖p_θ) of the reverse SDE's Gaussian law stays below the integral, and the slack grows
/// with the rotation.
#[test]
fn non_symmetric_linear_family_obeys_the_bound_strictly() {
    let mut rng = Rng::new(5, 0);
    let p = Gaussian::new(vec![0.5, -0.3], kl_bound::random_spd(&mut rng, 2)).unwrap();
    let q = Gaussian::new(vec![-0.2, 0.4], kl_bound::random_spd(&mut rng, 2)).unwrap();
    let mut last_slack = 0.0;
    for eps in [0.5, 2.0] {
        let family = RotatedFamily {
            model: q.clone(),
            rotation: kl_bound::rotation(2, eps),
        };
        let o = kl_bound::rotated_family(&family, &p).unwrap();
        let slack = o.bound.value - o.kl;
        assert!(slack > o.kl_error + 10.0 * o.bound.error, "ε={eps}: {o:?}");
        assert!(slack > last_slack, "ε={eps}: slack {slack} ≤ {last_slack}");
        last_slack = slack;
    }
}

/// Bad input is a typed error: singular or indefinite covariances (KL would be infinite),
/// mismatched dimensions, a mixture with a point mass.
#[test]
fn bad_inputs_are_typed_errors() {
    let err = Gaussian::new(vec![0.0, 0.0], Mat::zeros(2, 2)).unwrap_err();
    assert!(err.to_string().contains("positive definite"), "{err}");
    let err = Gaussian::new(vec![0.0], Mat::identity(2, 2)).unwrap_err();
    assert!(err.to_string().contains("covariance"), "{err}");
    let p = Gaussian::new(vec![0.0], Mat::identity(1, 1)).unwrap();
    let q = Gaussian::new(vec![0.0, 0.0], Mat::identity(2, 2)).unwrap();
    assert!(kl_bound::gaussian_kl(&p, &q).is_err());
    let spiky = GaussianMixture::new(
        &[0.5, 0.5],
        &[vec![0.0], vec![1.0]],
        &[Mat::zeros(1, 1), Mat::identity(1, 1)],
    )
    .unwrap();
    let err = kl_bound::mixture_equality(&spiky, 0.0, 1.0).unwrap_err();
    assert!(err.to_string().contains("positive variances"), "{err}");
}
