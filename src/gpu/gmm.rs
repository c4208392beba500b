//! Wrapper of `gpu/gmm_posterior.wgsl`: responsibilities, score and posterior mean of a
//! Gaussian mixture's noisy density for a batch of points, in f32, with the f32 error bound
//! that its parity test uses.

use super::uniforms::GmmParams;
use super::{grid_for, shaders, Gpu, WORKGROUP_SIZE};
use crate::error::{ensure_sigma, Error, Result};
use crate::linalg::{self, Mat};
use crate::targets::{ClosedForm, GaussianMixture, Target};

/// Largest dimension the kernel handles (its private arrays are `MAX_DIM` long).
pub const MAX_DIM: usize = 64;

/// Results for a batch of n points (row-major): responsibilities n×K, score n×d, mean n×d.
#[derive(Debug, Clone)]
pub struct GmmBatch {
    /// `ρ_k(y_p)`, row p.
    pub responsibilities: Vec<f64>,
    /// `∇log p_σ(y_p)`, row p.
    pub score: Vec<f64>,
    /// `E[x | y_p]`, row p.
    pub posterior_mean: Vec<f64>,
}

/// Runs the kernel on every row of `points` (n×d), tiling the batch so that no binding exceeds
/// the adapter's limit.
pub fn gmm_posterior(
    gpu: &Gpu,
    target: &GaussianMixture,
    points: &Mat,
    sigma: f64,
) -> Result<GmmBatch> {
    ensure_sigma(sigma)?;
    let d = target.dim();
    if d > MAX_DIM {
        return Err(Error::InvalidArgument {
            what: "dimension".into(),
            reason: format!("the GMM kernel handles d ≤ {MAX_DIM}, got {d}"),
        });
    }
    if points.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "points (columns)".into(),
            expected: d,
            got: points.ncols(),
        });
    }
    linalg::ensure_finite_mat("points", points)?;
    let comps = target.noisy_components(sigma)?;
    let k = comps.len();
    let mut means = Vec::with_capacity(k * d);
    let mut precisions = Vec::with_capacity(k * d * d);
    let mut gains = Vec::with_capacity(k * d * d);
    let mut log_norms = Vec::with_capacity(k);
    for (c, nc) in target.components().iter().zip(&comps) {
        means.extend(c.mean.iter().map(|&v| v as f32));
        for i in 0..d {
            for j in 0..d {
                precisions.push(nc.precision[(i, j)] as f32);
                gains.push(nc.gain[(i, j)] as f32);
            }
        }
        log_norms.push(nc.log_norm as f32);
    }
    let means = gpu.input("gmm means", &means)?;
    let precisions = gpu.input("gmm precisions", &precisions)?;
    let gains = gpu.input("gmm gains", &gains)?;
    let log_norms = gpu.input("gmm log norms", &log_norms)?;

    let n = points.nrows();
    let bytes_per_point = 4 * d.max(k) as u64;
    let chunk = ((gpu.max_binding_bytes() / bytes_per_point) as usize).clamp(1, 1 << 22);
    let mut out = GmmBatch {
        responsibilities: Vec::with_capacity(n * k),
        score: Vec::with_capacity(n * d),
        posterior_mean: Vec::with_capacity(n * d),
    };
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let mut flat = Vec::with_capacity(m * d);
        for p in start..start + m {
            flat.extend((0..d).map(|j| points[(p, j)] as f32));
        }
        let groups = grid_for(
            (m as u32).div_ceil(WORKGROUP_SIZE),
            gpu.limits().max_compute_workgroups_per_dimension,
        );
        let params = gpu.uniform(
            "gmm params",
            &GmmParams {
                n_points: m as u32,
                dim: d as u32,
                n_components: k as u32,
                groups_x: groups[0],
            },
        );
        let pts = gpu.input("gmm points", &flat)?;
        let resp = gpu.output("gmm responsibilities", m * k)?;
        let mean = gpu.output("gmm posterior mean", m * d)?;
        let score = gpu.output("gmm score", m * d)?;
        gpu.dispatch(
            &shaders::GMM_POSTERIOR,
            &[
                &params,
                &pts,
                &means,
                &precisions,
                &gains,
                &log_norms,
                &resp,
                &mean,
                &score,
            ],
            groups,
        )?;
        out.responsibilities
            .extend(gpu.read::<f32>(&resp, m * k)?.into_iter().map(f64::from));
        out.posterior_mean
            .extend(gpu.read::<f32>(&mean, m * d)?.into_iter().map(f64::from));
        out.score
            .extend(gpu.read::<f32>(&score, m * d)?.into_iter().map(f64::from));
    }
    Ok(out)
}

