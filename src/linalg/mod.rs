//! CPU reference numerics in f64 on faer: symmetric eigen-decomposition, PSD validation and
//! spectral factors, Cholesky solves, and the small vector helpers the closed forms need.
//!
//! Everything here is the *reference* side of a GPU parity check or of a theorem check, so it
//! favours backward-stable algorithms (Householder tridiagonalisation, Cholesky) over speed.

use crate::error::{Error, Result};
use faer::Side;

/// Dense column-major f64 matrix (faer). Data sets are stored one sample per row.
pub type Mat = faer::Mat<f64>;

/// Machine epsilon `ε = 2^-52` of f64 (twice the unit roundoff), the convention of faer's own
/// tolerances (`eps * 8 * n`).
pub const EPS: f64 = crate::numerics::F64_EPSILON;

/// Symmetric eigen-decomposition `A = V diag(λ) Vᵀ`, eigenvalues in ascending order.
///
/// Only the lower triangle of `a` is read; call [`check_symmetric`] first when `a` is user input.
pub(crate) fn sym_eigen(a: &Mat) -> Result<(Vec<f64>, Mat)> {
    let evd = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Numerical(format!("symmetric eigen-decomposition: {e:?}")))?;
    let s = evd.S().column_vector();
    let values = (0..a.nrows()).map(|i| s[i]).collect();
    Ok((values, evd.U().to_owned()))
}

