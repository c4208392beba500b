//! The Gaussian target `N(μ, Σ)`, Σ symmetric PSD and possibly singular (a one-component mixture).

use super::GaussianMixture;
use crate::error::{ensure_finite, Error, Result};
use crate::linalg::Mat;
use faer::linalg::solvers::{DenseSolveCore, Solve};

/// `N(mean, covariance)`; validates dimensions, finiteness and PSD-ness (singular allowed).
///
/// Its closed forms are the Wiener filter: `E[x|y] = μ + Σ(Σ+σ²I)⁻¹(y−μ)`,
/// `Cov[x|y] = σ²Σ(Σ+σ²I)⁻¹`, `∇log p_σ(y) = −(Σ+σ²I)⁻¹(y−μ)`.
pub fn gaussian(mean: &[f64], covariance: &Mat) -> Result<GaussianMixture> {
    ensure_finite("Gaussian mean", mean)?;
    if covariance.nrows() != mean.len() || covariance.ncols() != mean.len() {
        return Err(Error::DimensionMismatch {
            what: "Gaussian covariance (rows and columns)".into(),
            expected: mean.len(),
            got: if covariance.nrows() != mean.len() {
                covariance.nrows()
            } else {
                covariance.ncols()
            },
        });
    }
    GaussianMixture::new(&[1.0], &[mean.to_vec()], std::slice::from_ref(covariance))
}

/// `N(μ, Σ)` held as its dense covariance, for image-scale d: the closed forms of `p_σ` go
/// through one Cholesky factor of `C = Σ + σ²I` per σ ([`DenseGaussian::noisy`]) and
/// triangular solves for all points at once, never an eigen-decomposition (which costs ~9d³
/// against Cholesky's d³/3). It is the second, independent route to the Gaussian closed forms of
/// [`gaussian`] (whose mixture works through the spectral factor of Σ).
///
/// PSD validation without eigenvalues: `Σ` is accepted when the Cholesky factorisation of
/// `Σ + τI` runs to completion, with `τ = 40·d^{3/2}·u·t`, `t = max_i Σ_j |Σ_ij|` (≥ ‖Σ‖₂) and
/// `u = 2⁻⁵³`. Every PSD Σ passes: `λ_min(Σ + τI) ≥ τ` and `λ_max ≤ t + τ`, so
/// `20 d^{3/2} κ₂ u ≤ 20 d^{3/2} u (t + τ)/τ ≤ 1` whenever `40 d^{3/2} u ≤ 1`, and Cholesky then
/// succeeds in floating point (Higham, *Accuracy and Stability*, Thm 10.7). Conversely a
/// completed factor `L̂` satisfies `Σ + τI + ΔA = L̂L̂ᵀ` with `|ΔA| ≤ γ_{d+1}|L̂||L̂ᵀ|` (Thm 10.3),
/// so an accepted Σ has `λ_min(Σ) ≥ −τ − d·γ_{d+1}(t + τ)`; anything more negative is refused
/// with the pivot at which the factorisation broke down.
#[derive(Debug, Clone)]
pub struct DenseGaussian {
    mean: Vec<f64>,
    covariance: Mat,
}

/// The largest absolute column sum `t = max_j Σ_i |Σ_ij|` of a covariance (`≥ ‖Σ‖₂`; the row
/// sum too, Σ being symmetric), read column by column.
pub fn column_sum_max(covariance: &Mat) -> f64 {
    (0..covariance.ncols())
        .map(|j| covariance.col(j).iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0f64, f64::max)
}

/// `40 d^{3/2} u t`: the shift of [`DenseGaussian`]'s PSD test.
fn psd_shift(d: usize, t: f64) -> f64 {
    40.0 * (d as f64).powf(1.5) * (crate::linalg::EPS / 2.0) * t
}