/// Componentwise bounds on the kernel's f32 error at one point, derived by first-order
/// rounding-error analysis of exactly the operations the kernel performs (u = 2⁻²⁴,
/// `γ_n = nu/(1 − nu)`), then doubled to cover second-order terms:
/// * inputs rounded to f32: each entry of y, μ_k, C_k⁻¹, G_k, log-normaliser carries relative
///   error u, so `|Δδ| ≤ 2u(|y| + |μ_k|) + u|δ|`;
/// * logits `ℓ_k = n_k − ½ δᵀC⁻¹δ`: `|Δℓ_k| ≤ ½(γ_{2d+2} |δ|ᵀ|C⁻¹||δ| + 2|Δδ|ᵀ|C⁻¹||δ|) + 2u(|n_k| + |ℓ_k|)`;
/// * weights `exp(ℓ_k − max)`: WGSL's `exp` is within `3 + 2|x|` ULP (relative `2u(3 + 2|x|)`),
///   and up to K rescalings compound, so `ε_k = |Δℓ_k| + max_j|Δℓ_j| + 2uK(3 + 2|ℓ_k − ℓ_max|)`;
/// * `|Δρ_k| ≤ ρ_k(ε_k + Σ_j ρ_j ε_j) + γ_{K+1}ρ_k`;
/// * per-component vectors `v_k` (`g_k = −C⁻¹δ` or `m_k = μ_k + G_kδ`) with
///   `|Δv_k| ≤ γ_{d+2}|A||δ| + |A||Δδ| + u|μ_k|`, and the mix `Σρ_k v_k` adds
///   `Σ_k |Δρ_k||v_k − v̄| + γ_{K+2} Σ_k ρ_k|v_k|`;
/// * f32 underflow: a weight below the smallest normal f32 (`≈1.2·10⁻³⁸`) may be flushed to
///   zero, an absolute error of that size on each ρ_k and of `K·1.2·10⁻³⁸·max|v_k|` on the mix.
///
/// Returns `(responsibility bound, score bound, posterior-mean bound)`.
pub fn f32_error_bound(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let u = crate::numerics::F32_UNIT_ROUNDOFF;
    let tiny = f64::from(f32::MIN_POSITIVE);
    let gamma = |n: usize| n as f64 * u / (1.0 - n as f64 * u);
    let d = target.dim();
    let comps = target.noisy_components(sigma)?;
    let kk = comps.len();
    let rho = target.responsibilities(y, sigma)?;
    let mut dl = Vec::with_capacity(kk);
    let mut logits = Vec::with_capacity(kk);
    let mut deltas = Vec::with_capacity(kk);
    let mut ddeltas = Vec::with_capacity(kk);
    for (c, nc) in target.components().iter().zip(&comps) {
        let delta: Vec<f64> = y.iter().zip(&c.mean).map(|(a, b)| a - b).collect();
        let dd: Vec<f64> = (0..d)
            .map(|i| 2.0 * u * (y[i].abs() + c.mean[i].abs()) + u * delta[i].abs())
            .collect();
        let abs_prec_delta = abs_mat_vec(&nc.precision, &delta);
        let abs_prec_dd = abs_mat_vec(&nc.precision, &dd);
        let q_abs: f64 = delta
            .iter()
            .zip(&abs_prec_delta)
            .map(|(a, b)| a.abs() * b)
            .sum();
        let q_cross: f64 = dd
            .iter()
            .zip(&abs_prec_delta)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            + delta
                .iter()
                .zip(&abs_prec_dd)
                .map(|(a, b)| a.abs() * b)
                .sum::<f64>();
        let quad: f64 = {
            let pd = linalg::mat_vec(&nc.precision, &delta);
            linalg::dot(&delta, &pd)
        };
        let logit = nc.log_norm - 0.5 * quad;
        dl.push(
            0.5 * (gamma(2 * d + 2) * q_abs + q_cross)
                + 2.0 * u * (nc.log_norm.abs() + logit.abs()),
        );
        logits.push(logit);
        deltas.push(delta);
        ddeltas.push(dd);
    }
    let lmax = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let dlmax = dl.iter().cloned().fold(0.0, f64::max);
    let eps: Vec<f64> = (0..kk)
        .map(|k| dl[k] + dlmax + 2.0 * u * kk as f64 * (3.0 + 2.0 * (logits[k] - lmax).abs()))
        .collect();
    let mean_eps: f64 = rho.iter().zip(&eps).map(|(r, e)| r * e).sum();
    let drho: Vec<f64> = (0..kk)
        .map(|k| rho[k] * (eps[k] + mean_eps) + gamma(kk + 1) * rho[k])
        .collect();
    let mix_bound = |vectors: &[Vec<f64>], errs: &[Vec<f64>]| -> Vec<f64> {
        let mut vbar = vec![0.0; d];
        for (v, r) in vectors.iter().zip(&rho) {
            for i in 0..d {
                vbar[i] += r * v[i];
            }
        }
        (0..d)
            .map(|i| {
                let mut b = 0.0;
                for k in 0..kk {
                    b += rho[k] * errs[k][i]
                        + drho[k] * (vectors[k][i] - vbar[i]).abs()
                        + gamma(kk + 2) * rho[k] * vectors[k][i].abs();
                }
                2.0 * b
                    + tiny
                        * kk as f64
                        * (1.0 + vectors.iter().map(|v| v[i].abs()).fold(0.0, f64::max))
            })
            .collect()
    };
    let mut scores = Vec::with_capacity(kk);
    let mut score_errs = Vec::with_capacity(kk);
    let mut means = Vec::with_capacity(kk);
    let mut mean_errs = Vec::with_capacity(kk);
    for (k, (c, nc)) in target.components().iter().zip(&comps).enumerate() {
        let g: Vec<f64> = linalg::mat_vec(&nc.precision, &deltas[k])
            .iter()
            .map(|v| -v)
            .collect();
        let a1 = abs_mat_vec(&nc.precision, &deltas[k]);
        let a2 = abs_mat_vec(&nc.precision, &ddeltas[k]);
        score_errs.push(
            (0..d)
                .map(|i| gamma(d + 2) * a1[i] + a2[i])
                .collect::<Vec<_>>(),
        );
        scores.push(g);
        let gd = linalg::mat_vec(&nc.gain, &deltas[k]);
        let b1 = abs_mat_vec(&nc.gain, &deltas[k]);
        let b2 = abs_mat_vec(&nc.gain, &ddeltas[k]);
        means.push((0..d).map(|i| c.mean[i] + gd[i]).collect::<Vec<_>>());
        mean_errs.push(
            (0..d)
                .map(|i| gamma(d + 2) * b1[i] + b2[i] + u * c.mean[i].abs())
                .collect::<Vec<_>>(),
        );
    }
    let resp_bound = drho.iter().map(|v| 2.0 * v + tiny).collect();
    Ok((
        resp_bound,
        mix_bound(&scores, &score_errs),
        mix_bound(&means, &mean_errs),
    ))
}

fn abs_mat_vec(a: &Mat, v: &[f64]) -> Vec<f64> {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| (a[(i, j)] * v[j]).abs()).sum())
        .collect()
}

/// The f64 reference of the kernel at every row of `points`: responsibilities, score
/// ([`ClosedForm::score`]) and posterior mean ([`ClosedForm::posterior_mean`]).
pub fn gmm_posterior_reference(
    target: &GaussianMixture,
    points: &Mat,
    sigma: f64,
) -> Result<GmmBatch> {
    let mut out = GmmBatch {
        responsibilities: vec![],
        score: vec![],
        posterior_mean: vec![],
    };
    for p in 0..points.nrows() {
        let y = linalg::row(points, p);
        out.responsibilities
            .extend(target.responsibilities(&y, sigma)?);
        out.score.extend(target.score(&y, sigma)?);
        out.posterior_mean.extend(target.posterior_mean(&y, sigma)?);
    }
    Ok(out)
}
