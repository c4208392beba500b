//! The top eigenpairs of a denoiser's Jacobian `J = ∇f(y)` from Jacobian-vector products on the
//! GPU ([`denoiser_jvp`]): block power (subspace) iteration with a Rayleigh–Ritz step, the
//! orthonormalisation and the k×k eigenproblem in f64 on the host. For the MSE-optimal
//! denoiser `J = σ⁻²Cov[x|y]` is symmetric (Kadkhodaie et al. eq. 9), and its top eigenvectors
//! are the adaptive basis the paper calls GAHB; the Rayleigh quotient `H = VᵀJV` is
//! symmetrised, which is exact for a symmetric J.
//!
//! **What the output certifies.** With V orthonormal (f64), `W̃ = JV + E` the GPU's products
//! (`‖E‖_F ≤ ε_J`, from the f32 bound of [`denoiser_jvp_reference`] at the same probes), and
//! `(θ_i, v_i)` the Ritz pairs, the computed residual `r̃_i = ‖W̃q_i − θ_i v_i‖` gives, for a
//! symmetric J, an eigenvalue of J within `r̃_i + ε_J` of θ_i (the residual bound), and the
//! Davis–Kahan sin Θ theorem bounds the angle between span V and the top-k eigenvectors by
//! `(‖R̃‖_F + ε_J)/δ`, δ the distance from the Ritz values to the rest of the spectrum.

use super::denoiser_jvp::{denoiser_jvp, denoiser_jvp_reference, JvpDenoiser};
use super::Gpu;
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::rng::Rng;

/// Ritz pairs of J and what certifies them (module doc).
#[derive(Debug, Clone)]
pub struct JacobianEigen {
    /// Ritz values θ_1 ≥ … ≥ θ_k.
    pub values: Vec<f64>,
    /// Ritz vectors, one per column (d×k, orthonormal).
    pub vectors: Mat,
    /// `r̃_i = ‖W̃q_i − θ_i v_i‖` with the GPU's products.
    pub residuals: Vec<f64>,
    /// `‖R̃‖_F`, the block residual.
    pub block_residual: f64,
    /// `ε_J`: the bound on `‖E‖_F` of the last block of GPU products.
    pub product_error: f64,
}

/// Orthonormalises the columns of `a` (modified Gram–Schmidt, twice); an error when a column
/// is numerically dependent on the earlier ones.
fn orthonormal(a: &Mat) -> Result<Mat> {
    let mut q = a.clone();
    for _ in 0..2 {
        for j in 0..q.ncols() {
            for i in 0..j {
                let dot: f64 = (0..q.nrows()).map(|r| q[(r, i)] * q[(r, j)]).sum();
                for r in 0..q.nrows() {
                    q[(r, j)] -= dot * q[(r, i)];
                }
            }
            let norm = (0..q.nrows())
                .map(|r| q[(r, j)].powi(2))
                .sum::<f64>()
                .sqrt();
            if norm.is_nan() || norm <= 1e-300 {
                return Err(Error::Numerical(format!(
                    "subspace iteration: column {j} lost its length (the Jacobian's rank is \
                     below the block size)"
                )));
            }
            for r in 0..q.nrows() {
                q[(r, j)] /= norm;
            }
        }
    }
    Ok(q)
}

/// `J·V` for the columns of V at the point y, on the GPU, and the Frobenius bound on its f32
/// error (from the f64 reference's elementwise bounds at the same probes).
fn products(gpu: &Gpu, den: &JvpDenoiser, y: &[f64], v: &Mat, sigma: f64) -> Result<(Mat, f64)> {
    let (d, k) = (v.nrows(), v.ncols());
    let points = Mat::from_fn(k, d, |_, j| y[j]);
    let probes = Mat::from_fn(k, d, |i, j| v[(j, i)]);
    let gpu_batch = denoiser_jvp(gpu, den, &points, &probes, sigma)?;
    let reference = denoiser_jvp_reference(den, &points, &probes, sigma)?;
    let error = reference
        .jvp_bound
        .iter()
        .map(|b| b * b)
        .sum::<f64>()
        .sqrt();
    Ok((Mat::from_fn(d, k, |j, i| gpu_batch.jvp[i * d + j]), error))
}

/// The top-k Ritz pairs of `∇f(y)` for the denoiser `den` at noise level σ after `iterations`
/// block power steps from a random start (seed `seed`), every product on the GPU.
/// Errors: k = 0 or k > d, no iteration, y of the wrong length or not finite, σ ≤ 0, or a
/// Jacobian of rank below k.
pub fn top_eigenpairs(
    gpu: &Gpu,
    den: &JvpDenoiser,
    y: &[f64],
    sigma: f64,
    k: usize,
    iterations: usize,
    seed: u64,
) -> Result<JacobianEigen> {
    let d = den.dim();
    if k == 0 || k > d {
        return Err(Error::InvalidArgument {
            what: "number of eigenpairs k".into(),
            reason: format!("need 1 ≤ k ≤ d = {d}, got {k}"),
        });
    }
    if iterations == 0 {
        return Err(Error::InvalidArgument {
            what: "power iterations".into(),
            reason: "need at least 1, got 0".into(),
        });
    }
    crate::error::ensure_len("point y", y, d)?;
    crate::error::ensure_finite("point y", y)?;
    crate::error::ensure_sigma(sigma)?;
    let mut rng = Rng::new(seed, 0x6a4b);
    let mut v = orthonormal(&Mat::from_fn(d, k, |_, _| rng.normal()))?;
    for _ in 0..iterations {
        let (w, _) = products(gpu, den, y, &v, sigma)?;
        v = orthonormal(&w)?;
    }
    let (w, product_error) = products(gpu, den, y, &v, sigma)?;
    let h = v.transpose() * &w;
    let symmetric = Mat::from_fn(k, k, |i, j| 0.5 * (h[(i, j)] + h[(j, i)]));
    let (ascending, q) = linalg::sym_eigen(&symmetric)?;
    let order: Vec<usize> = (0..k).rev().collect();
    let values: Vec<f64> = order.iter().map(|&i| ascending[i]).collect();
    let q = Mat::from_fn(k, k, |r, c| q[(r, order[c])]);
    let vectors = &v * &q;
    let rotated = &w * &q;
    let residual_columns: Vec<f64> = (0..k)
        .map(|c| {
            (0..d)
                .map(|r| (rotated[(r, c)] - values[c] * vectors[(r, c)]).powi(2))
                .sum::<f64>()
        })
        .collect();
    Ok(JacobianEigen {
        residuals: residual_columns.iter().map(|s| s.sqrt()).collect(),
        block_residual: residual_columns.iter().sum::<f64>().sqrt(),
        values,
        vectors,
        product_error,
    })
}
