//! Exact raw and mixed moments `E[x^α] = E[∏_i x_i^{α_i}]` (multi-index α) of Gaussian mixtures
//! — Gaussians, GMMs, and discrete laws as mixtures of point masses — and of the noisy
//! observation `y = x + σg`, plus the monomial feature map of the polynomial denoisers.
//!
//! Two routes for the noisy moments:
//! * [`noisy_moment`]: the binomial expansion `E[y^α] = Σ_{β≤α} C(α, β) E[x^β] σ^{|α−β|} E[g^{α−β}]`
//!   with the standard normal moments `E[g^k] = (k − 1)!!` (k even, 0 for k odd);
//! * [`joint_moment`]: Stein's recursion on the joint law of (x, y), itself a Gaussian mixture in
//!   2n dimensions with component covariances `[[Σ_k, Σ_k], [Σ_k, Σ_k + σ²I]]`.
//!
//! For one Gaussian N(μ, Σ), Stein's lemma `E[x_j g(x)] = μ_j E[g(x)] + Σ_k Σ_jk E[∂_k g(x)]`
//! with `g = x^{α − e_j}` gives the recursion
//! `E[x^α] = μ_j E[x^{α−e_j}] + Σ_k Σ_jk (α − e_j)_k E[x^{α−e_j−e_k}]`, memoised per component.

use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::targets::{GaussianMixture, Target};
use std::collections::HashMap;

/// A multi-index α: `α[i]` is the power of coordinate i.
pub type MultiIndex = Vec<usize>;

/// All monomials of total degree 1..=`max_degree` in `n_vars` variables, in graded
/// lexicographic order: by total degree, then by exponent vector in descending lexicographic
/// order (in 2-D: x, y, x², xy, y², x³, …).
pub fn monomials(n_vars: usize, max_degree: usize) -> Vec<MultiIndex> {
    let mut out = Vec::new();
    for degree in 1..=max_degree {
        let mut current = vec![0; n_vars];
        push_degree(&mut out, &mut current, 0, degree);
    }
    out
}

fn push_degree(out: &mut Vec<MultiIndex>, current: &mut MultiIndex, var: usize, left: usize) {
    let n = current.len();
    if var + 1 == n {
        current[var] = left;
        out.push(current.clone());
        current[var] = 0;
        return;
    }
    if n == 0 {
        return;
    }
    for power in (0..=left).rev() {
        current[var] = power;
        push_degree(out, current, var + 1, left - power);
    }
    current[var] = 0;
}

/// `y^α = ∏_i y_i^{α_i}`.
pub fn monomial_value(y: &[f64], alpha: &[usize]) -> f64 {
    y.iter()
        .zip(alpha)
        .map(|(v, &p)| v.powi(p as i32))
        .product()
}

/// The feature vector `h(y) = (y^α)_α` over `basis`.
pub fn features(y: &[f64], basis: &[MultiIndex]) -> Vec<f64> {
    basis.iter().map(|a| monomial_value(y, a)).collect()
}

/// Moments of one Gaussian by Stein's recursion, memoised.
struct GaussianMoments<'a> {
    mean: &'a [f64],
    cov: &'a Mat,
    memo: HashMap<MultiIndex, f64>,
}

impl GaussianMoments<'_> {
    fn moment(&mut self, alpha: &MultiIndex) -> f64 {
        let Some(j) = alpha.iter().position(|&p| p > 0) else {
            return 1.0;
        };
        if let Some(&v) = self.memo.get(alpha) {
            return v;
        }
        let mut reduced = alpha.clone();
        reduced[j] -= 1;
        let mut value = self.mean[j] * self.moment(&reduced);
        for k in 0..alpha.len() {
            let c = self.cov[(j, k)];
            if reduced[k] > 0 && c != 0.0 {
                let mut twice = reduced.clone();
                twice[k] -= 1;
                value += c * reduced[k] as f64 * self.moment(&twice);
            }
        }
        self.memo.insert(alpha.clone(), value);
        value
    }
}

