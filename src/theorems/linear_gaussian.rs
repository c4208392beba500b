//! `linear_gaussian` — Levine–Weiss Thm 3: the MSE-optimal affine denoiser is
//! `f*(y; σ) = μ + Σ(Σ + σ²I)⁻¹(y − μ)`, it depends on the data only through (μ, Σ), and
//! sampling with it generates a Gaussian law that tends to `N(μ, Σ)`.
//!
//! Routes compared: the spectral closed form ([`OptimalAffine`]) against a Cholesky solve of the
//! normal equations and against the Bayes posterior mean of `N(μ, Σ)` (Woodbury algebra in the
//! mixture engine); least-squares fits from samples against the closed form (z·SE, sandwich
//! standard errors); the DDIM map run on basis noise against its per-eigen-direction closed form
//! ([`generated_law`]); and sample moments of many DDIM draws against that closed form
//! (χ²/Wishart tests at a stated α).

use super::{tweedie, Check, Verdict, CPU_BACKEND};
use crate::denoisers::linear::{fit_affine, fit_bias_free, OptimalAffine};
use crate::denoisers::{Denoiser, RankK};
use crate::diffusion::samplers::{step_coefficients, Ancestral, Ddim, Sampler};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, max_abs, max_abs_diff, Mat, EPS};
use crate::rng::{PhiloxStream, Rng};
use crate::stats::gaussian_law::test_gaussian_law;
use crate::stats::two_sided_z;
use crate::targets::{gaussian::gaussian, ClosedForm, GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "linear_gaussian";

/// Family-wise false-failure probability of every Monte Carlo check of this theorem.
pub const ALPHA: f64 = 1e-6;

/// The optimal affine denoiser at `y` by three routes: spectral (`OptimalAffine`), Cholesky
/// (`W = ((Σ + σ²I)⁻¹Σ)ᵀ`), and the Bayes posterior mean of `N(μ, Σ)`. Residual: the largest
/// pairwise difference; tolerance: twice the f64 bound [`tweedie::rounding_bound`] of the
/// Gaussian (each route is a backward-stable solve with condition number `(λ_max + σ²)/σ²`).
pub fn optimal_affine_routes(target: &dyn Target, y: &[f64], sigma: f64) -> Result<Check> {
    let (mu, cov) = (target.mean(), target.covariance());
    let spectral = OptimalAffine::from_moments(&mu, &cov)?.denoise(y, sigma)?;
    let d = mu.len();
    let tilde = Mat::from_fn(d, d, |i, j| {
        cov[(i, j)] + if i == j { sigma * sigma } else { 0.0 }
    });
    let wt = linalg::spd_solve(&tilde, &cov)?;
    let cholesky: Vec<f64> = (0..d)
        .map(|i| mu[i] + (0..d).map(|j| wt[(j, i)] * (y[j] - mu[j])).sum::<f64>())
        .collect();
    let g = gaussian(&mu, &cov)?;
    let bayes = g.posterior_mean(y, sigma)?;
    Ok(Check {
        residual: max_abs_diff(&spectral, &cholesky)
            .max(max_abs_diff(&spectral, &bayes))
            .max(max_abs_diff(&cholesky, &bayes)),
        tolerance: 2.0 * tweedie::rounding_bound(&g, y, sigma)?,
    })
}

/// Levine–Weiss Fig. 2: a 3-component and a 2-component GMM in 2-D with identical mean
/// `(1, −0.5)` and covariance `[[2, 0.6], [0.6, 1.5]]`: the 2-GMM has means `μ ± (1.2, 0)` and
/// within-covariance `Σ − diag(1.44, 0)`; the 3-GMM has means `μ + (0, 1.2)`, `μ + (±1.2, −0.6)`
/// and within-covariance `Σ − diag(0.96, 0.72)` (between-component covariances
/// `diag(a², 0)` and `diag(2c²/3, b²/2)`).
pub fn fig2_pair() -> Result<(GaussianMixture, GaussianMixture)> {
    let mu = [1.0, -0.5];
    let sigma = [[2.0, 0.6], [0.6, 1.5]];
    let within = |dx: f64, dy: f64| {
        Mat::from_fn(2, 2, |i, j| {
            sigma[i][j]
                - match (i, j) {
                    (0, 0) => dx,
                    (1, 1) => dy,
                    _ => 0.0,
                }
        })
    };
    let shift = |dx: f64, dy: f64| vec![mu[0] + dx, mu[1] + dy];
    let three = GaussianMixture::new(
        &[1.0 / 3.0; 3],
        &[shift(0.0, 1.2), shift(1.2, -0.6), shift(-1.2, -0.6)],
        &[within(0.96, 0.72), within(0.96, 0.72), within(0.96, 0.72)],
    )?;
    let two = GaussianMixture::new(
        &[0.5, 0.5],
        &[shift(1.2, 0.0), shift(-1.2, 0.0)],
        &[within(1.44, 0.0), within(1.44, 0.0)],
    )?;
    Ok((three, two))
}

/// f64 rounding bound on the moments of a mixture: `8(K + d)ε(max|Σ_k| + max|μ_k|²)` per entry
/// (sums of K products, each with O(1) roundings, plus the d-term eigen-reconstruction).
fn moment_rounding(t: &GaussianMixture) -> f64 {
    let k = t.components().len() as f64;
    let d = t.dim() as f64;
    let scale = t.scale();
    8.0 * (k + d) * EPS * (scale * scale + 1.0)
}

/// The Fig. 2 pair's optimal affine denoisers at `y` and σ: equal up to the rounding of the
/// moments. Tolerance: `‖ΔW‖ ≤ ‖ΔΣ‖/σ²` (since `dW = σ²(Σ+σ²)⁻¹dΣ(Σ+σ²)⁻¹`), applied to
/// `|y − μ|·d`, plus `|Δμ|` and twice the evaluation bound of each side.
pub fn fig2_denoisers_agree(y: &[f64], sigma: f64) -> Result<Check> {
    let (a, b) = fig2_pair()?;
    let fa = OptimalAffine::from_target(&a)?.denoise(y, sigma)?;
    let fb = OptimalAffine::from_target(&b)?.denoise(y, sigma)?;
    let dsig = moment_rounding(&a) + moment_rounding(&b);
    let g = gaussian(&a.mean(), &a.covariance())?;
    let spread = max_abs(y) + max_abs(&a.mean());
    Ok(Check {
        residual: max_abs_diff(&fa, &fb),
        tolerance: dsig * (1.0 + 2.0 * spread / (sigma * sigma))
            + 4.0 * tweedie::rounding_bound(&g, y, sigma)?,
    })
}

/// The two mixtures of Fig. 2 are different laws: the largest difference of their Bayes
/// denoisers over a grid of points at σ = 0.5 (reported, must be far above rounding).
pub fn fig2_bayes_denoisers_differ() -> Result<f64> {
    let (a, b) = fig2_pair()?;
    let mut worst = 0.0f64;
    for i in -4..=4 {
        for j in -4..=4 {
            let y = [0.5 * f64::from(i) + 1.0, 0.5 * f64::from(j) - 0.5];
            worst = worst.max(max_abs_diff(
                &a.posterior_mean(&y, 0.5)?,
                &b.posterior_mean(&y, 0.5)?,
            ));
        }
    }
    Ok(worst)
}

/// DDIM with the Fig. 2 pair's optimal affine denoisers from identical noise gives identical
/// samples. Tolerance: the moment rounding `ΔΣ` changes each step's denoiser by at most
/// `‖ΔW_ℓ‖ ≤ ΔΣ·d/s_ℓ²` (`s_ℓ = σ_ℓ/α_ℓ`) and its bias by `ΔΣ·d(1 + |μ|/s_ℓ²)`, an error
/// `|a_ℓ|(ΔW_ℓ·d·(X/α_ℓ + |μ|) + Δb)` per step that grows by at most the largest tail product;
/// plus the [`ddim_rounding_bound`] of each run. X bounds the states (max |x| over both runs).
pub fn fig2_samples_agree(schedule: &Schedule, noise: &Mat) -> Result<Check> {
    let (a, b) = fig2_pair()?;
    let sampler = Ddim {
        schedule: schedule.clone(),
    };
    let xa = sampler.sample(&OptimalAffine::from_target(&a)?, noise)?;
    let xb = sampler.sample(&OptimalAffine::from_target(&b)?, noise)?;
    let d = 2usize;
    let (mu, cov) = (a.mean(), a.covariance());
    let law = generated_law(schedule, &mu, &cov, d, false)?;
    let max_tail = law.max_tail_products.iter().cloned().fold(1.0, f64::max);
    let mu_max = max_abs(&mu);
    let g_max = (0..noise.nrows())
        .map(|i| max_abs(&linalg::row(noise, i)))
        .fold(0.0, f64::max);
    let x_max = (schedule.initial_scale() * g_max + mu_max) * max_tail * (d as f64).sqrt() + mu_max;
    let dsig = moment_rounding(&a) + moment_rounding(&b);
    let mut drift = 0.0;
    for l in 1..=schedule.steps() {
        let (_, coef, _) = step_coefficients(schedule, l, false);
        let s2 = schedule.denoiser_noise(l).powi(2);
        let dw = dsig * d as f64 / s2;
        let db = dsig * d as f64 * (1.0 + mu_max / s2);
        drift += coef.abs() * (dw * d as f64 * (x_max / schedule.alpha(l) + mu_max) + db);
    }
    let mut residual = 0.0f64;
    for i in 0..noise.nrows() {
        residual = residual.max(max_abs_diff(&linalg::row(&xa, i), &linalg::row(&xb, i)));
    }
    Ok(Check {
        residual,
        tolerance: drift * max_tail * (d as f64).sqrt()
            + 2.0 * ddim_rounding_bound(schedule, d, x_max, mu_max, max_tail),
    })
}

/// The closed-form law generated by DDIM (or the ancestral sampler) with the optimal affine
/// denoiser of (μ, Σ) restricted to its top `rank` eigen-directions (all of them: `rank = d`).
#[derive(Debug, Clone)]
pub struct GeneratedLaw {
    /// Mean of the generated Gaussian.
    pub mean: Vec<f64>,
    /// Covariance of the generated Gaussian.
    pub covariance: Mat,
    /// Per eigen-direction (λ descending): the gain product `P_i = ∏_ℓ c_{ℓ,i}`.
    pub gain_products: Vec<f64>,
    /// Per eigen-direction: the generated variance `P_i² s² + V_i`.
    pub variances: Vec<f64>,
    /// Eigenvalues λ_i (descending; zero past `rank`).
    pub eigenvalues: Vec<f64>,
    /// Per eigen-direction: `max_ℓ ∏_{j≤ℓ} |c_{j,i}|`, the most an error made at a step can
    /// grow by the end (used by rounding bounds).
    pub max_tail_products: Vec<f64>,
}

/// Closed form of the generated law. In the eigenbasis of Σ the denoiser of step ℓ is
/// `f = μ + G_ℓ(x_ℓ − α_ℓμ)` with `G_ℓ = diag(α_ℓλᵢ/(α_ℓ²λᵢ + σ_ℓ²))` (`λᵢ = 0` past rank), so
/// `z_ℓ = x_ℓ − α_ℓμ` obeys `z_{ℓ−1} = c_ℓ z_ℓ + η_ℓ ξ` with `c_{ℓ,i} = k_ℓ + a_ℓ G_{ℓ,i}` —
/// the μ terms cancel exactly. From `x_L = s g` (`s` the initial scale):
/// mean `μ − α_L U diag(P) Uᵀμ`, covariance `U diag(P² s² + V) Uᵀ`, `P = ∏c`,
/// `V = Σ_ℓ η_ℓ² ∏_{j<ℓ} c_j²`.
pub fn generated_law(
    schedule: &Schedule,
    mean: &[f64],
    covariance: &Mat,
    rank: usize,
    stochastic: bool,
) -> Result<GeneratedLaw> {
    let rk = RankK::optimal(mean, covariance, covariance.nrows())?;
    let d = mean.len();
    if rank == 0 || rank > d {
        return Err(Error::InvalidArgument {
            what: "rank".into(),
            reason: format!("must satisfy 1 ≤ rank ≤ d = {d}, got {rank}"),
        });
    }
    let lambdas: Vec<f64> = (0..d)
        .map(|i| {
            if i < rank {
                rk.top().eigenvalues[i]
            } else {
                0.0
            }
        })
        .collect();
    let u = &rk.top().basis;
    let s = schedule.initial_scale();
    let mut p = vec![1.0; d];
    let mut v = vec![0.0; d];
    let mut tail = vec![1.0f64; d];
    let mut step_c = Vec::new();
    for l in (1..=schedule.steps()).rev() {
        let (k, a, eta) = step_coefficients(schedule, l, stochastic);
        let (al, sl) = (schedule.alpha(l), schedule.sigma(l));
        let c: Vec<f64> = lambdas
            .iter()
            .map(|&lam| k + a * al * lam / (al * al * lam + sl * sl))
            .collect();
        for i in 0..d {
            p[i] *= c[i];
            v[i] = c[i] * c[i] * v[i] + eta * eta;
        }
        step_c.push(c);
    }
    // Products of the last ℓ steps (c_1 ⋯ c_ℓ), the growth of an error made at step ℓ.
    let mut running = vec![1.0f64; d];
    for c in step_c.iter().rev() {
        for i in 0..d {
            running[i] *= c[i].abs();
            tail[i] = tail[i].max(running[i]);
        }
    }
    let variances: Vec<f64> = (0..d).map(|i| p[i] * p[i] * s * s + v[i]).collect();
    let alpha_l = schedule.alpha(schedule.steps());
    let coords: Vec<f64> = (0..d)
        .map(|i| (0..d).map(|j| u[(j, i)] * mean[j]).sum())
        .collect();
    let gen_mean = (0..d)
        .map(|j| mean[j] - alpha_l * (0..d).map(|i| u[(j, i)] * p[i] * coords[i]).sum::<f64>())
        .collect();
    let covariance = Mat::from_fn(d, d, |a, b| {
        (0..d).map(|i| u[(a, i)] * variances[i] * u[(b, i)]).sum()
    });
    Ok(GeneratedLaw {
        mean: gen_mean,
        covariance,
        gain_products: p,
        variances,
        eigenvalues: lambdas,
        max_tail_products: tail,
    })
}

/// f64 rounding bound of one DDIM run in d dimensions with L steps, states bounded by `x_max`
/// and μ by `mu_max`: each step evaluates `x/α` (1 rounding), the denoiser (d-term dot products
/// and a d-term sum: `(2d + 4)ε` relative to `|μ| + d·|x/α − μ|`) and `k x + a f` (3 roundings);
/// an error made at step ℓ grows by at most `max_tail` (the largest partial product of the
/// `c_{ℓ,i}`) and by √d when moving between the eigenbasis and coordinates. Doubled for
/// second-order terms.
pub fn ddim_rounding_bound(
    schedule: &Schedule,
    d: usize,
    x_max: f64,
    mu_max: f64,
    max_tail: f64,
) -> f64 {
    let df = d as f64;
    let mut total = 0.0;
    for l in 1..=schedule.steps() {
        let (k, a, _) = step_coefficients(schedule, l, false);
        let xs = x_max / schedule.alpha(l);
        let f_err = (2.0 * df + 4.0) * EPS * (mu_max + df * (xs + mu_max));
        let f_max = mu_max + df * (xs + mu_max);
        total += a.abs() * f_err + 3.0 * EPS * (k.abs() * x_max + a.abs() * f_max);
    }
    2.0 * total * max_tail.max(1.0) * df.sqrt()
}

/// The DDIM sampler is an affine map of the noise, `x_0 = m + A g`; run it on g = 0 and on the
/// basis vectors and compare `(m, A)` with the closed form ([`generated_law`]: `m` its mean,
/// `A = s U diag(P) Uᵀ`). Residual: max entry difference; tolerance [`ddim_rounding_bound`]
/// with `x_max = (s + α_L|μ|)·max P_partial·√d + |μ|` bounded by the tail products.
pub fn ddim_map_matches_closed_form(
    schedule: &Schedule,
    mean: &[f64],
    covariance: &Mat,
    rank: usize,
) -> Result<Check> {
    let d = mean.len();
    let law = generated_law(schedule, mean, covariance, rank, false)?;
    let denoiser: Box<dyn Denoiser> = if rank == d {
        Box::new(OptimalAffine::from_moments(mean, covariance)?)
    } else {
        Box::new(RankK::optimal(mean, covariance, rank)?)
    };
    let mut noise = Mat::zeros(d + 1, d);
    for j in 0..d {
        noise[(j + 1, j)] = 1.0;
    }
    let out = Ddim {
        schedule: schedule.clone(),
    }
    .sample(denoiser.as_ref(), &noise)?;
    let rk = RankK::optimal(mean, covariance, d)?;
    let u = &rk.top().basis;
    let s = schedule.initial_scale();
    let mut residual = max_abs_diff(&linalg::row(&out, 0), &law.mean);
    for j in 0..d {
        for i in 0..d {
            let a_ij: f64 = (0..d)
                .map(|q| u[(i, q)] * s * law.gain_products[q] * u[(j, q)])
                .sum();
            residual = residual.max((out[(j + 1, i)] - out[(0, i)] - a_ij).abs());
        }
    }
    let max_tail = law.max_tail_products.iter().cloned().fold(1.0, f64::max);
    let mu_max = max_abs(mean);
    let x_max = (s + mu_max) * max_tail * (d as f64).sqrt() + mu_max;
    Ok(Check {
        residual,
        tolerance: 2.0 * ddim_rounding_bound(schedule, d, x_max, mu_max, max_tail),
    })
}

/// Monte Carlo: n DDIM (or ancestral) draws with the optimal denoiser of (μ, Σ) restricted to
/// `rank` directions pass the exact χ²/Wishart tests of [`test_gaussian_law`] against the
/// closed-form law at family-wise level [`ALPHA`]; directions with zero generated variance must
/// hold within the DDIM rounding bound. Residual: the worst statistic/bound ratio (tolerance 1),
/// or the zero-direction excess if larger.
#[allow(clippy::too_many_arguments)]
pub fn sampled_moments_match_closed_form(
    schedule: &Schedule,
    mean: &[f64],
    covariance: &Mat,
    rank: usize,
    stochastic: bool,
    n: usize,
    seed: u64,
) -> Result<Check> {
    let d = mean.len();
    let law = generated_law(schedule, mean, covariance, rank, stochastic)?;
    let denoiser: Box<dyn Denoiser> = if rank == d {
        Box::new(OptimalAffine::from_moments(mean, covariance)?)
    } else {
        Box::new(RankK::optimal(mean, covariance, rank)?)
    };
    let mut rng = Rng::new(seed, 0);
    let noise = Mat::from_fn(n, d, |_, _| rng.normal());
    let samples = if stochastic {
        Ancestral {
            schedule: schedule.clone(),
            stream: PhiloxStream::new(seed, 1),
        }
        .sample(denoiser.as_ref(), &noise)?
    } else {
        Ddim {
            schedule: schedule.clone(),
        }
        .sample(denoiser.as_ref(), &noise)?
    };
    let max_tail = law.max_tail_products.iter().cloned().fold(1.0, f64::max);
    let mu_max = max_abs(mean);
    let g_max = (0..n)
        .map(|i| max_abs(&linalg::row(&noise, i)))
        .fold(0.0, f64::max);
    let s = schedule.initial_scale();
    let x_max = (s * g_max + mu_max) * max_tail * (d as f64).sqrt() + mu_max;
    let round = ddim_rounding_bound(schedule, d, x_max, mu_max, max_tail);
    // A direction is "zero-variance" when its predicted variance is below the rounding floor of
    // the assembled covariance `U diag(v) Uᵀ` (16dε·max v) or the squared run bound.
    let v_max = law.variances.iter().cloned().fold(0.0, f64::max);
    let floor = (16.0 * d as f64 * EPS * v_max).max(round * round);
    let test = test_gaussian_law(&samples, &law.mean, &law.covariance, ALPHA, floor)?;
    Ok(Check {
        residual: test.worst.max(test.zero_direction_max / round),
        tolerance: 1.0,
    })
}

/// Book Example 3.5 / Fig. 3.6: `∏_{ℓ=1}^L c_{ℓ,L}` with `c_{ℓ,L} = 1 − ℓT²/(λL² + ℓ²T²)`
/// (eq.3.2.45–3.2.46, D = 1, uniform VE grid), from the book's formula.
pub fn example_3_5_product(lambda: f64, t_max: f64, steps: usize) -> f64 {
    let l2 = (steps * steps) as f64;
    (1..=steps)
        .map(|l| {
            let lf = l as f64;
            1.0 - lf * t_max * t_max / (lambda * l2 + lf * lf * t_max * t_max)
        })
        .product()
}

/// The same product measured from the DDIM sampler (eq.3.2.42): in D = 1 with μ = 0 the run is
/// `x_0 = P·x_T`, so `P = x_0/x_T` for `x_T = T·1`. Residual against the formula; tolerance
/// `4Lε` relative (each of the L steps rounds a product of O(1) factors a few times).
pub fn example_3_5_sampler_matches_formula(lambda: f64, t_max: f64, steps: usize) -> Result<Check> {
    let schedule = Schedule::ve_uniform(t_max, steps)?;
    let den = OptimalAffine::from_moments(&[0.0], &Mat::from_fn(1, 1, |_, _| lambda))?;
    let out = Ddim { schedule }.sample(&den, &Mat::from_fn(1, 1, |_, _| 1.0))?;
    let p = out[(0, 0)] / t_max;
    let formula = example_3_5_product(lambda, t_max, steps);
    Ok(Check {
        residual: (p - formula).abs(),
        tolerance: 16.0 * steps as f64 * EPS * formula.abs().max(EPS),
    })
}

/// Least-squares affine fit from n pairs `(x, x + σg)` of `target` against the closed form, as a
/// z-test per entry of `[W b]`: with `e = x − W*y − b*` (zero-mean and uncorrelated with y by
/// optimality), `ŵ − w* = (ỸᵀỸ)⁻¹Ỹᵀe` and its sandwich variance `(ỸᵀỸ)⁻¹(Σ_k e_k² ỹ_kỹ_kᵀ)(ỸᵀỸ)⁻¹`
/// (ỹ = (y, 1)). Residual: the largest |z|; tolerance `z(α/(d(d+1)))` (Bonferroni).
///
/// With `bias_free`, the fit is [`fit_bias_free`] against `W = M(M + σ²I)⁻¹`, `M = Σ + μμᵀ`
/// (regressor y alone; again `E[e yᵀ] = M − W(M + σ²I) = 0`).
pub fn least_squares_matches_closed_form(
    target: &dyn Target,
    sigma: f64,
    n: usize,
    seed: u64,
    bias_free: bool,
) -> Result<Check> {
    let d = target.dim();
    let mut rng = Rng::new(seed, 0);
    let xs = target.sample(&mut rng, n);
    let ys = Mat::from_fn(n, d, |i, j| xs[(i, j)] + sigma * rng.normal());
    let (fit, opt) = if bias_free {
        (
            fit_bias_free(&xs, &ys)?,
            OptimalAffine::bias_free_from_moments(&target.mean(), &target.covariance())?,
        )
    } else {
        (fit_affine(&xs, &ys)?, OptimalAffine::from_target(target)?)
    };
    let (w, b) = (opt.weight(sigma)?, opt.bias(sigma)?);
    let p = if bias_free { d } else { d + 1 };
    let ya = Mat::from_fn(n, p, |i, j| if j < d { ys[(i, j)] } else { 1.0 });
    let gram = ya.transpose() * &ya;
    let eye = Mat::from_fn(p, p, |i, j| if i == j { 1.0 } else { 0.0 });
    let ginv = linalg::spd_solve(&gram, &eye)?;
    let z = two_sided_z(ALPHA / (d * p) as f64);
    let mut worst = 0.0f64;
    for r in 0..d {
        let e: Vec<f64> = (0..n)
            .map(|i| xs[(i, r)] - b[r] - (0..d).map(|j| w[(r, j)] * ys[(i, j)]).sum::<f64>())
            .collect();
        let meat = Mat::from_fn(p, p, |a, c| {
            (0..n).map(|i| e[i] * e[i] * ya[(i, a)] * ya[(i, c)]).sum()
        });
        let cov = &ginv * &meat * &ginv;
        for c in 0..p {
            let (est, truth) = if c < d {
                (fit.weight()[(r, c)], w[(r, c)])
            } else {
                (fit.bias()[r], b[r])
            };
            worst = worst.max((est - truth).abs() / cov[(c, c)].sqrt());
        }
    }
    Ok(Check {
        residual: worst,
        tolerance: z,
    })
}

/// Noisy pairs `(x_i, x_i + σg_i)`: x from `target` (stream `(seed, 0)`), g from `(seed, 1)`.
pub fn noisy_pairs(target: &dyn Target, sigma: f64, n: usize, seed: u64) -> (Mat, Mat) {
    let xs = target.sample(&mut Rng::new(seed, 0), n);
    let mut noise = Rng::new(seed, 1);
    let ys = Mat::from_fn(n, xs.ncols(), |i, j| xs[(i, j)] + sigma * noise.normal());
    (xs, ys)
}

/// Gradient descent on the GPU (`denoisers::gd`, every product a WGSL GEMM) reaches the
/// least-squares fit of the same samples (f64, `fit_affine` / `fit_bias_free`). Residual:
/// `‖[W b]_GD − [W b]_LS‖_F`. Tolerance: the GD bound (`LinearGd::error_bound`, from the
/// iteration's exact linear convergence plus its f32 floor) plus the effect of the moments'
/// f32 error on the minimiser, `2‖S⁻¹‖₂(‖ΔR‖_F + ‖W*‖_F‖ΔS‖_F)` (first-order perturbation of
/// `W* = R S⁻¹`, doubled for the higher orders since ‖S⁻¹‖‖ΔS‖ ≪ 1), plus the f64 solve's
/// `64·d·κ(S)·ε·‖W*‖_F`.
pub fn gpu_gd_matches_least_squares(
    gpu: &Gpu,
    target: &dyn Target,
    sigma: f64,
    n: usize,
    steps: usize,
    seed: u64,
    bias_free: bool,
) -> Result<Check> {
    use crate::denoisers::gd::{gpu_moments, train_linear_gd};
    let (xs, ys) = noisy_pairs(target, sigma, n, seed);
    let moments = gpu_moments(gpu, &xs, &ys, !bias_free)?;
    let gd = train_linear_gd(gpu, &moments, steps)?;
    let ls = if bias_free {
        fit_bias_free(&xs, &ys)?
    } else {
        fit_affine(&xs, &ys)?
    };
    let d = target.dim();
    let mut diff2 = 0.0;
    for i in 0..d {
        for j in 0..d {
            diff2 += (gd.denoiser.weight()[(i, j)] - ls.weight()[(i, j)]).powi(2);
        }
        diff2 += (gd.denoiser.bias()[i] - ls.bias()[i]).powi(2);
    }
    let (eig, _) = linalg::sym_eigen(&moments.second)?;
    let inv_norm = 1.0 / eig[0];
    let w_norm = gd.minimiser.norm_l2();
    let perturbation =
        2.0 * inv_norm * (moments.cross_bound.norm_l2() + w_norm * moments.second_bound.norm_l2());
    let solve = 64.0 * d as f64 * (eig[eig.len() - 1] / eig[0]) * EPS * w_norm;
    Ok(Check {
        residual: diff2.sqrt(),
        tolerance: gd.error_bound + perturbation + solve,
    })
}

/// Default checks for `verify`.
pub fn default_verdicts(gpu: Result<&Gpu>) -> Vec<Verdict> {
    let mut out = Vec::new();
    out.push(Verdict::uncontrolled(
        THEOREM,
        "optimal affine denoiser: spectral = Cholesky = Bayes of N(μ,Σ); Fig.2 pair identical",
        CPU_BACKEND,
        || {
            let mut checks = Vec::new();
            let (a, _) = fig2_pair()?;
            let mut rng = Rng::new(0x11a, 0);
            for &d in &[2usize, 4, 8] {
                let t = super::random_gmm(&mut rng, d, 3)?;
                for &sigma in &[0.05, 0.5, 3.0] {
                    let y = rng.normals(d);
                    checks.push(optimal_affine_routes(&t, &y, sigma)?);
                }
            }
            for &sigma in &[0.05, 0.3, 1.0, 5.0] {
                for i in 0..5 {
                    let y = [f64::from(i) - 1.0, 2.0 - f64::from(i)];
                    checks.push(optimal_affine_routes(&a, &y, sigma)?);
                    checks.push(fig2_denoisers_agree(&y, sigma)?);
                }
            }
            Ok(checks)
        },
    ));
    out.push(Verdict::uncontrolled(
        THEOREM,
        "DDIM with f*: closed-form generated law (map and 20000-draw χ² test, α=1e-6)",
        CPU_BACKEND,
        || {
            let (a, _) = fig2_pair()?;
            let schedule = Schedule::vp_cosine(0.999, 50)?;
            Ok(vec![
                ddim_map_matches_closed_form(&schedule, &a.mean(), &a.covariance(), 2)?,
                sampled_moments_match_closed_form(
                    &schedule,
                    &a.mean(),
                    &a.covariance(),
                    2,
                    false,
                    20_000,
                    7,
                )?,
                least_squares_matches_closed_form(&a, 0.5, 20_000, 8, false)?,
            ])
        },
    ));
    let backend = super::backend_label(&gpu);
    out.push(Verdict::uncontrolled(
        THEOREM,
        "GD on the GPU (WGSL GEMM) = least squares, affine and bias-free (derived f32 bound)",
        &backend,
        || {
            let gpu = gpu?;
            let mut rng = Rng::new(0x11d, 0);
            let mut checks = Vec::new();
            for &d in &[2usize, 5] {
                let t = super::random_gmm(&mut rng, d, 3)?;
                for bias_free in [false, true] {
                    checks.push(gpu_gd_matches_least_squares(
                        gpu,
                        &t,
                        0.5,
                        1 << 14,
                        600,
                        21,
                        bias_free,
                    )?);
                }
            }
            Ok(checks)
        },
    ));
    out
}
