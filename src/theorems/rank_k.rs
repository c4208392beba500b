//! `rank_k` — Levine–Weiss Thm 4 and App. A.1; book eq.3.2.50–3.2.80: the MSE-optimal rank-K
//! linear denoiser is `Σ_{i≤K} λᵢ/(λᵢ + σ²) uᵢuᵢᵀ` (applied to y − μ), its MSE is
//! `Σ_{i>K} λᵢ + Σ_{i≤K} λᵢσ²/(λᵢ + σ²)`, and sampling with it generates `N(μ, Σ_K)`.
//!
//! Routes compared: the eigen closed form ([`RankK`]) against the Eckart–Young construction of
//! App. A.1 (faer SVD of `ΣΣ̃^{-1/2}`); the MSE trace formula of any affine map against the
//! spectral formula; random rank-K maps against the optimum; the low-rank subspace and
//! low-rank-GMM closed forms of the book against the general mixture engine.

use super::{linear_gaussian, Check, Verdict, CPU_BACKEND};
use crate::denoisers::linear::OptimalAffine;
use crate::denoisers::rank_k::{
    affine_mse, descending_eigenvalues, eckart_young_weight, optimal_rank_k_mse, RankK,
};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, max_abs_diff, max_abs_diff_mat, Mat, EPS};
use crate::rng::Rng;
use crate::targets::{lowrank_gmm::lowrank_gmm, ClosedForm};

/// The theorem id.
pub const THEOREM: &str = "rank_k";

/// f64 rounding scale of the quantities here: `64 d ε (λ_max + σ²)/σ²` (backward-stable
/// eigen/SVD/products of d-term sums, amplified by the condition number of `Σ + σ²I`).
fn base_bound(d: usize, lambda_max: f64, sigma: f64) -> f64 {
    64.0 * d as f64 * EPS * (lambda_max + sigma * sigma) / (sigma * sigma)
}

/// Closed form `L*` against Eckart–Young (App. A.1). The SVD route's subspace is determined up
/// to `‖ΔM‖/gap` (Davis–Kahan/Wedin) with `gap = m_K − m_{K+1}`, `mᵢ = λᵢ/√(λᵢ + σ²)` the
/// singular values of `M = ΣΣ̃^{-1/2}`; tolerance `base·(1 + m_1/gap)`. A tie at the cut
/// (`gap ≤ 1e3·base·m_1`) makes `L*` non-unique and is refused (use [`mse_matches_formula`]).
pub fn closed_form_equals_eckart_young(covariance: &Mat, sigma: f64, k: usize) -> Result<Check> {
    let d = covariance.nrows();
    let rk = RankK::optimal(&vec![0.0; d], covariance, k)?;
    let lambdas = descending_eigenvalues(covariance)?;
    let m: Vec<f64> = lambdas
        .iter()
        .map(|l| l / (l + sigma * sigma).sqrt())
        .collect();
    let base = base_bound(d, lambdas[0], sigma);
    // Directions with λᵢ = 0 add nothing to L*, so a tie among zero eigenvalues is harmless:
    // the cut that matters is at the last positive λ among the first K.
    let k_eff = (0..k).filter(|&i| lambdas[i] > 0.0).count();
    let gap = if k_eff == 0 {
        f64::INFINITY
    } else if k_eff < k || k == d {
        m[k_eff - 1]
    } else {
        m[k - 1] - m[k]
    };
    if gap <= 1e3 * base * m[0].max(EPS) {
        return Err(Error::InvalidArgument {
            what: "rank K".into(),
            reason: format!(
                "λ_K = λ_(K+1) (tie at the cut, singular-value gap {gap:e}): the optimum is not \
                 unique"
            ),
        });
    }
    let w = rk.weight(sigma)?;
    let ey = eckart_young_weight(covariance, sigma, k)?;
    Ok(Check {
        residual: max_abs_diff_mat(&w, &ey),
        tolerance: base * (1.0 + m[0] / gap),
    })
}

/// `E‖x − f(y)‖²` of the optimal rank-K denoiser by the trace formula of any affine map
/// ([`affine_mse`], moments only) against `Σ_{i>K}λᵢ + Σ_{i≤K}λᵢσ²/(λᵢ+σ²)`. Tolerance
/// `base·(tr Σ + dσ²)`.
pub fn mse_matches_formula(mean: &[f64], covariance: &Mat, sigma: f64, k: usize) -> Result<Check> {
    let d = mean.len();
    let rk = RankK::optimal(mean, covariance, k)?;
    let mse = affine_mse(
        mean,
        covariance,
        &rk.weight(sigma)?,
        &rk.bias(sigma)?,
        sigma,
    )?;
    let lambdas = descending_eigenvalues(covariance)?;
    let formula = optimal_rank_k_mse(&lambdas, sigma, k);
    let trace: f64 = lambdas.iter().sum();
    let mu2: f64 = linalg::dot(mean, mean);
    Ok(Check {
        residual: (mse - formula).abs(),
        tolerance: base_bound(d, lambdas[0], sigma) * (trace + mu2 + d as f64 * sigma * sigma),
    })
}

