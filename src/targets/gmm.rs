//! The Gaussian mixture engine behind every closed-form target:
//! `p(x) = Σ_k w_k N(x; μ_k, Σ_k)` with each `Σ_k = U_k diag(λ_k) U_kᵀ` of any rank
//! (rank 0 is a point mass, so empirical laws are mixtures too).
//!
//! The noisy density is again a mixture: `p_σ(y) = Σ_k w_k N(y; μ_k, C_k)`, `C_k = Σ_k + σ²I`.
//!
//! *Density route* (spectral algebra, O(d·r) per component): with `δ = y − μ_k`, `c = U_kᵀδ`,
//! `δ_⊥ = δ − U_k c`,
//! `C_k⁻¹δ = δ_⊥/σ² + U_k (c ⊘ (λ_k + σ²))`, `log det C_k = (d−r) log σ² + Σ log(λ_i + σ²)`,
//! `∇log p_σ = −Σ_k ρ_k C_k⁻¹δ_k`, `∇²log p_σ = Σ_k ρ_k(−C_k⁻¹ + (g_k − s)(g_k − s)ᵀ)` with
//! `g_k = −C_k⁻¹δ_k`, `s = Σ_k ρ_k g_k` and responsibilities `ρ = softmax(log w_k + log N(y; μ_k, C_k))`.
//!
//! *Posterior route* (Bayes' rule with the factor `F_k = U_k diag(√λ_k)`, Woodbury algebra on the
//! r×r capacitance `K_k = σ²I + F_kᵀF_k`, Cholesky-solved): given component k,
//! `x | y ~ N(m_k, P_k)` with `m_k = μ_k + F_k K_k⁻¹ F_kᵀ δ` and `P_k = σ² F_k K_k⁻¹ F_kᵀ`
//! (the Wiener posterior, `Σ_k C_k⁻¹ = F_k K_k⁻¹ F_kᵀ`); the evidence uses the determinant lemma
//! `log det C_k = (d−r) log σ² + log det K_k` and `δᵀC_k⁻¹δ = (‖δ‖² − δᵀF_k K_k⁻¹F_kᵀδ)/σ²`;
//! then `E[x|y] = Σ ρ_k m_k` and, by the law of total covariance,
//! `Cov[x|y] = Σ ρ_k (P_k + (m_k − m)(m_k − m)ᵀ)`.
//!
//! The two routes share only the eigen-decomposition of the user's covariances; every formula
//! after it is different code, so Tweedie's and Miyasawa's identities are not built in.
//!
//! *Accuracy over σ.* σ must lie in [`crate::error::SIGMA_RANGE`] (σ² a normal f64), else
//! [`Error::SigmaOutOfRange`]. For a full-rank component the complement terms `δ_⊥/σ²` and
//! `(I − UUᵀ)/σ²` are exactly zero and are not formed, so each quantity has relative (normwise)
//! error `γ_{O(d)}·κ(C_k)` with `κ(C_k) = (λ_max + σ²)/(λ_min + σ²) ≤ κ(Σ_k)`, uniformly in σ
//! (`tests/targets.rs::closed_forms_stay_accurate_down_to_tiny_sigma` checks this against a
//! dense Cholesky route down to σ = 1e-150). For a rank-deficient component, `δ_⊥ = δ − Uc`
//! carries an absolute error up to `γ_{r+1}‖δ‖`, which enters the score as `γ_{r+1}‖δ‖/σ²`: the
//! result is accurate only while `‖δ_⊥‖ ≫ γ_{r+1}‖δ‖`, i.e. for y not within ~ε‖δ‖ of the
//! component's support (there the score is of size `‖δ_⊥‖/σ²` and its sign undetermined).

use super::{ClosedForm, Target};
use crate::error::{ensure_finite, ensure_len, ensure_sigma_squared, Error, Result};
use crate::linalg::{self, dot, log_sum_exp, softmax, Mat, SpectralFactor};
use crate::rng::Rng;
use std::cell::OnceCell;

mod batch;

pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// One mixture component `w N(μ, U diag(λ) Uᵀ)`.
#[derive(Debug, Clone)]
pub struct Component {
    /// Mixture weight `w_k ≥ 0`.
    pub weight: f64,
    /// Mean `μ_k` (length d).
    pub mean: Vec<f64>,
    /// Spectral factor of `Σ_k` (rank r_k ≤ d; r_k = 0 for a point mass).
    pub factor: SpectralFactor,
}

/// A Gaussian mixture `Σ_k w_k N(μ_k, Σ_k)` with validated weights, means and PSD covariances.
#[derive(Debug, Clone)]
pub struct GaussianMixture {
    dim: usize,
    components: Vec<Component>,
}

/// Dense matrices of one component of `p_σ` (see [`GaussianMixture::noisy_components`]).
#[derive(Debug, Clone)]
pub struct NoisyComponent {
    /// `C_k⁻¹ = (Σ_k + σ²I)⁻¹`.
    pub precision: Mat,
    /// `G_k = Σ_k C_k⁻¹`, so the component's posterior mean is `μ_k + G_k (y − μ_k)`.
    pub gain: Mat,
    /// `log w_k − ½(d log 2π + log det C_k)`.
    pub log_norm: f64,
}

/// Per-component quantities of the density route at one `(y, σ)`.
struct DensityTerms {
    log_weighted_evidence: f64,
    /// `g_k = −C_k⁻¹(y − μ_k)`.
    gradient: Vec<f64>,
}

/// The y-independent part of one component's density route at one σ.
struct ComponentDensity {
    /// `log w_k`.
    log_weight: f64,
    /// `d log 2π + log det C_k`, `log det C_k = (d − r) log σ² + Σ_j log(λ_j + σ²)`.
    log_norm_sum: f64,
    /// `λ_j + σ²`, the eigenvalues of `C_k` along the component's basis.
    noisy_eigenvalues: Vec<f64>,
    /// `C_k⁻¹` (d×d), formed on the first [`MixtureDensity::score_hessian`].
    precision: OnceCell<Mat>,
}

/// A mixture's noisy density `p_σ` at one noise level σ ([`GaussianMixture::density_at`]):
/// every component's y-independent factors formed once, so that each query y costs only its
/// own projections. The per-point [`ClosedForm`] density routes (`log_density`, `score`,
/// `score_hessian`) run through it, so both give the same numbers bit for bit.
pub struct MixtureDensity<'m> {
    mixture: &'m GaussianMixture,
    sigma: f64,
    components: Vec<ComponentDensity>,
}

impl MixtureDensity<'_> {
    /// Every component's terms at y (gradients when `with_gradient`) and the responsibilities
    /// `P(k | y)` (softmax of the log weighted evidences).
    fn route(&self, y: &[f64], with_gradient: bool) -> (Vec<DensityTerms>, Vec<f64>) {
        let m = self.mixture;
        let s2 = self.sigma * self.sigma;
        let terms: Vec<DensityTerms> = m
            .components
            .iter()
            .zip(&self.components)
            .map(|(c, prepared)| m.density_terms(c, prepared, y, s2, with_gradient))
            .collect();
        let logits: Vec<f64> = terms.iter().map(|t| t.log_weighted_evidence).collect();
        let resp = softmax(&logits);
        (terms, resp)
    }

    /// `log p_σ(y) = log Σ_k w_k N(y; μ_k, C_k)`, by log-sum-exp of the components' log
    /// weighted evidences (y must have the mixture's dimension and be finite).
    pub fn log_density(&self, y: &[f64]) -> Result<f64> {
        let m = self.mixture;
        m.check_query(y, self.sigma)?;
        let s2 = self.sigma * self.sigma;
        let logits: Vec<f64> = m
            .components
            .iter()
            .zip(&self.components)
            .map(|(c, prepared)| {
                m.density_terms(c, prepared, y, s2, false)
                    .log_weighted_evidence
            })
            .collect();
        Ok(log_sum_exp(&logits))
    }

    /// `∇log p_σ(y) = Σ_k ρ_k g_k`, `g_k = −C_k⁻¹(y − μ_k)`.
    pub fn score(&self, y: &[f64]) -> Result<Vec<f64>> {
        self.mixture.check_query(y, self.sigma)?;
        let (terms, resp) = self.route(y, true);
        Ok(mix(
            terms.iter().map(|t| &t.gradient),
            &resp,
            self.mixture.dim,
        ))
    }

    /// `∇²log p_σ(y) = Σ_k ρ_k (−C_k⁻¹ + (g_k − s)(g_k − s)ᵀ)`, s the score.
    pub fn score_hessian(&self, y: &[f64]) -> Result<Mat> {
        let m = self.mixture;
        m.check_query(y, self.sigma)?;
        let (terms, resp) = self.route(y, true);
        let d = m.dim;
        let s = mix(terms.iter().map(|t| &t.gradient), &resp, d);
        let mut h = Mat::zeros(d, d);
        for (((c, prepared), t), r) in m
            .components
            .iter()
            .zip(&self.components)
            .zip(&terms)
            .zip(&resp)
        {
            if *r == 0.0 {
                continue;
            }
            let prec = prepared
                .precision
                .get_or_init(|| m.noisy_precision(c, self.sigma));
            for j in 0..d {
                for i in 0..d {
                    h[(i, j)] +=
                        r * (-prec[(i, j)] + (t.gradient[i] - s[i]) * (t.gradient[j] - s[j]));
                }
            }
        }
        Ok(h)
    }
}

