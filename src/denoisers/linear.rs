//! Linear denoisers: fixed affine maps `f(y) = W y + b`, the MSE-optimal affine and bias-free
//! denoisers in closed form from the first two moments ([`OptimalAffine`]), and least-squares
//! fits from samples ([`fit_affine`], [`fit_bias_free`]).

use super::{check_input, Denoiser};
use crate::error::{ensure_finite, ensure_len, ensure_sigma, Error, Result};
use crate::linalg::{self, Mat, SpectralFactor};
use crate::stats::finite_difference::Derivative;
use crate::targets::Target;

/// `f(y) = W y + b`, W (d×d, not necessarily symmetric), b ∈ ℝᵈ. Jacobian `∇f = W` exactly.
#[derive(Debug, Clone)]
pub struct Affine {
    weight: Mat,
    bias: Vec<f64>,
}

impl Affine {
    /// Validates that W is square and finite and `b` has matching length and is finite.
    pub fn new(weight: Mat, bias: Vec<f64>) -> Result<Self> {
        if weight.nrows() != weight.ncols() {
            return Err(Error::DimensionMismatch {
                what: "affine weight (columns)".into(),
                expected: weight.nrows(),
                got: weight.ncols(),
            });
        }
        linalg::ensure_finite_mat("affine weight", &weight)?;
        ensure_len("affine bias", &bias, weight.nrows())?;
        ensure_finite("affine bias", &bias)?;
        Ok(Self { weight, bias })
    }

    /// The bias-free map `f(y) = W y`.
    pub fn bias_free(weight: Mat) -> Result<Self> {
        let d = weight.nrows();
        Self::new(weight, vec![0.0; d])
    }

    /// W.
    pub fn weight(&self) -> &Mat {
        &self.weight
    }

    /// b.
    pub fn bias(&self) -> &[f64] {
        &self.bias
    }
}

impl Denoiser for Affine {
    fn dim(&self) -> usize {
        self.bias.len()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        Ok((0..d)
            .map(|i| self.bias[i] + (0..d).map(|j| self.weight[(i, j)] * y[j]).sum::<f64>())
            .collect())
    }

    /// `∇f = W`, exact (error 0: the stored weights are returned).
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        Ok(Derivative {
            value: self.weight.clone(),
            error: Mat::zeros(d, d),
        })
    }
}

/// The MSE-optimal affine denoiser of any law with mean μ and covariance Σ at noise level σ:
///
/// `f(y; σ) = μ + Σ(Σ + σ²I)⁻¹(y − μ) = μ + U diag(λᵢ/(λᵢ + σ²)) Uᵀ (y − μ)`,
///
/// the minimiser of `E‖x − W y − b‖²` over (W, b) for `y = x + σg` (normal equations
/// `W(Σ + σ²I) = Σ`, `b = μ − Wμ`). It depends on the law only through (μ, Σ) (Levine–Weiss
/// Thm 3) and equals the Bayes denoiser (Wiener filter) of `N(μ, Σ)`. Stored by the spectral
/// factor of Σ, so each σ costs O(d·r) per point and singular Σ is exact.
#[derive(Debug, Clone)]
pub struct OptimalAffine {
    mean: Vec<f64>,
    factor: SpectralFactor,
}

impl OptimalAffine {
    /// From the first two moments; validates lengths, finiteness and that Σ is symmetric PSD.
    pub fn from_moments(mean: &[f64], covariance: &Mat) -> Result<Self> {
        ensure_finite("mean", mean)?;
        if mean.is_empty() {
            return Err(Error::InvalidArgument {
                what: "mean".into(),
                reason: "dimension 0".into(),
            });
        }
        if covariance.nrows() != mean.len() || covariance.ncols() != mean.len() {
            return Err(Error::DimensionMismatch {
                what: "covariance (rows and columns, one per mean entry)".into(),
                expected: mean.len(),
                got: if covariance.nrows() != mean.len() {
                    covariance.nrows()
                } else {
                    covariance.ncols()
                },
            });
        }
        let factor = SpectralFactor::from_covariance("covariance", covariance)?;
        let factor = if factor.rank() == 0 {
            SpectralFactor {
                basis: Mat::zeros(mean.len(), 0),
                eigenvalues: vec![],
            }
        } else {
            factor
        };
        Ok(Self {
            mean: mean.to_vec(),
            factor,
        })
    }

