//! Affine f on a Gaussian target: both sides of SURE in closed form.

use super::threshold::{PLANTED_FACTOR, STEIN_FACTOR};
use super::THEOREM;
use crate::denoisers::linear::affine_mse_with_magnitude;
use crate::denoisers::{Affine, Denoiser};
use crate::error::Result;
use crate::linalg::Mat;
use crate::numerics::gamma_f64;
use crate::theorems::{Check, Claim, Controlled, FalseFailure, ToleranceKind};

/// Both sides of SURE for an affine f on N(μ, Σ), in closed form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineSides {
    /// `E‖x − f(y)‖²` ([`affine_mse_with_magnitude`], from the joint law of (x, g)).
    pub mse: f64,
    /// `E‖y − f(y)‖² + 2σ² tr W − σ²d`, from the marginal y ~ N(μ, Σ + σ²I)
    /// ([`expected_residual_square`], code of its own).
    pub sure: f64,
    /// The planted variant `E‖y − f(y)‖² + σ² tr W − σ²d` (the factor 2 dropped).
    pub planted_sure: f64,
    /// Bound on the rounding error of `mse − sure`: `γ_{2d+8}` times the sum of both sides'
    /// magnitudes (each entry is a sum of at most 2d + 4 rounded products, and the sides add
    /// four such sums).
    pub rounding_bound: f64,
}

/// `E‖y − W y − b‖²` for `y ~ N(m, S)`, written out here rather than through
/// [`expected_square_norm`](crate::denoisers::linear::expected_square_norm) (which the MSE side uses), so a fault there is not repeated on
/// both sides: with `A = I − W`, `‖A m − b‖² + Σ_ij (A S)_ij A_ij`. Returns (value, the same sum
/// over absolute values, which bounds its rounding error by `γ_{2d+4}` times itself).
pub fn expected_residual_square(w: &Mat, b: &[f64], m: &[f64], s: &Mat) -> (f64, f64) {
    let d = w.nrows();
    let a = |i: usize, j: usize| f64::from(u8::from(i == j)) - w[(i, j)];
    let (mut value, mut magnitude) = (0.0, 0.0);
    for (i, bi) in b.iter().enumerate().take(d) {
        let (mut r, mut r_mag) = (-bi, bi.abs());
        for (j, mj) in m.iter().enumerate() {
            r += a(i, j) * mj;
            r_mag += (a(i, j) * mj).abs();
        }
        value += r * r;
        magnitude += r_mag * r_mag;
    }
    for i in 0..d {
        for j in 0..d {
            let (mut as_ij, mut as_mag) = (0.0, 0.0);
            for k in 0..d {
                as_ij += a(i, k) * s[(k, j)];
                as_mag += (a(i, k) * s[(k, j)]).abs();
            }
            value += as_ij * a(i, j);
            magnitude += as_mag * a(i, j).abs();
        }
    }
    (value, magnitude)
}

/// SURE's two sides for `f(y) = W y + b` on x ~ N(μ, Σ) at noise σ.
pub(crate) fn affine_gaussian_sides(
    den: &Affine,
    mean: &[f64],
    cov: &Mat,
    sigma: f64,
) -> Result<AffineSides> {
    let (mse, mse_mag) = affine_mse_with_magnitude(mean, cov, den.weight(), den.bias(), sigma)?;
    let d = den.dim();
    let w = den.weight();
    let noisy_cov = Mat::from_fn(d, d, |i, j| {
        cov[(i, j)] + if i == j { sigma * sigma } else { 0.0 }
    });
    let (fit, fit_mag) = expected_residual_square(w, den.bias(), mean, &noisy_cov);
    let trace: f64 = (0..d).map(|i| w[(i, i)]).sum();
    let trace_mag: f64 = (0..d).map(|i| w[(i, i)].abs()).sum();
    let s2 = sigma * sigma;
    let sure = fit + STEIN_FACTOR * s2 * trace - s2 * d as f64;
    let magnitude = mse_mag + fit_mag + 2.0 * s2 * trace_mag + s2 * d as f64;
    Ok(AffineSides {
        mse,
        sure,
        planted_sure: fit + PLANTED_FACTOR * s2 * trace - s2 * d as f64,
        rounding_bound: gamma_f64(2 * d + 8) * magnitude,
    })
}

/// Row: SURE for affine maps in closed form.
pub const AFFINE: Claim = Claim {
    theorem: THEOREM,
    statement: "affine f = Wy + b on N(μ, Σ): E‖x−f‖² = E‖y−f‖² + 2σ² tr W − σ²d (closed forms)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "γ_{2d+8} × the sum of both sides' term magnitudes (sums of ≤ 2d+4 rounded \
                      products, Higham §3.1)",
    planted_variant: "the factor 2 dropped: E‖y−f‖² + σ² tr W − σ²d",
    false_failure: FalseFailure::None,
};

/// The affine check: `|mse − sure|` against the rounding bound; planted `|mse − planted_sure|`
/// against the same bound.
pub fn affine_gaussian(den: &Affine, mean: &[f64], cov: &Mat, sigma: f64) -> Result<Controlled> {
    let s = affine_gaussian_sides(den, mean, cov, sigma)?;
    let check = |sure: f64| Check {
        residual: (s.mse - sure).abs(),
        tolerance: s.rounding_bound,
    };
    Ok(Controlled {
        check: check(s.sure),
        planted: check(s.planted_sure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both closed-form sides for `f(y) = w·y + b` on x ~ N(m, v) in 1-D, written out by hand:
    /// `MSE = ((1 − w)m − b)² + (1 − w)²v + w²σ²`, `E(y − f)² = ((1 − w)m − b)² +
    /// (1 − w)²(v + σ²)`, SURE adds `2σ²w − σ²`, the planted variant `σ²w − σ²`; the rounding
    /// bound is `γ₁₀` times the sum of the terms' magnitudes.
    #[test]
    fn affine_sides_in_one_dimension_by_hand() {
        let (w, b, m, v, sigma) = (0.6, -0.3, 1.5, 2.0, 0.7);
        let den = Affine::new(Mat::from_fn(1, 1, |_, _| w), vec![b]).unwrap();
        let sides =
            affine_gaussian_sides(&den, &[m], &Mat::from_fn(1, 1, |_, _| v), sigma).unwrap();
        let (a, s2) = (1.0 - w, sigma * sigma);
        let shift = a * m - b;
        let mse = shift * shift + a * a * v + w * w * s2;
        let fit = shift * shift + a * a * (v + s2);
        assert!((sides.mse - mse).abs() < 1e-14, "{} vs {mse}", sides.mse);
        assert!((sides.sure - (fit + 2.0 * s2 * w - s2)).abs() < 1e-14);
        assert!((sides.planted_sure - (fit + s2 * w - s2)).abs() < 1e-14);
        let (_, mse_mag) = affine_mse_with_magnitude(
            &[m],
            &Mat::from_fn(1, 1, |_, _| v),
            &Mat::from_fn(1, 1, |_, _| w),
            &[b],
            sigma,
        )
        .unwrap();
        let fit_mag = (b.abs() + (a * m).abs()).powi(2) + (a * (v + s2)).abs() * a.abs();
        let magnitude = mse_mag + fit_mag + 2.0 * s2 * w.abs() + s2;
        let bound = gamma_f64(10) * magnitude;
        assert!((sides.rounding_bound - bound).abs() <= 1e-12 * bound);
    }
}
