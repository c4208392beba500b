//! The top eigenpairs of the symmetric part `S = (J + Jᵀ)/2` of a denoiser's Jacobian
//! `J = ∇f(y)`, from Jacobian-vector products on the GPU ([`denoiser_jvp`]): block power
//! (subspace) iteration with a Rayleigh–Ritz step, the orthonormalisation and the small
//! eigenproblem in f64 on the host.
//!
//! **Which matrix.** For the MSE-optimal denoiser `J = σ⁻²Cov[x|y]` is symmetric (Kadkhodaie et
//! al. eq. 9) and `S = J`; its top eigenvectors are the adaptive basis the paper calls GAHB.
//! A *trained* network's Jacobian is not symmetric (the tanh MLP of the tests has
//! `‖J − Jᵀ‖_F/‖J‖_F ≈ 0.4`), so its eigenvectors may be complex; the solver then works on S,
//! whose eigenvectors are real and orthogonal and whose quadratic form is J's
//! (`vᵀSv = vᵀJv`). [`Symmetry::Symmetric`] lets the caller assert `J = Jᵀ` (the Bayes
//! denoisers, soft thresholding), which halves the products; asserting it for a trained network
//! is the planted wrong variant of the tests, and the dense reference rejects it.
//!
//! **Transposed products.** `Jᵀz` is the JVP of a *transposed network* evaluated at the same y:
//! for `f(u) = W₂ tanh(W₁u + b₁) + b₂`, `J = W₂ D W₁` with `D = diag(tanh'(W₁y + b₁))`, and
//! `g(u) = W₁ᵀ tanh(W₂ᵀu + b₁') ` with `b₁' = W₁y + b₁ − W₂ᵀy` has the same pre-activation at
//! y, so `∇g(y) = W₁ᵀ D W₂ᵀ = Jᵀ`; for `f = Wy + b`, `g = Wᵀy`. The GPU evaluates g with the
//! same kernel. (`b₁'` is formed in f64; its rounding moves the pre-activation by a relative
//! 2⁻⁵³, far below the f32 kernel's bound.) Other denoisers whose Jacobian is not symmetric in
//! general (the power map) are refused with a typed error.
//!
//! **What the output certifies.** With V orthonormal (f64, block of k + [`GUARD_VECTORS`]
//! columns), `W̃ = SV + E` the GPU's products (`‖E‖_F ≤ ε_S`, the mean of the Frobenius bounds
//! of the two products' f32 errors, from [`denoiser_jvp_reference`] at the same probes), and
//! `(θ_i, v_i)` the top-k Ritz pairs, the computed residual `r̃_i = ‖W̃q_i − θ_i v_i‖` gives an
//! eigenvalue of S within `r̃_i + ε_S` of θ_i (the symmetric residual bound), and the
//! Davis–Kahan sin Θ theorem bounds the angle between span(v₁…v_k) and S's eigenvectors of the
//! matching eigenvalues by `(‖R̃_k‖_F + ε_S)/δ`, δ the distance from θ₁…θ_k to the rest of the
//! spectrum. Power iteration converges to the eigenvalues of largest magnitude; that these are
//! the largest ones is checked against the dense reference, not assumed.

use super::denoiser_jvp::{denoiser_jvp, denoiser_jvp_reference, JvpDenoiser};
use super::Gpu;
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::rng::Rng;

/// Columns iterated beyond the k asked for: the convergence factor of the k-th pair is
/// `|λ_{k+1+GUARD}/λ_k|` instead of `|λ_{k+1}/λ_k|` (capped at d).
pub const GUARD_VECTORS: usize = 3;

/// Whether `J = ∇f(y)` may be taken as symmetric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symmetry {
    /// The caller asserts `J = Jᵀ` (an MSE-optimal denoiser, soft thresholding): one product
    /// `JV` per step.
    Symmetric,
    /// General J (a trained network): the solver works on `S = (J + Jᵀ)/2`, two products per
    /// step.
    General,
}

/// What the solver is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EigenRequest {
    /// k: the number of eigenpairs (1 ≤ k ≤ d).
    pub pairs: usize,
    /// Block power steps before the last Rayleigh–Ritz step (≥ 1).
    pub iterations: usize,
    /// Seed of the random start block.
    pub seed: u64,
    /// Whether J may be taken as symmetric.
    pub symmetry: Symmetry,
}