    /// From a target's mean and covariance.
    pub(crate) fn from_target(target: &dyn Target) -> Result<Self> {
        Self::from_moments(&target.mean(), &target.covariance())
    }

    /// The MSE-optimal *bias-free* linear denoiser `f(y) = W y`: minimising `E‖x − W y‖²`
    /// gives `W = M(M + σ²I)⁻¹` with the second moment `M = E[xxᵀ] = Σ + μμᵀ`, which is the
    /// optimal affine denoiser of the zero-mean law with covariance M — returned as such.
    pub fn bias_free_from_moments(mean: &[f64], covariance: &Mat) -> Result<Self> {
        ensure_finite("mean", mean)?;
        let d = mean.len();
        if covariance.nrows() != d || covariance.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: "covariance (rows and columns, one per mean entry)".into(),
                expected: d,
                got: covariance.nrows(),
            });
        }
        let m = Mat::from_fn(d, d, |i, j| covariance[(i, j)] + mean[i] * mean[j]);
        Self::from_moments(&vec![0.0; d], &m)
    }

    /// μ (zero for the bias-free denoiser).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The spectral factor `U diag(λ) Uᵀ` of the covariance (second moment, if bias-free).
    pub fn factor(&self) -> &SpectralFactor {
        &self.factor
    }

    /// `W(σ) = U diag(λᵢ/(λᵢ + σ²)) Uᵀ` (d×d).
    pub fn weight(&self, sigma: f64) -> Result<Mat> {
        ensure_sigma(sigma)?;
        Ok(shrinkage_matrix(&self.factor, sigma))
    }

    /// `b(σ) = μ − W(σ)μ` ([`centring_bias`]).
    pub fn bias(&self, sigma: f64) -> Result<Vec<f64>> {
        Ok(centring_bias(&self.weight(sigma)?, &self.mean))
    }

    /// The affine map `y ↦ W(σ)y + b(σ)` frozen at one σ.
    pub fn at(&self, sigma: f64) -> Result<Affine> {
        Affine::new(self.weight(sigma)?, self.bias(sigma)?)
    }
}

impl Denoiser for OptimalAffine {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        Ok(shrink_apply(
            &self.factor,
            &self.mean,
            y,
            sigma,
            self.factor.rank(),
        ))
    }

    /// `∇f = W(σ)`, formed from the stored factor (error: its rounding, `4 r ε max λ/(λ+σ²)`).
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        let bound = 4.0 * (self.factor.rank() + 1) as f64 * crate::linalg::EPS;
        Ok(Derivative {
            value: shrinkage_matrix(&self.factor, sigma),
            error: Mat::from_fn(d, d, |_, _| bound),
        })
    }
}

/// `U_K diag(λᵢ/(λᵢ + σ²)) U_Kᵀ` over the first `K` columns of the factor (all of them here).
pub(crate) fn shrinkage_matrix(factor: &SpectralFactor, sigma: f64) -> Mat {
    let d = factor.dim();
    let s2 = sigma * sigma;
    let u = &factor.basis;
    let mut w = Mat::zeros(d, d);
    for (k, &lambda) in factor.eigenvalues.iter().enumerate() {
        let g = lambda / (lambda + s2);
        for j in 0..d {
            for i in 0..d {
                w[(i, j)] += g * u[(i, k)] * u[(j, k)];
            }
        }
    }
    w
}

/// `μ + Σ_{k<K} λ_k/(λ_k + σ²) u_k u_kᵀ (y − μ)`, O(d·K).
pub(crate) fn shrink_apply(
    factor: &SpectralFactor,
    mean: &[f64],
    y: &[f64],
    sigma: f64,
    k: usize,
) -> Vec<f64> {
    let d = mean.len();
    let s2 = sigma * sigma;
    let delta: Vec<f64> = y.iter().zip(mean).map(|(a, b)| a - b).collect();
    let mut out = mean.to_vec();
    for (j, &lambda) in factor.eigenvalues.iter().enumerate().take(k) {
        let c: f64 =
            (0..d).map(|i| factor.basis[(i, j)] * delta[i]).sum::<f64>() * lambda / (lambda + s2);
        for (i, o) in out.iter_mut().enumerate() {
            *o += c * factor.basis[(i, j)];
        }
    }
    out
}