impl DenseGaussian {
    /// Validates the mean (finite), the covariance (d×d, finite, symmetric to
    /// `check_symmetric`'s tolerance, PSD by the shifted Cholesky test above) and keeps both.
    pub fn new(mean: Vec<f64>, covariance: Mat) -> Result<Self> {
        ensure_finite("Gaussian mean", &mean)?;
        let d = mean.len();
        if d == 0 {
            return Err(Error::InvalidArgument {
                what: "Gaussian mean".into(),
                reason: "has length 0".into(),
            });
        }
        if covariance.nrows() != d || covariance.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: "Gaussian covariance (rows and columns)".into(),
                expected: d,
                got: if covariance.nrows() != d {
                    covariance.nrows()
                } else {
                    covariance.ncols()
                },
            });
        }
        crate::linalg::check_symmetric("Gaussian covariance", &covariance)?;
        let t = column_sum_max(&covariance);
        let tau = psd_shift(d, t);
        // t = 0 is the zero covariance (a point mass), PSD with nothing to factor
        if t == 0.0 {
            return Ok(Self { mean, covariance });
        }
        if let Err(pivot) = cholesky_with_shift(&covariance, tau) {
            return Err(Error::NotPsd {
                what: "Gaussian covariance".into(),
                reason: format!(
                    "the Cholesky factorisation of Σ + τI (τ = {tau:e}) broke down at pivot \
                     {pivot}: Σ has an eigenvalue below −τ"
                ),
            });
        }
        Ok(Self { mean, covariance })
    }

    /// Dimension d.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The mean μ.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The covariance Σ (d×d).
    pub fn covariance(&self) -> &Mat {
        &self.covariance
    }

    /// The Cholesky factor `C = Σ + σ²I = LLᵀ` and `log det C = 2 Σ log L_ii`, formed once for
    /// every quantity and point at this σ.
    pub fn noisy(&self, sigma: f64) -> Result<NoisyGaussian<'_>> {
        crate::error::ensure_sigma_squared(sigma)?;
        let s2 = sigma * sigma;
        let factor = cholesky_with_shift(&self.covariance, s2).map_err(|pivot| {
            Error::Numerical(format!(
                "Cholesky of Σ + σ²I (σ = {sigma}) broke down at pivot {pivot}"
            ))
        })?;
        let l = factor.L();
        let log_det = (0..self.dim()).map(|i| 2.0 * l[(i, i)].ln()).sum();
        Ok(NoisyGaussian {
            target: self,
            s2,
            factor,
            log_det,
        })
    }
}

/// The Cholesky factor of `A + shift·I`, or the (0-based) pivot at which it broke down.
fn cholesky_with_shift(
    a: &Mat,
    shift: f64,
) -> std::result::Result<faer::linalg::solvers::Llt<f64>, usize> {
    let mut shifted = a.clone();
    for i in 0..a.nrows() {
        shifted[(i, i)] += shift;
    }
    shifted.llt(faer::Side::Lower).map_err(|e| match e {
        faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } => index,
    })
}

/// A [`DenseGaussian`] at one σ: `C = Σ + σ²I = LLᵀ` factored once. Points are the rows of an
/// n×d matrix; with `Δ = Y − 1μᵀ`:
/// * `log p_σ(y) = −½(d log 2π + log det C + ‖L⁻¹δ‖²)`;
/// * `∇ log p_σ(y) = −C⁻¹δ = −L⁻ᵀL⁻¹δ`;
/// * `E[x|y] = y + σ²∇ log p_σ(y)` (Tweedie — for a Gaussian this *is* the Wiener filter
///   `μ + ΣC⁻¹δ`, since `ΣC⁻¹ = I − σ²C⁻¹`);
/// * `Cov[x|y] = σ²ΣC⁻¹ = σ²(I − σ²C⁻¹)`, the same at every y, and `∇² log p_σ = −C⁻¹`.
pub struct NoisyGaussian<'a> {
    target: &'a DenseGaussian,
    s2: f64,
    factor: faer::linalg::solvers::Llt<f64>,
    log_det: f64,
}