/// Ritz pairs of S and what certifies them (module doc).
#[derive(Debug, Clone)]
pub struct JacobianEigen {
    /// Ritz values θ_1 ≥ … ≥ θ_k.
    pub values: Vec<f64>,
    /// Ritz vectors, one per column (d×k, orthonormal).
    pub vectors: Mat,
    /// `r̃_i = ‖W̃q_i − θ_i v_i‖` with the GPU's products.
    pub residuals: Vec<f64>,
    /// `‖R̃_k‖_F`, the block residual of the k pairs returned.
    pub block_residual: f64,
    /// `ε_S`: the bound on `‖E‖_F` of the last block of GPU products.
    pub product_error: f64,
    /// `‖(J − Jᵀ)V_k‖_F / ‖JV_k‖_F` over the k Ritz vectors returned (V_k = `vectors`), from the
    /// GPU's products (0 under [`Symmetry::Symmetric`], which does not form Jᵀ): how far J is
    /// from symmetric in the directions found. Each of the two products errs by at most
    /// `2·product_error` in Frobenius norm (`ε_J + ε_Jᵀ = 2ε_S`; the rotation to the Ritz
    /// vectors has orthonormal columns).
    pub asymmetry: f64,
}

/// Owned parameters of the transposed network g with `∇g(y) = ∇f(y)ᵀ` (module doc).
enum Transposed {
    /// J is symmetric by construction (soft thresholding, a mixture's Bayes denoiser): g = f.
    Same,
    Affine {
        weight: Mat,
        bias: Vec<f64>,
    },
    Mlp {
        w1: Mat,
        b1: Vec<f64>,
        w2: Mat,
        b2: Vec<f64>,
    },
}

impl Transposed {
    /// g for `den` at the point y; an error for a denoiser without a transposed form.
    fn at(den: &JvpDenoiser, y: &[f64]) -> Result<Self> {
        match den {
            JvpDenoiser::Affine { weight, .. } => Ok(Self::Affine {
                weight: weight.transpose().to_owned(),
                bias: vec![0.0; weight.nrows()],
            }),
            JvpDenoiser::Mlp { w1, b1, w2, .. } => {
                let (h, d) = (w1.nrows(), w1.ncols());
                let b1_shifted = (0..h)
                    .map(|i| {
                        let original: f64 = (0..d).map(|j| w1[(i, j)] * y[j]).sum::<f64>() + b1[i];
                        let transposed: f64 = (0..d).map(|j| w2[(j, i)] * y[j]).sum();
                        original - transposed
                    })
                    .collect();
                Ok(Self::Mlp {
                    w1: w2.transpose().to_owned(),
                    b1: b1_shifted,
                    w2: w1.transpose().to_owned(),
                    b2: vec![0.0; d],
                })
            }
            JvpDenoiser::SoftThreshold { .. } | JvpDenoiser::Gmm(_) => Ok(Self::Same),
            JvpDenoiser::PowerMap { .. } => Err(Error::InvalidArgument {
                what: "symmetry".into(),
                reason: "the power map's Jacobian Σ q W_q diag(y^(q−1)) is not symmetric in \
                         general and has no transposed form in the JVP kernel"
                    .into(),
            }),
        }
    }

    /// g, or None when g = f.
    fn denoiser(&self) -> Option<JvpDenoiser<'_>> {
        Some(match self {
            Self::Same => return None,
            Self::Affine { weight, bias } => JvpDenoiser::Affine { weight, bias },
            Self::Mlp { w1, b1, w2, b2 } => JvpDenoiser::Mlp { w1, b1, w2, b2 },
        })
    }
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