/// Validates a training set: `xs` (clean) and `ys` (noisy) both n×d, finite, n > d + 1.
fn check_pairs(xs: &Mat, ys: &Mat) -> Result<()> {
    if xs.nrows() != ys.nrows() || xs.ncols() != ys.ncols() {
        return Err(Error::DimensionMismatch {
            what: "noisy samples (rows × columns must match the clean samples)".into(),
            expected: xs.nrows() * xs.ncols(),
            got: ys.nrows() * ys.ncols(),
        });
    }
    if xs.nrows() <= xs.ncols() + 1 {
        return Err(Error::InvalidArgument {
            what: "number of samples".into(),
            reason: format!(
                "least squares in d = {} needs n > d + 1 samples, got {}",
                xs.ncols(),
                xs.nrows()
            ),
        });
    }
    linalg::ensure_finite_mat("clean samples", xs)?;
    linalg::ensure_finite_mat("noisy samples", ys)
}

/// Least-squares affine fit `min_{W,b} Σ_k ‖x_k − W y_k − b‖²` from pairs (one per row):
/// `W = Ĉ_xy Ĉ_yy⁻¹`, `b = x̄ − W ȳ` with the centred cross- and auto-covariances (Cholesky
/// solve of the SPD `Ĉ_yy`). An error if `Ĉ_yy` is singular (n ≤ d + 1 or degenerate data).
pub fn fit_affine(xs: &Mat, ys: &Mat) -> Result<Affine> {
    check_pairs(xs, ys)?;
    let (n, d) = (xs.nrows(), xs.ncols());
    let xbar: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| xs[(i, j)]).sum::<f64>() / n as f64)
        .collect();
    let ybar: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| ys[(i, j)]).sum::<f64>() / n as f64)
        .collect();
    let xc = Mat::from_fn(n, d, |i, j| xs[(i, j)] - xbar[j]);
    let yc = Mat::from_fn(n, d, |i, j| ys[(i, j)] - ybar[j]);
    let cyy = yc.transpose() * &yc;
    let cyx = yc.transpose() * &xc;
    // W Ĉ_yy = Ĉ_xy  ⇔  Ĉ_yy Wᵀ = Ĉ_yx.
    let wt = linalg::spd_solve(&cyy, &cyx)?;
    let w = wt.transpose().to_owned();
    let wy = linalg::mat_vec(&w, &ybar);
    let b = xbar.iter().zip(&wy).map(|(a, c)| a - c).collect();
    Affine::new(w, b)
}

/// Least-squares bias-free fit `min_W Σ_k ‖x_k − W y_k‖²`: `W = (XᵀY)(YᵀY)⁻¹` (uncentred).
pub fn fit_bias_free(xs: &Mat, ys: &Mat) -> Result<Affine> {
    check_pairs(xs, ys)?;
    let yy = ys.transpose() * ys;
    let yx = ys.transpose() * xs;
    let wt = linalg::spd_solve(&yy, &yx)?;
    Affine::bias_free(wt.transpose().to_owned())
}

/// `E‖A u + c‖² = ‖A m + c‖² + tr(A S Aᵀ)` for `u ~ N(m, S)`, with the magnitude
/// `‖|A||m| + |c|‖² + tr(|A||S||A|ᵀ)` that bounds its rounding error (relative `γ_{2d+4}`).
pub fn expected_square_norm(a: &Mat, c: &[f64], m: &[f64], s: &Mat) -> (f64, f64) {
    let (rows, d) = (a.nrows(), a.ncols());
    let (mut value, mut magnitude) = (0.0, 0.0);
    for i in 0..rows {
        let (mut v, mut mag) = (c[i], c[i].abs());
        for j in 0..d {
            v += a[(i, j)] * m[j];
            mag += (a[(i, j)] * m[j]).abs();
        }
        value += v * v;
        magnitude += mag * mag;
        // (A S Aᵀ)_ii = Σ_jk A_ij S_jk A_ik
        for j in 0..d {
            for k in 0..d {
                let t = a[(i, j)] * s[(j, k)] * a[(i, k)];
                value += t;
                magnitude += t.abs();
            }
        }
    }
    (value, magnitude)
}