/// Per-component quantities of the posterior route at one `(y, σ)`.
struct PosteriorTerms {
    log_weighted_evidence: f64,
    /// `m_k = μ_k + F K⁻¹ Fᵀ δ`.
    mean: Vec<f64>,
}

/// The y-independent part of one component's posterior route at one σ, with `C = FFᵀ + σ²I`
/// (F = U diag(√λ), rank r) and the capacitance `K = FᵀF + σ²I` (r×r).
struct ComponentPosterior {
    /// `F` (d×r).
    factor: Mat,
    /// `Fᵀ` (r×d).
    factor_t: Mat,
    /// `K⁻¹Fᵀ` (r×d).
    solved_factor_t: Mat,
    /// `F K⁻¹ Fᵀ` (d×d), so the component's posterior covariance is `σ² F K⁻¹ Fᵀ`: formed on
    /// the first [`MixturePosterior::covariance`] (a posterior mean never needs it).
    within: OnceCell<Mat>,
    /// `log det C = (d − r) log σ² + log det K`.
    log_det: f64,
}

/// A mixture's posterior family at one noise level σ ([`GaussianMixture::posterior_at`]):
/// every component's y-independent factors formed once, so that each query y costs only its
/// own products. The per-point [`ClosedForm`] routes run through it, so both give the same
/// numbers bit for bit.
pub struct MixturePosterior<'m> {
    mixture: &'m GaussianMixture,
    sigma: f64,
    components: Vec<ComponentPosterior>,
}

impl MixturePosterior<'_> {
    /// Every component's terms at y and the responsibilities `P(k | y)` (softmax of the log
    /// weighted evidences).
    fn route(&self, y: &[f64]) -> (Vec<PosteriorTerms>, Vec<f64>) {
        let m = self.mixture;
        let terms: Vec<PosteriorTerms> = m
            .components
            .iter()
            .zip(&self.components)
            .map(|(c, prepared)| m.posterior_terms(c, prepared, y, self.sigma))
            .collect();
        let logits: Vec<f64> = terms.iter().map(|t| t.log_weighted_evidence).collect();
        let resp = softmax(&logits);
        (terms, resp)
    }

    /// `E[x | y] = Σ_k ρ_k m_k` (y must have the mixture's dimension and be finite).
    pub fn mean(&self, y: &[f64]) -> Result<Vec<f64>> {
        self.mixture.check_query(y, self.sigma)?;
        let (terms, resp) = self.route(y);
        Ok(mix(terms.iter().map(|t| &t.mean), &resp, self.mixture.dim))
    }

    /// `Cov[x | y] = Σ_k ρ_k σ² F_k K_k⁻¹ F_kᵀ + Σ_k ρ_k (m_k − m̄)(m_k − m̄)ᵀ`, the spread in
    /// its pairwise form.
    pub fn covariance(&self, y: &[f64]) -> Result<Mat> {
        self.mixture.check_query(y, self.sigma)?;
        let (terms, resp) = self.route(y);
        let d = self.mixture.dim;
        let s2 = self.sigma * self.sigma;
        let mut cov = Mat::zeros(d, d);
        for (prepared, r) in self.components.iter().zip(&resp) {
            if *r == 0.0 || prepared.factor_t.nrows() == 0 {
                continue; // a point mass's posterior covariance is zero
            }
            let within = prepared
                .within
                .get_or_init(|| linalg::matmul(&prepared.factor, &prepared.solved_factor_t));
            for j in 0..d {
                for i in 0..d {
                    cov[(i, j)] += r * s2 * within[(i, j)];
                }
            }
        }
        add_pairwise_spread(&mut cov, terms.iter().map(|t| &t.mean), &resp);
        Ok(cov)
    }

    /// The responsibilities `P(k | y)`.
    pub fn responsibilities(&self, y: &[f64]) -> Result<Vec<f64>> {
        self.mixture.check_query(y, self.sigma)?;
        Ok(self.route(y).1)
    }
}