/// `∇g(y)·V` for the columns of V, on the GPU, and (when `bound`; NaN otherwise) the Frobenius
/// bound on its f32 error from the f64 reference's elementwise bounds at the same probes.
fn products(
    gpu: &Gpu,
    g: &JvpDenoiser,
    y: &[f64],
    v: &Mat,
    sigma: f64,
    bound: bool,
) -> Result<(Mat, f64)> {
    let (d, k) = (v.nrows(), v.ncols());
    let points = Mat::from_fn(k, d, |_, j| y[j]);
    let probes = Mat::from_fn(k, d, |i, j| v[(j, i)]);
    let gpu_batch = denoiser_jvp(gpu, g, &points, &probes, sigma)?;
    let error = if bound {
        let reference = denoiser_jvp_reference(g, &points, &probes, sigma)?;
        reference
            .jvp_bound
            .iter()
            .map(|b| b * b)
            .sum::<f64>()
            .sqrt()
    } else {
        f64::NAN
    };
    Ok((Mat::from_fn(d, k, |j, i| gpu_batch.jvp[i * d + j]), error))
}

/// The products of one step: `W̃ ≈ SV` (or `JV` when `transposed` is None), its error bound
/// (when `bound`), and `D̃ ≈ (J − Jᵀ)V` (None when `transposed` is None).
fn operator_products(
    gpu: &Gpu,
    den: &JvpDenoiser,
    transposed: Option<&JvpDenoiser>,
    (y, sigma): (&[f64], f64),
    v: &Mat,
    bound: bool,
) -> Result<(Mat, f64, Option<Mat>)> {
    let (jv, jv_error) = products(gpu, den, y, v, sigma, bound)?;
    let Some(g) = transposed else {
        return Ok((jv, jv_error, None));
    };
    let (jtv, jtv_error) = products(gpu, g, y, v, sigma, bound)?;
    let skew = &jv - &jtv;
    Ok((
        (jv + jtv) * faer::Scale(0.5),
        0.5 * (jv_error + jtv_error),
        Some(skew),
    ))
}

/// The top-k Ritz pairs of `S = (∇f(y) + ∇f(y)ᵀ)/2` (of `∇f(y)` itself under
/// [`Symmetry::Symmetric`]) for the denoiser `den` at the point y and noise level σ, after
/// `request.iterations` block power steps from a random start, every product on the GPU.
/// Errors: k = 0 or k > d, no iteration, y of the wrong length or not finite, σ ≤ 0, a
/// Jacobian of rank below the block size, or [`Symmetry::General`] for the power map.
pub fn top_eigenpairs(
    gpu: &Gpu,
    den: &JvpDenoiser,
    y: &[f64],
    sigma: f64,
    request: EigenRequest,
) -> Result<JacobianEigen> {
    let EigenRequest {
        pairs: k,
        iterations,
        seed,
        symmetry,
    } = request;
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
    let transposed = match symmetry {
        Symmetry::Symmetric => Transposed::Same,
        Symmetry::General => Transposed::at(den, y)?,
    };
    let transposed = transposed.denoiser();
    let block = (k + GUARD_VECTORS).min(d);
    let mut rng = Rng::new(seed, 0x6a4b);
    let mut v = orthonormal(&Mat::from_fn(d, block, |_, _| rng.normal()))?;
    for _ in 0..iterations {
        let (w, _, _) = operator_products(gpu, den, transposed.as_ref(), (y, sigma), &v, false)?;
        v = orthonormal(&w)?;
    }
    let (w, product_error, skew) =
        operator_products(gpu, den, transposed.as_ref(), (y, sigma), &v, true)?;
    let h = v.transpose() * &w;
    let symmetric = Mat::from_fn(block, block, |i, j| 0.5 * (h[(i, j)] + h[(j, i)]));
    let (ascending, q) = linalg::sym_eigen(&symmetric)?;
    let order: Vec<usize> = (0..block).rev().take(k).collect();
    let values: Vec<f64> = order.iter().map(|&i| ascending[i]).collect();
    let q = Mat::from_fn(block, k, |r, c| q[(r, order[c])]);
    let vectors = &v * &q;
    let rotated = &w * &q;
    // JV = SV + (J − Jᵀ)V/2 on the k Ritz vectors
    let asymmetry = match &skew {
        None => 0.0,
        Some(skew) => {
            let skew_k = skew * &q;
            let jv_k = &rotated + &skew_k * faer::Scale(0.5);
            skew_k.norm_l2() / jv_k.norm_l2().max(f64::MIN_POSITIVE)
        }
    };
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
        asymmetry,
    })
}