/// `trials` random rank-K maps `L = AB` (Gaussian A, B, scaled by a random factor in
/// [0.01, 10]) with their best bias `μ − Lμ`: none has MSE below the optimum. Residual:
/// `max(MSE* − MSE(AB))` (≤ 0 when the claim holds); tolerance the formula's rounding bound.
pub fn no_random_rank_k_map_beats_optimum(
    mean: &[f64],
    covariance: &Mat,
    sigma: f64,
    k: usize,
    trials: usize,
    rng: &mut Rng,
) -> Result<Check> {
    let d = mean.len();
    let lambdas = descending_eigenvalues(covariance)?;
    let best = optimal_rank_k_mse(&lambdas, sigma, k);
    let mut worst = f64::NEG_INFINITY;
    for _ in 0..trials {
        let scale = 10f64.powf(3.0 * rng.uniform() - 2.0);
        let a = Mat::from_fn(d, k, |_, _| rng.normal() * scale);
        let b = Mat::from_fn(k, d, |_, _| rng.normal() / (d as f64).sqrt());
        let l = &a * &b;
        let bias: Vec<f64> = (0..d)
            .map(|i| mean[i] - (0..d).map(|j| l[(i, j)] * mean[j]).sum::<f64>())
            .collect();
        worst = worst.max(best - affine_mse(mean, covariance, &l, &bias, sigma)?);
    }
    let trace: f64 = lambdas.iter().sum();
    Ok(Check {
        residual: worst.max(0.0),
        tolerance: base_bound(d, lambdas[0], sigma) * (trace + d as f64 * sigma * sigma),
    })
}

/// With K ≥ rank Σ the rank-K optimum is the full optimal affine denoiser: weights equal within
/// `base`.
pub fn full_rank_limit(mean: &[f64], covariance: &Mat, sigma: f64, k: usize) -> Result<Check> {
    let d = mean.len();
    let rk = RankK::optimal(mean, covariance, k)?;
    let full = OptimalAffine::from_moments(mean, covariance)?;
    let lambdas = descending_eigenvalues(covariance)?;
    Ok(Check {
        residual: max_abs_diff_mat(&rk.weight(sigma)?, &full.weight(sigma)?)
            .max(max_abs_diff(&rk.bias(sigma)?, &full.bias(sigma)?)),
        tolerance: base_bound(d, lambdas[0], sigma) * (1.0 + linalg::max_abs(mean)),
    })
}

/// Book eq.3.2.58: for `Σ = UUᵀ` with orthonormal U (d×P), the optimal denoiser is
/// `UUᵀ/(1 + t²)`; compared with the Wiener filter `Σ(Σ + t²I)⁻¹` ([`OptimalAffine`]).
pub fn low_rank_gaussian_denoiser(u: &Mat, t: f64) -> Result<Check> {
    let d = u.nrows();
    let sigma = u * u.transpose();
    let w = OptimalAffine::from_moments(&vec![0.0; d], &sigma)?.weight(t)?;
    let book = Mat::from_fn(d, d, |i, j| sigma[(i, j)] / (1.0 + t * t));
    Ok(Check {
        residual: max_abs_diff_mat(&w, &book),
        tolerance: base_bound(d, 1.0, t),
    })
}

/// Book eq.3.2.60–3.2.66: the MSE of the subspace denoiser `VVᵀy/(1+t²)` (V orthonormal d×P)
/// for zero-mean x with second moment M is
/// `E‖x‖² + (1/(1+t²)² − 2/(1+t²)) tr(VᵀMV) + t²P/(1+t²)²`.
pub fn subspace_denoiser_mse(second_moment: &Mat, v: &Mat, t: f64) -> f64 {
    let d = second_moment.nrows();
    let q = 1.0 / (1.0 + t * t);
    let vmv = v.transpose() * second_moment * v;
    let tr_vmv: f64 = (0..v.ncols()).map(|i| vmv[(i, i)]).sum();
    let tr_m: f64 = (0..d).map(|i| second_moment[(i, i)]).sum();
    tr_m + (q * q - 2.0 * q) * tr_vmv + t * t * v.ncols() as f64 * q * q
}