impl GaussianMixture {
    /// A mixture from weights, means and covariance matrices, validating every input:
    /// equal dimensions, finite values, weights ≥ 0 summing to 1 (within 1e-9), symmetric PSD
    /// covariances (singular allowed).
    pub fn new(weights: &[f64], means: &[Vec<f64>], covariances: &[Mat]) -> Result<Self> {
        if covariances.len() != means.len() {
            return Err(Error::DimensionMismatch {
                what: "number of covariances (one per mean)".into(),
                expected: means.len(),
                got: covariances.len(),
            });
        }
        let dim = means.first().map_or(0, Vec::len);
        let mut factors = Vec::with_capacity(means.len());
        for (k, cov) in covariances.iter().enumerate() {
            if cov.nrows() != dim {
                return Err(Error::DimensionMismatch {
                    what: format!("covariance of component {k}").into(),
                    expected: dim,
                    got: cov.nrows(),
                });
            }
            factors.push(SpectralFactor::from_covariance(
                &format!("of component {k}"),
                cov,
            )?);
        }
        Self::from_factors(weights, means, factors)
    }

    /// A mixture whose components are given by spectral factors (already validated PSD).
    pub(crate) fn from_factors(
        weights: &[f64],
        means: &[Vec<f64>],
        factors: Vec<SpectralFactor>,
    ) -> Result<Self> {
        if means.is_empty() {
            return Err(Error::InvalidArgument {
                what: "means".into(),
                reason: "a mixture needs at least one component, got 0".into(),
            });
        }
        if weights.len() != means.len() {
            return Err(Error::DimensionMismatch {
                what: "number of weights (one per mean)".into(),
                expected: means.len(),
                got: weights.len(),
            });
        }
        ensure_finite("weights", weights)?;
        if let Some((k, w)) = weights.iter().enumerate().find(|(_, w)| **w < 0.0) {
            return Err(Error::InvalidWeights {
                reason: format!("weight {k} is negative: {w}"),
            });
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(Error::InvalidWeights {
                reason: format!("weights sum to {total}, not 1"),
            });
        }
        let dim = means[0].len();
        if dim == 0 {
            return Err(Error::InvalidArgument {
                what: "dimension".into(),
                reason: "means have length 0".into(),
            });
        }
        let mut components = Vec::with_capacity(means.len());
        for (k, ((w, mean), factor)) in weights.iter().zip(means).zip(factors).enumerate() {
            ensure_len(&format!("mean of component {k}"), mean, dim)?;
            ensure_finite(&format!("mean of component {k}"), mean)?;
            if factor.dim() != dim && factor.rank() > 0 {
                return Err(Error::DimensionMismatch {
                    what: format!("covariance of component {k}").into(),
                    expected: dim,
                    got: factor.dim(),
                });
            }
            let factor = if factor.rank() == 0 {
                SpectralFactor {
                    basis: Mat::zeros(dim, 0),
                    eigenvalues: vec![],
                }
            } else {
                factor
            };
            components.push(Component {
                weight: *w,
                mean: mean.clone(),
                factor,
            });
        }
        Ok(Self { dim, components })
    }