/// `MSE(f) = E‖x − W y − b‖²` of an affine map for y = x + σg and any law of x with mean μ and
/// covariance Σ (only the first two moments enter), from the joint law of (x, g):
/// `x − Wy − b = (I − W)x − σWg − b`, so
/// `MSE = ‖(I − W)μ − b‖² + tr((I − W)Σ(I − W)ᵀ) + σ² tr(WWᵀ)`. Returns (value, the magnitude
/// of its terms, which bounds its rounding error by `γ_{2d+8}` times itself).
pub fn affine_mse_with_magnitude(
    mean: &[f64],
    covariance: &Mat,
    w: &Mat,
    b: &[f64],
    sigma: f64,
) -> Result<(f64, f64)> {
    ensure_sigma(sigma)?;
    // the map's dimension is the reference: a wrong mean, covariance or bias is named as such
    let d = w.nrows();
    for (what, m) in [("weight", w), ("covariance", covariance)] {
        if m.nrows() != d || m.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: what.into(),
                expected: d,
                got: if m.nrows() != d { m.nrows() } else { m.ncols() },
            });
        }
    }
    ensure_len("mean", mean, d)?;
    ensure_len("bias", b, d)?;
    ensure_finite("mean", mean)?;
    ensure_finite("bias", b)?;
    linalg::ensure_finite_mat("covariance", covariance)?;
    linalg::ensure_finite_mat("weight", w)?;
    let residual_map = Mat::from_fn(d, d, |i, j| f64::from(u8::from(i == j)) - w[(i, j)]);
    let minus_b: Vec<f64> = b.iter().map(|v| -v).collect();
    let (signal, signal_mag) = expected_square_norm(&residual_map, &minus_b, mean, covariance);
    let noise: f64 = (0..d)
        .flat_map(|i| (0..d).map(move |j| (i, j)))
        .map(|(i, j)| w[(i, j)] * w[(i, j)])
        .sum::<f64>()
        * sigma
        * sigma;
    Ok((signal + noise, signal_mag + noise))
}

/// The value of [`affine_mse_with_magnitude`].
pub fn affine_mse(mean: &[f64], covariance: &Mat, w: &Mat, b: &[f64], sigma: f64) -> Result<f64> {
    Ok(affine_mse_with_magnitude(mean, covariance, w, b, sigma)?.0)
}

/// The MSE-optimal bias of the affine map `y ↦ Wy + b` for a target of mean μ under zero-mean
/// noise: `b = μ − Wμ = (I − W)μ`, which centres the error `x − Wy − b`.
pub fn centring_bias(weight: &Mat, mean: &[f64]) -> Vec<f64> {
    let wm = linalg::mat_vec(weight, mean);
    mean.iter().zip(&wm).map(|(m, v)| m - v).collect()
}

#[cfg(test)]
mod tests {
    use super::{centring_bias, OptimalAffine};
    use crate::linalg::Mat;

    /// `b = (I − W)μ` by hand: W = [[2, 0], [1, 1]], μ = (1, 2) give Wμ = (2, 3), b = (−1, −1).
    #[test]
    fn centring_bias_by_hand() {
        let w = Mat::from_fn(2, 2, |i, j| [[2.0, 0.0], [1.0, 1.0]][i][j]);
        assert_eq!(centring_bias(&w, &[1.0, 2.0]), vec![-1.0, -1.0]);
    }

    /// `mean()` returns the μ it was built from, and the bias-free denoiser's is zero.
    #[test]
    fn optimal_affine_keeps_its_mean() {
        let cov = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 0.5 });
        let mu = [1.5, -0.25];
        assert_eq!(OptimalAffine::from_moments(&mu, &cov).unwrap().mean(), &mu);
        assert_eq!(
            OptimalAffine::bias_free_from_moments(&mu, &cov)
                .unwrap()
                .mean(),
            &[0.0, 0.0]
        );
    }
}