/// Learning the subspace denoiser is PCA (eq.3.2.67): the book's MSE formula equals the trace
/// formula ([`affine_mse`]) for the top-P eigenvectors of M and for `trials` random orthonormal
/// V, and no random V beats the PCA basis. Residual: the larger of the formula mismatch and the
/// amount by which a random V beats PCA; tolerance `base·(tr M + dt²)`.
pub fn subspace_learning_is_pca(
    second_moment: &Mat,
    p: usize,
    t: f64,
    trials: usize,
    rng: &mut Rng,
) -> Result<Check> {
    let d = second_moment.nrows();
    let pca = RankK::optimal(&vec![0.0; d], second_moment, p)?;
    let v_pca = pca.top().basis.clone();
    let zero = vec![0.0; d];
    let mse_of = |v: &Mat| -> Result<(f64, f64)> {
        let w = Mat::from_fn(d, d, |i, j| {
            (0..p).map(|l| v[(i, l)] * v[(j, l)]).sum::<f64>() / (1.0 + t * t)
        });
        Ok((
            subspace_denoiser_mse(second_moment, v, t),
            affine_mse(&zero, second_moment, &w, &zero, t)?,
        ))
    };
    let (best, best_trace) = mse_of(&v_pca)?;
    let mut residual = (best - best_trace).abs();
    for _ in 0..trials {
        let g = Mat::from_fn(d, p, |_, _| rng.normal());
        let q = g.qr().compute_thin_Q();
        let (m, m_trace) = mse_of(&q)?;
        residual = residual.max((m - m_trace).abs()).max(best - m);
    }
    let lambdas = descending_eigenvalues(second_moment)?;
    let trace: f64 = lambdas.iter().sum();
    Ok(Check {
        residual,
        tolerance: base_bound(d, lambdas[0], t) * (trace + d as f64 * t * t),
    })
}

/// Book eq.3.2.80: for `x ~ (1/K)Σ_k N(0, U_kU_kᵀ)` (orthonormal U_k) the Bayes denoiser is
/// `1/(1+t²) Σ_k softmax_k(‖U_kᵀy‖²/(2t²(1+t²))) U_kU_kᵀy`; compared with the general mixture
/// engine's posterior mean (Woodbury route with responsibilities from the evidence).
///
/// The book's cancellation (eq.3.2.74) drops `det(U_kU_kᵀ + t²I)^{-1/2}`, which is the same for
/// every k only when all subspaces have the same dimension P. With `dimension_correction` the
/// logits carry the dropped term `−(P_k/2)·log((1 + t²)/t²)` (from
/// `log det(U_kU_kᵀ + t²I) = 2(d − P_k) log t + P_k log(1 + t²)`) and the form holds for any P_k.
/// Tolerance: the mixture bound [`super::tweedie::rounding_bound`] plus the softmax's
/// `8(d+K)ε·(1 + |logits|)·|y|`.
pub fn low_rank_gmm_softmax_form(
    bases: &[Mat],
    y: &[f64],
    t: f64,
    dimension_correction: bool,
) -> Result<Check> {
    let kk = bases.len();
    if kk == 0 {
        return Err(Error::InvalidArgument {
            what: "bases".into(),
            reason: "need at least one subspace".into(),
        });
    }
    let d = y.len();
    let target = lowrank_gmm(&vec![1.0 / kk as f64; kk], &vec![vec![0.0; d]; kk], bases)?;
    let general = target.posterior_mean(y, t)?;
    let proj: Vec<Vec<f64>> = bases
        .iter()
        .map(|u| {
            (0..u.ncols())
                .map(|l| (0..d).map(|i| u[(i, l)] * y[i]).sum())
                .collect()
        })
        .collect();
    let temp = 2.0 * t * t * (1.0 + t * t);
    let logits: Vec<f64> = proj
        .iter()
        .map(|c| {
            let correction = if dimension_correction {
                -0.5 * c.len() as f64 * ((1.0 + t * t) / (t * t)).ln()
            } else {
                0.0
            };
            linalg::dot(c, c) / temp + correction
        })
        .collect();
    let w = linalg::softmax(&logits);
    let mut book = vec![0.0; d];
    for (k, u) in bases.iter().enumerate() {
        for (l, c) in proj[k].iter().enumerate() {
            for (i, b) in book.iter_mut().enumerate() {
                *b += w[k] * c * u[(i, l)] / (1.0 + t * t);
            }
        }
    }
    let lmax = logits.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    Ok(Check {
        residual: max_abs_diff(&general, &book),
        tolerance: super::tweedie::rounding_bound(&target, y, t)?
            + 8.0 * (d + kk) as f64 * EPS * (1.0 + lmax) * linalg::max_abs(y),
    })
}