    /// The components.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The law of `a·x` for `x ~ self` (means `aμ_k`, covariances `a²Σ_k`): the data term of the
    /// variance-preserving process `x_t = α_t x + σ_t g`, whose density is `(a·p)_σ`.
    pub fn scaled(&self, a: f64) -> Result<Self> {
        if !a.is_finite() || a == 0.0 {
            return Err(Error::InvalidArgument {
                what: "scale".into(),
                reason: format!("must be finite and non-zero, got {a}"),
            });
        }
        let components = self
            .components
            .iter()
            .map(|c| Component {
                weight: c.weight,
                mean: c.mean.iter().map(|m| a * m).collect(),
                factor: SpectralFactor {
                    basis: c.factor.basis.clone(),
                    eigenvalues: c.factor.eigenvalues.iter().map(|l| a * a * l).collect(),
                },
            })
            .collect();
        Ok(Self {
            dim: self.dim,
            components,
        })
    }

    fn check_query(&self, y: &[f64], sigma: f64) -> Result<()> {
        ensure_sigma_squared(sigma)?;
        ensure_len("query point y", y, self.dim)?;
        ensure_finite("query point y", y)
    }

    /// The y-independent part of component `c`'s density route at σ (`s2` = σ²).
    fn component_density(c: &Component, d: usize, s2: f64) -> ComponentDensity {
        let noisy_eigenvalues: Vec<f64> = c.factor.eigenvalues.iter().map(|l| l + s2).collect();
        let mut log_det = (d - c.factor.rank()) as f64 * s2.ln();
        for v in &noisy_eigenvalues {
            log_det += v.ln();
        }
        ComponentDensity {
            log_weight: c.weight.ln(),
            log_norm_sum: d as f64 * LN_2PI + log_det,
            noisy_eigenvalues,
            precision: OnceCell::new(),
        }
    }

    /// Density route for component `c` at y: its log weighted evidence
    /// `log w_k − ½(d log 2π + log det C_k + δᵀC_k⁻¹δ)`, δ = y − μ_k, and, when `with_gradient`,
    /// `g_k = −C_k⁻¹δ` (else an empty vector), all in `c`'s eigenbasis.
    fn density_terms(
        &self,
        c: &Component,
        prepared: &ComponentDensity,
        y: &[f64],
        s2: f64,
        with_gradient: bool,
    ) -> DensityTerms {
        let d = self.dim;
        let rank = c.factor.rank();
        let u = &c.factor.basis;
        // δ, then δ_⊥ in place
        let mut perp: Vec<f64> = y.iter().zip(&c.mean).map(|(a, b)| a - b).collect();
        let coords: Vec<f64> = (0..rank)
            .map(|j| (0..d).map(|i| u[(i, j)] * perp[i]).sum())
            .collect();
        // δ_⊥ is exactly zero for a full-rank component; forming it as δ − Uc would leave
        // rounding ~ε‖δ‖ that the 1/σ² below turns into an error ~ε‖δ‖/σ² (the failure at small σ)
        if rank < d {
            for (j, cj) in coords.iter().enumerate() {
                for (i, p) in perp.iter_mut().enumerate() {
                    *p -= u[(i, j)] * cj;
                }
            }
        } else {
            perp.fill(0.0);
        }
        let mut quad = dot(&perp, &perp) / s2;
        let mut gradient = if with_gradient {
            for p in &mut perp {
                *p = -*p / s2;
            }
            perp
        } else {
            Vec::new()
        };
        for (j, (&cj, &v)) in coords.iter().zip(&prepared.noisy_eigenvalues).enumerate() {
            quad += cj * cj / v;
            for (i, g) in gradient.iter_mut().enumerate() {
                *g -= u[(i, j)] * cj / v;
            }
        }
        DensityTerms {
            log_weighted_evidence: prepared.log_weight - 0.5 * (prepared.log_norm_sum + quad),
            gradient,
        }
    }

