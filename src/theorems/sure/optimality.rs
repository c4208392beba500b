//! Optimality of the posterior mean (Prop. 2): closed form on Gaussians, Monte Carlo on mixtures.

use super::affine::expected_residual_square;
use super::{check_gaussian, THEOREM};
use crate::denoisers::divergence::Estimate;
use crate::denoisers::linear::{affine_mse_with_magnitude, centring_bias};
use crate::denoisers::{Affine, Denoiser};
use crate::error::{ensure_len, ensure_sigma, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::numerics::gamma_f64;
use crate::rng::Rng;
use crate::stats::mean_and_std_error;
use crate::targets::{ClosedForm, GaussianMixture, Target};
use crate::theorems::{Check, Claim, Controlled, FalseFailure, ToleranceKind};

/// Row: Prop. 2 in closed form.
pub const OPTIMALITY: Claim = Claim {
    theorem: THEOREM,
    statement: "MSE(f* + Δ) = MSE(f*) + E‖Δ(y)‖² (Prop. 2), Gaussian targets, closed forms",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "γ_{2d+8} × the three closed forms' magnitudes + the solve's error on the \
                      Wiener gain, ‖ΔG‖_F ≤ 8dκε‖G‖_F, through the cross term (Higham §10)",
    planted_variant: "σ for σ² in the Wiener gain of f*: G = Σ(Σ + σI)⁻¹",
    false_failure: FalseFailure::None,
};

/// Prop. 2 for a Gaussian target in closed form: with `f* = μ + G(y − μ)`,
/// `G = Σ(Σ + σ²I)⁻¹`, and a perturbation `f = f* + (ΔW y + Δb)`, compares `MSE(f)` with
/// `MSE(f*) + E‖ΔW y + Δb‖²` (y ~ N(μ, Σ + σ²I)): the MSEs by [`affine_mse_with_magnitude`],
/// the gap by [`expected_residual_square`] (not the MSE side's [`expected_square_norm`](crate::denoisers::linear::expected_square_norm)).
/// Tolerance: the rounding of the three closed forms (`γ_{2d+8}` of their magnitudes) plus the
/// effect of the solve's error on G, `‖ΔG‖_F ≤ 8dκε‖G‖_F` (κ the condition number of
/// Σ + σ²I), which enters `MSE(f) − MSE(f*)` through the cross term
/// `2E⟨(G − Ĝ)(y − μ), ΔW y + Δb⟩ ≤ 2‖ΔG‖_F √(tr(Σ + σ²I)) √(E‖Δ(y)‖²)`.
/// Planted: the same check with `f*` the Wiener filter at noise variance σ (`G = Σ(Σ + σI)⁻¹`),
/// which is not the posterior mean unless σ = 1.
pub fn optimality_gaussian(
    mean: &[f64],
    cov: &Mat,
    sigma: f64,
    delta_w: &Mat,
    delta_b: &[f64],
) -> Result<Controlled> {
    ensure_sigma(sigma)?;
    let d = mean.len();
    check_gaussian(mean, cov, d)?;
    ensure_len("perturbation bias", delta_b, d)?;
    Ok(Controlled {
        check: pythagoras(mean, cov, sigma, sigma * sigma, delta_w, delta_b)?,
        planted: pythagoras(mean, cov, sigma, sigma, delta_w, delta_b)?,
    })
}

/// The check of [`optimality_gaussian`] with `f*` the Wiener filter `G = Σ(Σ + vI)⁻¹` for the
/// noise variance `gain_variance` = v (σ² for the posterior mean).
fn pythagoras(
    mean: &[f64],
    cov: &Mat,
    sigma: f64,
    gain_variance: f64,
    delta_w: &Mat,
    delta_b: &[f64],
) -> Result<Check> {
    let d = mean.len();
    let shifted = |v: f64| Mat::from_fn(d, d, |i, j| cov[(i, j)] + if i == j { v } else { 0.0 });
    let noisy = shifted(sigma * sigma);
    let gain_system = shifted(gain_variance);
    let g = linalg::spd_solve(&gain_system, cov)?.transpose().to_owned();
    let (eig, _) = linalg::sym_eigen(&gain_system)?;
    let kappa = eig[d - 1] / eig[0];
    let gmu = centring_bias(&g, mean);
    let bayes = Affine::new(g.clone(), gmu.clone())?;
    let perturbed = Affine::new(
        Mat::from_fn(d, d, |i, j| g[(i, j)] + delta_w[(i, j)]),
        (0..d).map(|i| gmu[i] + delta_b[i]).collect(),
    )?;
    let (mse_f, mag_f) =
        affine_mse_with_magnitude(mean, cov, perturbed.weight(), perturbed.bias(), sigma)?;
    let (mse_star, mag_star) =
        affine_mse_with_magnitude(mean, cov, bayes.weight(), bayes.bias(), sigma)?;
    // E‖ΔW y + Δb‖² = E‖(I − W')y − b'‖² with W' = I − ΔW, b' = −Δb: written out apart from
    // the MSE side's expected_square_norm, whose mean term would otherwise cancel
    let complement = Mat::from_fn(d, d, |i, j| f64::from(u8::from(i == j)) - delta_w[(i, j)]);
    let minus_db: Vec<f64> = delta_b.iter().map(|v| -v).collect();
    let (gap, mag_gap) = expected_residual_square(&complement, &minus_db, mean, &noisy);
    let g_norm = g.norm_l2();
    let solve_error = 8.0 * d as f64 * kappa * EPS * g_norm;
    let trace: f64 = (0..d).map(|i| noisy[(i, i)]).sum();
    let tolerance = gamma_f64(2 * d + 8) * (mag_f + mag_star + mag_gap)
        + 2.0 * solve_error * trace.sqrt() * gap.max(0.0).sqrt()
        + solve_error * solve_error * trace;
    Ok(Check {
        residual: (mse_f - (mse_star + gap)).abs(),
        tolerance,
    })
}

/// Prop. 2 by Monte Carlo on a mixture target (CPU, f64): for `f = f* + Δ`, the paired
/// per-sample difference `D = ‖x − f‖² − ‖x − f*‖² − ‖f* − f‖² = −2⟨x − f*(y), Δ(y)⟩` has
/// mean zero (the orthogonality of the posterior-mean error to every function of y).
pub fn optimality_monte_carlo(
    target: &GaussianMixture,
    perturbation: &dyn Denoiser,
    sigma: f64,
    n: usize,
    seed: u64,
) -> Result<Estimate> {
    use rayon::prelude::*;
    ensure_sigma(sigma)?;
    let d = target.dim();
    if perturbation.dim() != d {
        return Err(Error::DimensionMismatch {
            what: "perturbation dimension".into(),
            expected: d,
            got: perturbation.dim(),
        });
    }
    let x = target.sample(&mut Rng::new(seed, 0), n);
    let mut noise = Rng::new(seed, 1);
    let y = Mat::from_fn(n, d, |i, j| x[(i, j)] + sigma * noise.normal());
    let diffs: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let yi = linalg::row(&y, i);
            let star = target.posterior_mean(&yi, sigma)?;
            let delta = perturbation.denoise(&yi, sigma)?;
            let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
            for j in 0..d {
                let f = star[j] + delta[j];
                a += (x[(i, j)] - f).powi(2);
                b += (x[(i, j)] - star[j]).powi(2);
                c += delta[j] * delta[j];
            }
            Ok(a - b - c)
        })
        .collect::<Result<_>>()?;
    let (mean, std_error) = mean_and_std_error(&diffs);
    Ok(Estimate {
        mean,
        std_error,
        bias_bound: 0.0,
        samples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Pythagoras check's tolerance in 1-D, where the gain G = v/(v + σ²) = 1/2 for
    /// v = σ = 1 and κ = 1: `γ_{2d+8}·(magnitudes) + 2e√tr·√gap + e²·tr` with the solve error
    /// `e = 8dκε‖G‖` and `tr = v + σ²`.
    #[test]
    fn pythagoras_tolerance_is_the_documented_sum() {
        let (m, v, sigma, dw, db) = (0.7, 1.0, 1.0, 0.3, -0.2);
        let one = |a: f64| Mat::from_fn(1, 1, |_, _| a);
        let check = pythagoras(&[m], &one(v), sigma, sigma * sigma, &one(dw), &[db]).unwrap();
        let gain = v / (v + sigma * sigma);
        let gmu = m - gain * m;
        let (_, mag_f) =
            affine_mse_with_magnitude(&[m], &one(v), &one(gain + dw), &[gmu + db], sigma).unwrap();
        let (_, mag_star) =
            affine_mse_with_magnitude(&[m], &one(v), &one(gain), &[gmu], sigma).unwrap();
        let trace = v + sigma * sigma;
        let (gap, mag_gap) = expected_residual_square(&one(1.0 - dw), &[-db], &[m], &one(trace));
        assert!((gap - ((dw * m + db).powi(2) + dw * dw * trace)).abs() < 1e-15);
        let solve_error = 8.0 * EPS * gain;
        let tolerance = gamma_f64(10) * (mag_f + mag_star + mag_gap)
            + 2.0 * solve_error * trace.sqrt() * gap.sqrt()
            + solve_error * solve_error * trace;
        assert!(
            (check.tolerance - tolerance).abs() <= 1e-12 * tolerance,
            "{} vs {tolerance}",
            check.tolerance
        );
    }

    /// The Gaussian optimality check refuses a mean and covariance that do not match, or a
    /// non-finite mean, naming them.
    #[test]
    fn optimality_refuses_a_mismatched_or_non_finite_gaussian() {
        let cov = Mat::identity(2, 2);
        let (dw, db) = (Mat::zeros(2, 2), vec![0.0; 2]);
        let e = optimality_gaussian(&[0.0, 0.0], &Mat::identity(3, 3), 1.0, &dw, &db);
        assert!(e.unwrap_err().to_string().contains("covariance"));
        // a 2×3 covariance has the right rows: the error names its 3 columns
        let e = optimality_gaussian(&[0.0, 0.0], &Mat::zeros(2, 3), 1.0, &dw, &db).unwrap_err();
        assert!(
            matches!(
                e,
                Error::DimensionMismatch {
                    expected: 2,
                    got: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = optimality_gaussian(&[f64::NAN, 0.0], &cov, 1.0, &dw, &db);
        assert!(e.unwrap_err().to_string().contains("mean"));
        assert!(optimality_gaussian(&[0.0, 0.0], &cov, 1.0, &dw, &db).is_ok());
    }
}