/// The spectral formula of the optimal rank-K MSE ([`optimal_rank_k_mse`]), re-exported for
/// tests: `Σ_{i>K}λᵢ + Σ_{i≤K}λᵢσ²/(λᵢ+σ²)`, λ descending.
pub fn optimal_mse_of(descending: &[f64], sigma: f64, k: usize) -> f64 {
    optimal_rank_k_mse(descending, sigma, k)
}

/// `Σ_K`: the top-K eigen-part of Σ.
pub fn truncated_covariance(covariance: &Mat, k: usize) -> Result<Mat> {
    let d = covariance.nrows();
    let rk = RankK::optimal(&vec![0.0; d], covariance, k)?;
    let f = rk.top().scaled_basis();
    Ok(&f * f.transpose())
}

/// GD on `W = A B` on the GPU from a random start converges to the rank-K optimum of the same
/// samples (reduced-rank regression in f64; at population moments it is the closed form, see
/// `eckart_young_weight`). Returns the check — residual `max|A B − W_K|` at the last checkpoint,
/// tolerance the f32 floor (`RankKGd::rounding_floor`) plus twice the change over the last
/// round (what is left of a converging sequence) — and the training record.
pub fn gpu_gd_converges_to_optimum(
    gpu: &Gpu,
    target: &dyn crate::targets::Target,
    sigma: f64,
    k: usize,
    n: usize,
    seed: u64,
) -> Result<(Check, crate::denoisers::gd::RankKGd)> {
    use crate::denoisers::gd::{gpu_moments, train_rank_k_gd};
    let (xs, ys) = linear_gaussian::noisy_pairs(target, sigma, n, seed);
    let moments = gpu_moments(gpu, &xs, &ys, true)?;
    let trained = train_rank_k_gd(gpu, &moments, k, 500, 8, seed)?;
    let h = &trained.history;
    let last = h[h.len() - 1].1;
    let change = if h.len() > 1 {
        (last - h[h.len() - 2].1).abs()
    } else {
        last
    };
    Ok((
        Check {
            residual: last,
            tolerance: trained.rounding_floor + 2.0 * change,
        },
        trained,
    ))
}

/// Default checks for `verify`.
pub fn default_verdicts(gpu: Result<&Gpu>) -> Vec<Verdict> {
    let mut out = Vec::new();
    out.push(Verdict::uncontrolled(
        THEOREM,
        "rank-K optimum = Eckart–Young; MSE formula; no random rank-K map beats it",
        CPU_BACKEND,
        || {
            let mut rng = Rng::new(0x4a4b, 0);
            let mut checks = Vec::new();
            for &d in &[3usize, 6, 10] {
                let f = Mat::from_fn(d, d, |_, _| rng.normal());
                let cov = &f * f.transpose();
                let mean = rng.normals(d);
                for k in 1..=d {
                    for &sigma in &[0.1, 1.0, 4.0] {
                        checks.push(closed_form_equals_eckart_young(&cov, sigma, k)?);
                        checks.push(mse_matches_formula(&mean, &cov, sigma, k)?);
                        checks.push(no_random_rank_k_map_beats_optimum(
                            &mean, &cov, sigma, k, 20, &mut rng,
                        )?);
                    }
                }
            }
            Ok(checks)
        },
    ));
    out.push(Verdict::uncontrolled(
        THEOREM,
        "DDIM with the rank-K optimum generates the closed-form law → N(μ, Σ_K) (χ², α=1e-6)",
        CPU_BACKEND,
        || {
            let mut rng = Rng::new(0x4a4c, 0);
            let f = Mat::from_fn(4, 4, |_, _| rng.normal());
            let cov = &f * f.transpose();
            let mean = rng.normals(4);
            let schedule = Schedule::vp_cosine(0.999, 40)?;
            let mut checks = Vec::new();
            for k in 1..=4 {
                checks.push(linear_gaussian::ddim_map_matches_closed_form(
                    &schedule, &mean, &cov, k,
                )?);
                checks.push(linear_gaussian::sampled_moments_match_closed_form(
                    &schedule, &mean, &cov, k, false, 10_000, k as u64,
                )?);
            }
            Ok(checks)
        },
    ));
    let backend = super::backend_label(&gpu);
    out.push(Verdict::uncontrolled(
        THEOREM,
        "GD on W = A·B on the GPU (WGSL GEMM) from random init converges to the rank-K optimum",
        &backend,
        || {
            let gpu = gpu?;
            let mut rng = Rng::new(0x4a4d, 0);
            let mut checks = Vec::new();
            for &(d, k) in &[(4usize, 1usize), (6, 2)] {
                let t = super::random_gmm(&mut rng, d, 2)?;
                checks.push(gpu_gd_converges_to_optimum(gpu, &t, 0.5, k, 1 << 13, 5)?.0);
            }
            Ok(checks)
        },
    ));
    out
}