    /// The mixture's noisy density `p_σ` at one noise level σ with every component's
    /// y-independent factors (log weights, log determinants, noisy eigenvalues) formed once
    /// ([`MixtureDensity`]): for many queries at one σ.
    pub fn density_at(&self, sigma: f64) -> Result<MixtureDensity<'_>> {
        ensure_sigma_squared(sigma)?;
        let s2 = sigma * sigma;
        Ok(MixtureDensity {
            mixture: self,
            sigma,
            components: self
                .components
                .iter()
                .map(|c| Self::component_density(c, self.dim, s2))
                .collect(),
        })
    }

    /// Dense per-component matrices of `p_σ` for kernels that take them as input: the precision
    /// `C_k⁻¹`, the Wiener gain `G_k = Σ_k C_k⁻¹ = U diag(λ/(λ+σ²)) Uᵀ` and the log normaliser
    /// `log w_k − ½(d log 2π + log det C_k)`, all by the spectral route.
    pub fn noisy_components(&self, sigma: f64) -> Result<Vec<NoisyComponent>> {
        ensure_sigma_squared(sigma)?;
        let d = self.dim;
        let s2 = sigma * sigma;
        Ok(self
            .components
            .iter()
            .map(|c| {
                let u = &c.factor.basis;
                let mut gain = Mat::zeros(d, d);
                let mut logdet = (d - c.factor.rank()) as f64 * s2.ln();
                for (k, &lambda) in c.factor.eigenvalues.iter().enumerate() {
                    logdet += (lambda + s2).ln();
                    let shrink = lambda / (lambda + s2);
                    for j in 0..d {
                        for i in 0..d {
                            gain[(i, j)] += shrink * u[(i, k)] * u[(j, k)];
                        }
                    }
                }
                NoisyComponent {
                    precision: self.noisy_precision(c, sigma),
                    gain,
                    log_norm: c.weight.ln() - 0.5 * (d as f64 * LN_2PI + logdet),
                }
            })
            .collect())
    }

    /// `C_k⁻¹ = (I − UUᵀ)/σ² + U diag(1/(λ+σ²)) Uᵀ`, dense. For a full-rank component the
    /// complement term is exactly zero and is left out: forming `I/σ² − UUᵀ/σ²` would leave an
    /// error ~ε/σ² against entries ~1/λ.
    fn noisy_precision(&self, c: &Component, sigma: f64) -> Mat {
        let d = self.dim;
        let s2 = sigma * sigma;
        let u = &c.factor.basis;
        let full_rank = c.factor.rank() == d;
        let mut p = Mat::from_fn(
            d,
            d,
            |i, j| {
                if i == j && !full_rank {
                    1.0 / s2
                } else {
                    0.0
                }
            },
        );
        for (k, &lambda) in c.factor.eigenvalues.iter().enumerate() {
            let coef = if full_rank {
                1.0 / (lambda + s2)
            } else {
                1.0 / (lambda + s2) - 1.0 / s2
            };
            for j in 0..d {
                for i in 0..d {
                    p[(i, j)] += coef * u[(i, k)] * u[(j, k)];
                }
            }
        }
        p
    }

    /// The part of component `c`'s posterior route that does not depend on y, at noise σ:
    /// `F`, `Fᵀ`, `K⁻¹Fᵀ` (K the capacitance `FᵀF + σ²I`) and `log det C = (d − r) log σ² +
    /// log det K` (`C = FFᵀ + σ²I`).
    fn component_posterior(&self, c: &Component, sigma: f64) -> Result<ComponentPosterior> {
        let d = self.dim;
        let s2 = sigma * sigma;
        let r = c.factor.rank();
        let factor = c.factor.scaled_basis();
        if r == 0 {
            return Ok(ComponentPosterior {
                factor_t: Mat::zeros(0, d),
                solved_factor_t: Mat::zeros(0, d),
                within: OnceCell::new(),
                log_det: d as f64 * s2.ln(),
                factor,
            });
        }
        let factor_t = factor.transpose().to_owned();
        let mut capacitance = linalg::matmul(&factor_t, &factor);
        for i in 0..r {
            capacitance[(i, i)] += s2;
        }
        let solved_factor_t = linalg::spd_solve(&capacitance, &factor_t)?; // K⁻¹Fᵀ (r×d)
        let log_det = (d - r) as f64 * s2.ln() + linalg::spd_logdet(&capacitance)?;
        Ok(ComponentPosterior {
            factor,
            factor_t,
            solved_factor_t,
            within: OnceCell::new(),
            log_det,
        })
    }

    /// Posterior route for component `c` at y, from its y-independent part `prepared`.
    fn posterior_terms(
        &self,
        c: &Component,
        prepared: &ComponentPosterior,
        y: &[f64],
        sigma: f64,
    ) -> PosteriorTerms {
        let d = self.dim;
        let s2 = sigma * sigma;
        let r = prepared.factor_t.nrows();
        let delta = linalg::col(
            &y.iter()
                .zip(&c.mean)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>(),
        );
        let delta_sq = (0..d).map(|i| delta[(i, 0)].powi(2)).sum::<f64>();
        if r == 0 {
            return PosteriorTerms {
                log_weighted_evidence: c.weight.ln()
                    - 0.5 * (d as f64 * LN_2PI + prepared.log_det + delta_sq / s2),
                mean: c.mean.clone(),
            };
        }
        let proj = linalg::matmul(&prepared.solved_factor_t, &delta); // K⁻¹Fᵀδ (r×1)
        let shift = linalg::matmul(&prepared.factor, &proj); // F K⁻¹ Fᵀ δ = Σ C⁻¹ δ
        let ftd = linalg::matmul(&prepared.factor_t, &delta);
        let explained = (0..r).map(|i| ftd[(i, 0)] * proj[(i, 0)]).sum::<f64>();
        let quad = (delta_sq - explained) / s2;
        let mean = (0..d).map(|i| c.mean[i] + shift[(i, 0)]).collect();
        PosteriorTerms {
            log_weighted_evidence: c.weight.ln()
                - 0.5 * (d as f64 * LN_2PI + prepared.log_det + quad),
            mean,
        }
    }

    /// The mixture's posterior family at noise σ with every y-independent factor formed once
    /// ([`MixturePosterior`]): for many queries at one σ.
    pub fn posterior_at(&self, sigma: f64) -> Result<MixturePosterior<'_>> {
        ensure_sigma_squared(sigma)?;
        let components = self
            .components
            .iter()
            .map(|c| self.component_posterior(c, sigma))
            .collect::<Result<Vec<_>>>()?;
        Ok(MixturePosterior {
            mixture: self,
            sigma,
            components,
        })
    }

    /// Posterior responsibilities `P(component k | y)` by the posterior route.
    pub fn responsibilities(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        self.check_query(y, sigma)?;
        self.posterior_at(sigma)?.responsibilities(y)
    }

    /// `max_k ‖C_k⁻¹‖₂ ‖C_k‖₂ = max_k (λ_max,k + σ²)/σ²`, the condition number that bounds the
    /// rounding error of every closed form here.
    pub(crate) fn noisy_condition_number(&self, sigma: f64) -> f64 {
        let s2 = sigma * sigma;
        self.components
            .iter()
            .map(|c| (c.factor.eigenvalues.iter().cloned().fold(0.0, f64::max) + s2) / s2)
            .fold(1.0, f64::max)
    }

    /// Largest `|μ_k,i|` and `√λ` over components: the length scale of the target.
    pub fn scale(&self) -> f64 {
        self.components
            .iter()
            .map(|c| {
                let m = linalg::max_abs(&c.mean);
                let l = c.factor.eigenvalues.iter().cloned().fold(0.0, f64::max);
                m.max(l.sqrt())
            })
            .fold(1.0, f64::max)
    }

    /// `Σ_k ρ_k δ_kᵀC_k⁻¹δ_k`: the responsibility-weighted squared Mahalanobis distance of y,
    /// which sets the rounding error of the responsibilities (see the tweedie module).
    pub(crate) fn weighted_mahalanobis(&self, y: &[f64], sigma: f64) -> Result<f64> {
        self.check_query(y, sigma)?;
        let (terms, resp) = self.density_at(sigma)?.route(y, true);
        Ok(self
            .components
            .iter()
            .zip(&terms)
            .zip(&resp)
            .map(|((c, t), r)| {
                let delta: Vec<f64> = y.iter().zip(&c.mean).map(|(a, b)| a - b).collect();
                r * -dot(&delta, &t.gradient)
            })
            .sum())
    }
}