fn check_index(what: &str, alpha: &[usize], dim: usize) -> Result<()> {
    if alpha.len() != dim {
        return Err(Error::DimensionMismatch {
            what: format!("{what} multi-index").into(),
            expected: dim,
            got: alpha.len(),
        });
    }
    Ok(())
}

/// Exact moments `E[x^α]` of a Gaussian mixture for every α in `indices`.
pub fn mixture_moments(target: &GaussianMixture, indices: &[MultiIndex]) -> Result<Vec<f64>> {
    for a in indices {
        check_index("moment", a, target.dim())?;
    }
    let mut out = vec![0.0; indices.len()];
    for c in target.components() {
        let cov = c.factor.covariance();
        let mut g = GaussianMoments {
            mean: &c.mean,
            cov: &cov,
            memo: HashMap::new(),
        };
        for (o, a) in out.iter_mut().zip(indices) {
            *o += c.weight * g.moment(a);
        }
    }
    Ok(out)
}

/// `E[g^k]` for g ~ N(0, 1): `(k − 1)!!` for even k, 0 for odd k.
pub(crate) fn standard_normal_moment(k: usize) -> f64 {
    if k % 2 == 1 {
        return 0.0;
    }
    (1..k).step_by(2).map(|v| v as f64).product()
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// `E[y^α]` for `y = x + σg` by the binomial expansion over `β ≤ α` (route 1).
pub fn noisy_moment(target: &GaussianMixture, sigma: f64, alpha: &[usize]) -> Result<f64> {
    crate::error::ensure_sigma(sigma)?;
    check_index("noisy moment", alpha, target.dim())?;
    let mut betas: Vec<MultiIndex> = vec![vec![]];
    for &p in alpha {
        betas = betas
            .into_iter()
            .flat_map(|b| {
                (0..=p).map(move |q| {
                    let mut nb = b.clone();
                    nb.push(q);
                    nb
                })
            })
            .collect();
    }
    let x_moments = mixture_moments(target, &betas)?;
    Ok(betas
        .iter()
        .zip(&x_moments)
        .map(|(beta, mx)| {
            let mut term = *mx;
            for (&a, &b) in alpha.iter().zip(beta) {
                term *= binomial(a, b) * sigma.powi((a - b) as i32) * standard_normal_moment(a - b);
            }
            term
        })
        .sum())
}

/// The joint law of (x, y), y = x + σg, as a 2n-dimensional Gaussian mixture.
pub(crate) fn joint_mixture(target: &GaussianMixture, sigma: f64) -> Result<GaussianMixture> {
    crate::error::ensure_sigma(sigma)?;
    let n = target.dim();
    let weights: Vec<f64> = target.components().iter().map(|c| c.weight).collect();
    let means: Vec<Vec<f64>> = target
        .components()
        .iter()
        .map(|c| c.mean.iter().chain(&c.mean).copied().collect())
        .collect();
    let covs: Vec<Mat> = target
        .components()
        .iter()
        .map(|c| {
            let s = c.factor.covariance();
            Mat::from_fn(2 * n, 2 * n, |i, j| {
                let v = s[(i % n, j % n)];
                if i >= n && j >= n && i == j {
                    v + sigma * sigma
                } else {
                    v
                }
            })
        })
        .collect();
    GaussianMixture::new(&weights, &means, &covs)
}

/// `E[x^γ y^β]` for every `(γ, β)` in `indices` by Stein's recursion on the joint law (route 2).
pub fn joint_moment(
    target: &GaussianMixture,
    sigma: f64,
    indices: &[(MultiIndex, MultiIndex)],
) -> Result<Vec<f64>> {
    let joint = joint_mixture(target, sigma)?;
    let flat: Vec<MultiIndex> = indices
        .iter()
        .map(|(g, b)| g.iter().chain(b).copied().collect())
        .collect();
    mixture_moments(&joint, &flat)
}