/// Checks that `a` is square, finite and symmetric to `|a_ij − a_ji| ≤ 64·n·ε·max|a|`
/// (the asymmetry a covariance assembled by floating-point products can carry).
pub(crate) fn check_symmetric(what: &str, a: &Mat) -> Result<()> {
    if a.nrows() != a.ncols() {
        return Err(Error::NotPsd {
            what: what.to_string().into(),
            reason: format!("not square: {}x{}", a.nrows(), a.ncols()),
        });
    }
    let n = a.nrows();
    let mut max_abs = 0.0f64;
    for j in 0..n {
        for i in 0..n {
            let v = a[(i, j)];
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    what: what.to_string().into(),
                    index: i * n + j,
                    value: v,
                });
            }
            max_abs = max_abs.max(v.abs());
        }
    }
    let tol = 64.0 * n as f64 * EPS * max_abs;
    // pairs (i, j), i > j, visited in 64×64 blocks so both a(i, j) and a(j, i) stay in cache
    const BLOCK: usize = 64;
    for jb in (0..n).step_by(BLOCK) {
        for ib in (jb..n).step_by(BLOCK) {
            for j in jb..(jb + BLOCK).min(n) {
                for i in ib.max(j + 1)..(ib + BLOCK).min(n) {
                    let gap = (a[(i, j)] - a[(j, i)]).abs();
                    if gap > tol {
                        return Err(Error::NotPsd {
                            what: what.to_string().into(),
                            reason: format!(
                                "asymmetric: entry ({i},{j}) = {} but ({j},{i}) = {}",
                                a[(i, j)],
                                a[(j, i)]
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Spectral factor of a covariance: orthonormal `U` (n×r) and eigenvalues `λ₁..λ_r > 0` with
/// `Σ = U diag(λ) Uᵀ`, dropping eigenvalues at or below the rounding floor `τ = 8·n·ε·λ_max`
/// (so a singular covariance keeps its exact rank). An eigenvalue below `−τ` means `Σ` is not
/// PSD and is reported with its value.
#[derive(Debug, Clone)]
pub struct SpectralFactor {
    /// Orthonormal basis of the range of Σ, one eigenvector per column (n×r).
    pub basis: Mat,
    /// The positive eigenvalues, aligned with the columns of `basis`.
    pub eigenvalues: Vec<f64>,
}

impl SpectralFactor {
    /// Validates `cov` (square, finite, symmetric, PSD) and factors it.
    pub(crate) fn from_covariance(what: &str, cov: &Mat) -> Result<Self> {
        check_symmetric(what, cov)?;
        let n = cov.nrows();
        if n == 0 {
            return Ok(Self {
                basis: Mat::zeros(0, 0),
                eigenvalues: vec![],
            });
        }
        let (values, vectors) = sym_eigen(cov)?;
        let lambda_max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let floor = 8.0 * n as f64 * EPS * lambda_max;
        if let Some(&neg) = values.iter().find(|&&v| v < -floor) {
            return Err(Error::NotPsd {
                what: what.to_string().into(),
                reason: format!("eigenvalue {neg:e} < 0 (rounding floor {floor:e})"),
            });
        }
        let keep: Vec<usize> = (0..n).filter(|&i| values[i] > floor).collect();
        let basis = Mat::from_fn(n, keep.len(), |i, j| vectors[(i, keep[j])]);
        let eigenvalues = keep.iter().map(|&i| values[i]).collect();
        Ok(Self { basis, eigenvalues })
    }

    /// Builds a factor from a tall matrix `F` (n×r) with `Σ = F Fᵀ` (a low-rank covariance given
    /// by its factor), via the eigen-decomposition of the small Gram matrix.
    pub(crate) fn from_low_rank(what: &str, factor: &Mat) -> Result<Self> {
        ensure_finite_mat(what, factor)?;
        let cov = factor * factor.transpose();
        Self::from_covariance(what, &cov)
    }

    /// Ambient dimension n.
    pub fn dim(&self) -> usize {
        self.basis.nrows()
    }

    /// Rank r (number of kept eigenvalues).
    pub fn rank(&self) -> usize {
        self.eigenvalues.len()
    }

    /// The covariance `U diag(λ) Uᵀ` as a dense n×n matrix.
    pub fn covariance(&self) -> Mat {
        let f = self.scaled_basis();
        &f * f.transpose()
    }

    /// `F = U diag(√λ)` (n×r), so that `Σ = F Fᵀ` and `μ + F z`, `z ~ N(0, I_r)`, samples N(μ, Σ).
    pub(crate) fn scaled_basis(&self) -> Mat {
        Mat::from_fn(self.dim(), self.rank(), |i, j| {
            self.basis[(i, j)] * self.eigenvalues[j].sqrt()
        })
    }
}

/// Returns an error naming the first non-finite entry of a matrix.
pub(crate) fn ensure_finite_mat(what: &str, a: &Mat) -> Result<()> {
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let value = a[(i, j)];
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    what: what.to_string().into(),
                    index: i * a.ncols() + j,
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Products with fewer multiply-adds than this run on the calling thread ([`matmul`]).
const SEQUENTIAL_FLOPS: usize = 1 << 18;

/// faer's parallelism for an operation of `flops` multiply-adds: sequential below
/// [`SEQUENTIAL_FLOPS`], faer's global setting (rayon) above. faer's products and triangular
/// solves split into rayon tasks whatever the size, so a per-point posterior (3×3 systems)
/// handed to rayon spent more time waking and parking workers than computing
/// (`entropy::immse_quadrature_allowance_is_calibrated`: 10 s, 7.5 s of it system time,
/// against 4.8 s on one thread). A split only spreads independent columns over threads, so the
/// result is the same bit for bit either way.
fn par_for_flops(flops: usize) -> faer::Par {
    if flops < SEQUENTIAL_FLOPS {
        faer::Par::Seq
    } else {
        faer::get_global_parallelism()
    }
}

/// `A B`, on the calling thread when small ([`par_for_flops`]); the `&a * &b` of faer
/// otherwise.
pub(crate) fn matmul(a: &Mat, b: &Mat) -> Mat {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    let par = par_for_flops(a.nrows() * a.ncols() * b.ncols());
    faer::linalg::matmul::matmul(out.as_mut(), faer::Accum::Replace, a, b, 1.0, par);
    out
}

/// Solves `A X = B` for symmetric positive-definite `A` by Cholesky (`A = L Lᵀ`): `L Y = B`,
/// then `Lᵀ X = Y`, on the calling thread when small ([`par_for_flops`]).
pub(crate) fn spd_solve(a: &Mat, b: &Mat) -> Result<Mat> {
    let llt = a
        .llt(Side::Lower)
        .map_err(|e| Error::Numerical(format!("Cholesky of an SPD matrix: {e:?}")))?;
    let par = par_for_flops(a.nrows() * a.nrows() * b.ncols());
    let mut x = b.clone();
    faer::linalg::triangular_solve::solve_lower_triangular_in_place(llt.L(), x.as_mut(), par);
    faer::linalg::triangular_solve::solve_upper_triangular_in_place(
        llt.L().transpose(),
        x.as_mut(),
        par,
    );
    Ok(x)
}

/// `log det A` for symmetric positive-definite `A`, as `2 Σ log L_ii` from its Cholesky factor.
pub(crate) fn spd_logdet(a: &Mat) -> Result<f64> {
    let llt = a
        .llt(Side::Lower)
        .map_err(|e| Error::Numerical(format!("Cholesky of an SPD matrix: {e:?}")))?;
    let l = llt.L();
    Ok((0..a.nrows()).map(|i| 2.0 * l[(i, i)].ln()).sum())
}

/// `A v` for a matrix and a slice.
pub(crate) fn mat_vec(a: &Mat, v: &[f64]) -> Vec<f64> {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * v[j]).sum())
        .collect()
}

/// Column vector (n×1 matrix) holding `v`.
pub fn col(v: &[f64]) -> Mat {
    Mat::from_fn(v.len(), 1, |i, _| v[i])
}

/// The first column of `m` as a `Vec`.
pub(crate) fn col_to_vec(m: &Mat) -> Vec<f64> {
    (0..m.nrows()).map(|i| m[(i, 0)]).collect()
}

/// Row `i` of `m` as a `Vec` (one sample of a data set stored one sample per row).
pub fn row(m: &Mat, i: usize) -> Vec<f64> {
    (0..m.ncols()).map(|j| m[(i, j)]).collect()
}

/// Builds an n×d matrix from rows.
pub fn from_rows(rows: &[Vec<f64>]) -> Mat {
    let d = rows.first().map_or(0, Vec::len);
    Mat::from_fn(rows.len(), d, |i, j| rows[i][j])
}

/// Euclidean inner product `aᵀb`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `max_i |a_i − b_i|`, the residual every vector check reports.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `max_ij |A_ij − B_ij|`.
pub fn max_abs_diff_mat(a: &Mat, b: &Mat) -> f64 {
    let mut m = 0.0f64;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            m = m.max((a[(i, j)] - b[(i, j)]).abs());
        }
    }
    m
}

/// `max_i |a_i|`.
pub(crate) fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// `e^x`, with 0 returned without calling `exp` where `e^x` rounds to 0 anyway (x < −745.2,
/// below ln of half the smallest subnormal, −745.13): the same value, but glibc's `exp` takes a
/// slow path for underflowing arguments, which the softmax of far-apart logits (a mixture's
/// responsibilities at small σ) meets in most rows.
fn exp_or_zero(x: f64) -> f64 {
    if x < -745.2 {
        0.0
    } else {
        x.exp()
    }
}

/// Clears the upper halves of the AVX registers (`vzeroupper`) where the CPU has AVX; no value
/// changes. Why: faer's AVX kernels can return with those halves dirty, and on the Xeons we
/// measured every SSE instruction after that (the crate's own code and glibc's `exp` wrapper
/// are SSE) then pays a merge penalty — the DDIM run of `score_matching`'s tests with 8000 rows
/// took 1.18 s with the state dirty and 0.27 s with it cleared before each softmax, while
/// 8192 rows (whose products faer happened to run on rayon's threads) took 0.38 s either way.
#[inline]
pub(crate) fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        unsafe fn zero_upper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX (checked just above), the one feature `zero_upper` uses.
            unsafe { zero_upper() }
        }
    }
}

/// `log Σ_k exp(a_k)`, stable: `m + log Σ exp(a_k − m)` with `m = max a_k`.
/// Returns `−∞` for an empty slice or all `−∞`.
pub(crate) fn log_sum_exp(a: &[f64]) -> f64 {
    clear_upper_vector_state();
    let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + a.iter().map(|v| exp_or_zero(v - m)).sum::<f64>().ln()
}

/// Softmax `exp(a_k − logΣexp a)`, computed with the max-shift so no term overflows.
pub fn softmax(a: &[f64]) -> Vec<f64> {
    let lse = log_sum_exp(a);
    a.iter().map(|v| exp_or_zero(v - lse)).collect()
}

#[cfg(test)]
mod tests {
    use super::{check_symmetric, ensure_finite_mat, exp_or_zero, Mat, EPS};
    use crate::error::Error;

    /// Asserts that `ours` and `faers` have the same shape and the same bits in every entry.
    fn assert_same_bits(ours: &Mat, faers: &Mat, what: &str) {
        assert_eq!(
            (ours.nrows(), ours.ncols()),
            (faers.nrows(), faers.ncols()),
            "{what}"
        );
        for j in 0..ours.ncols() {
            for i in 0..ours.nrows() {
                assert_eq!(ours[(i, j)].to_bits(), faers[(i, j)].to_bits(), "{what}");
            }
        }
    }

    /// [`super::matmul`] and [`super::spd_solve`] on the calling thread give faer's rayon
    /// results bit for bit (small products are sequential only to spare rayon's wake-ups), at
    /// sizes on both sides of the threshold.
    #[test]
    fn sequential_products_and_solves_equal_faers_parallel_ones() {
        use faer::linalg::solvers::Solve;
        let mut rng = crate::rng::Rng::new(0x5e9, 0);
        for (m, k, n) in [(3, 3, 5), (40, 30, 20), (90, 70, 80)] {
            let a = Mat::from_fn(m, k, |_, _| rng.normal());
            let b = Mat::from_fn(k, n, |_, _| rng.normal());
            assert_same_bits(&super::matmul(&a, &b), &(&a * &b), &format!("{m}×{k}×{n}"));
            let g = Mat::from_fn(k, k, |i, j| {
                (0..m).map(|r| a[(r, i)] * a[(r, j)]).sum::<f64>() + if i == j { 1.0 } else { 0.0 }
            });
            assert_same_bits(
                &super::spd_solve(&g, &b).unwrap(),
                &g.llt(faer::Side::Lower).unwrap().solve(&b),
                &format!("solve {k}×{n}"),
            );
        }
    }

    /// `exp_or_zero` is `exp` wherever it returns a value: 0 below the cut, where `exp` is 0
    /// too, and `exp` itself from the cut up (the subnormal range included).
    #[test]
    fn exp_or_zero_is_exp() {
        for x in [
            -1e6, -800.0, -745.21, -745.2, -745.1, -744.0, -708.5, -1.0, 0.0, 3.0,
        ] {
            assert_eq!(exp_or_zero(x).to_bits(), x.exp().to_bits(), "{x}");
        }
    }

    /// The symmetry tolerance is `64·n·ε·max|a|`: an asymmetry just above it is refused with the
    /// entry named, one just below it is accepted (so the bound is neither dropped nor inflated).
    #[test]
    fn check_symmetric_refuses_asymmetry_above_its_bound_only() {
        let n = 3;
        let bound = 64.0 * n as f64 * EPS * 2.0;
        let with_gap = |gap: f64| {
            Mat::from_fn(n, n, |i, j| match (i, j) {
                (2, 0) => 1.0 + gap,
                (0, 2) => 1.0,
                (i, j) if i == j => 2.0,
                _ => 0.5,
            })
        };
        assert!(check_symmetric("c", &with_gap(0.5 * bound)).is_ok());
        match check_symmetric("c", &with_gap(2.0 * bound)) {
            Err(Error::NotPsd { what, reason }) => {
                assert_eq!(what, "c");
                assert!(reason.contains("(2,0)"), "{reason}");
            }
            other => panic!("expected NotPsd, got {other:?}"),
        }
        assert!(matches!(
            check_symmetric("c", &Mat::zeros(2, 3)),
            Err(Error::NotPsd { .. })
        ));
    }

    /// A NaN or infinite entry is a typed error naming its row-major index `i·ncols + j` and value.
    #[test]
    fn ensure_finite_mat_names_the_first_bad_entry() {
        let mut a = Mat::from_fn(2, 3, |i, j| (i + j) as f64);
        assert!(ensure_finite_mat("a", &a).is_ok());
        a[(1, 2)] = f64::NAN;
        match ensure_finite_mat("a", &a) {
            Err(Error::NonFinite { what, index, value }) => {
                assert_eq!((what.as_ref(), index), ("a", 5));
                assert!(value.is_nan());
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }
}