/// `Σ_k ρ_k v_k`, the responsibility-weighted mix of per-component vectors of length `d`.
fn mix<'a>(vectors: impl Iterator<Item = &'a Vec<f64>>, weights: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d];
    for (v, w) in vectors.zip(weights) {
        for (o, vi) in out.iter_mut().zip(v) {
            *o += w * vi;
        }
    }
    out
}

/// Adds `Σ_k ρ_k (v_k − v̄)(v_k − v̄)ᵀ`, `v̄ = Σ_k ρ_k v_k`, in its pairwise form
/// `Σ_{k<j} ρ_k ρ_j (v_k − v_j)(v_k − v_j)ᵀ` (equal since Σρ = 1): no mean is formed, so a
/// component whose responsibility is ~1 contributes exactly zero instead of the ~ε²‖v‖² floor of
/// `(v_k − v̄)` rounded, and each term has relative error ≤ γ₄. (The posterior covariance's
/// spread of means; the score Hessian keeps its own `(g_k − s)` form, so Miyasawa's identity
/// between the two is not built in.)
fn add_pairwise_spread<'a>(
    out: &mut Mat,
    vectors: impl Iterator<Item = &'a Vec<f64>>,
    weights: &[f64],
) {
    let vectors: Vec<&Vec<f64>> = vectors.collect();
    let d = out.nrows();
    for k in 0..vectors.len() {
        for l in k + 1..vectors.len() {
            let w = weights[k] * weights[l];
            if w == 0.0 {
                continue;
            }
            let diff: Vec<f64> = vectors[k]
                .iter()
                .zip(vectors[l])
                .map(|(a, b)| a - b)
                .collect();
            for j in 0..d {
                for i in 0..d {
                    out[(i, j)] += w * diff[i] * diff[j];
                }
            }
        }
    }
}