impl NoisyGaussian<'_> {
    /// `Δ = Y − μ1ᵀ` (d×n) of the points `points_t` (d×n, one point per column), after checking
    /// their dimension and that they are finite.
    fn centred(&self, points_t: &Mat) -> Result<Mat> {
        let d = self.target.dim();
        if points_t.nrows() != d {
            return Err(Error::DimensionMismatch {
                what: "query points (rows of the column-per-point matrix)".into(),
                expected: d,
                got: points_t.nrows(),
            });
        }
        crate::linalg::ensure_finite_mat("query points", points_t)?;
        let mean = &self.target.mean;
        Ok(Mat::from_fn(d, points_t.ncols(), |j, i| {
            points_t[(j, i)] - mean[j]
        }))
    }

    /// `log p_σ(y)` at every column of `points_t` (d×n).
    pub fn log_density_columns(&self, points_t: &Mat) -> Result<Vec<f64>> {
        let mut z = self.centred(points_t)?;
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            self.factor.L(),
            z.as_mut(),
            faer::get_global_parallelism(),
        );
        let d = self.target.dim() as f64;
        Ok((0..z.ncols())
            .map(|i| {
                let quad: f64 = z.col(i).iter().map(|v| v * v).sum();
                -0.5 * (d * super::gmm::LN_2PI + self.log_det + quad)
            })
            .collect())
    }

    /// `∇_y log p_σ(y) = −C⁻¹(y − μ)` at every column of `points_t` (d×n in, d×n out).
    pub fn score_columns(&self, points_t: &Mat) -> Result<Mat> {
        let mut x = self.centred(points_t)?;
        self.factor.solve_in_place(x.as_mut());
        for j in 0..x.ncols() {
            for v in x.col_mut(j).iter_mut() {
                *v = -*v;
            }
        }
        Ok(x)
    }

    /// `E[x | y] = y + σ²∇ log p_σ(y)` at every column of `points_t` (d×n in, d×n out).
    pub fn posterior_mean_columns(&self, points_t: &Mat) -> Result<Mat> {
        let g = self.score_columns(points_t)?;
        Ok(points_t + self.s2 * g)
    }

    /// `log p_σ(y)` at every row of `points` (n×d).
    pub fn log_density_batch(&self, points: &Mat) -> Result<Vec<f64>> {
        self.log_density_columns(&points.transpose().to_owned())
    }

    /// `∇_y log p_σ(y)` at every row of `points` (n×d in, n×d out).
    pub fn score_batch(&self, points: &Mat) -> Result<Mat> {
        Ok(self
            .score_columns(&points.transpose().to_owned())?
            .transpose()
            .to_owned())
    }

    /// `E[x | y]` at every row of `points` (n×d in, n×d out).
    pub fn posterior_mean_batch(&self, points: &Mat) -> Result<Mat> {
        Ok(self
            .posterior_mean_columns(&points.transpose().to_owned())?
            .transpose()
            .to_owned())
    }

    /// `C⁻¹ = L⁻ᵀL⁻¹`, symmetrised (d×d).
    fn precision(&self) -> Mat {
        let p = self.factor.inverse();
        Mat::from_fn(p.nrows(), p.ncols(), |i, j| 0.5 * (p[(i, j)] + p[(j, i)]))
    }

    /// `Cov[x | y] = σ²(I − σ²C⁻¹)` (d×d), the same at every y. Its absolute error is of
    /// order `σ⁴‖C⁻¹‖·d·u·κ(C)`, so relative to a small eigenvalue λ of the answer
    /// (`≈ λ` when λ ≪ σ²) it grows like `σ²/λ`.
    pub fn posterior_covariance(&self) -> Mat {
        let mut cov = self.precision();
        let s4 = self.s2 * self.s2;
        for j in 0..cov.ncols() {
            for i in 0..cov.nrows() {
                cov[(i, j)] = -s4 * cov[(i, j)] + if i == j { self.s2 } else { 0.0 };
            }
        }
        cov
    }

    /// `∇²_y log p_σ(y) = −C⁻¹` (d×d), the same at every y.
    pub fn score_hessian(&self) -> Mat {
        -self.precision()
    }
}