impl Target for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }

    fn sample(&self, rng: &mut Rng, n: usize) -> Mat {
        let weights: Vec<f64> = self.components.iter().map(|c| c.weight).collect();
        let factors: Vec<Mat> = self
            .components
            .iter()
            .map(|c| c.factor.scaled_basis())
            .collect();
        let mut out = Mat::zeros(n, self.dim);
        for i in 0..n {
            let k = rng.categorical(&weights);
            let c = &self.components[k];
            let z = rng.normals(c.factor.rank());
            for j in 0..self.dim {
                let f = &factors[k];
                out[(i, j)] = c.mean[j] + (0..z.len()).map(|l| f[(j, l)] * z[l]).sum::<f64>();
            }
        }
        out
    }

    fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.dim];
        for c in &self.components {
            for (mi, ci) in m.iter_mut().zip(&c.mean) {
                *mi += c.weight * ci;
            }
        }
        m
    }

    fn covariance(&self) -> Mat {
        let mu = self.mean();
        let d = self.dim;
        let mut cov = Mat::zeros(d, d);
        for c in &self.components {
            let s = c.factor.covariance();
            for j in 0..d {
                for i in 0..d {
                    let dev = (c.mean[i] - mu[i]) * (c.mean[j] - mu[j]);
                    let within = if s.nrows() == d { s[(i, j)] } else { 0.0 };
                    cov[(i, j)] += c.weight * (within + dev);
                }
            }
        }
        cov
    }
}

impl ClosedForm for GaussianMixture {
    /// The batched posterior route, [`GaussianMixture::posterior_mean_batch`].
    fn posterior_mean_rows(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        self.posterior_mean_batch(ys, sigma)
    }

    fn log_density(&self, y: &[f64], sigma: f64) -> Result<f64> {
        self.check_query(y, sigma)?;
        self.density_at(sigma)?.log_density(y)
    }

    fn score(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        self.check_query(y, sigma)?;
        self.density_at(sigma)?.score(y)
    }

    fn score_hessian(&self, y: &[f64], sigma: f64) -> Result<Mat> {
        self.check_query(y, sigma)?;
        self.density_at(sigma)?.score_hessian(y)
    }

    fn posterior_mean(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        self.check_query(y, sigma)?;
        self.posterior_at(sigma)?.mean(y)
    }

    fn posterior_covariance(&self, y: &[f64], sigma: f64) -> Result<Mat> {
        self.check_query(y, sigma)?;
        self.posterior_at(sigma)?.covariance(y)
    }
}
