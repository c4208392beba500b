//! The DDIM map against the exact probability-flow solution (first-order defect, 1/L rate) and the book’s Example 3.5 product.

use super::*;

/// The planted wrong limit a convergence check must reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedLimit {
    /// "DDIM is exact up to O(1/L²)": the prediction without its first-order defect (the
    /// generated map equal to the exact flow's).
    NoFirstOrderDefect,
    /// "Sampling with the rank-K optimum tends to N(μ, Σ)": the dropped directions kept at their
    /// eigenvalues (Σ for Σ_K).
    KeepsDroppedDirections,
}

/// Convergence of DDIM to the exact probability flow at rate 1/L (independent of the sampler
/// code: [`flow`]). The sampler's map `(m, A)` with the optimal denoiser restricted to `rank`
/// directions, on `schedule`, is compared with the exact-flow map shrunk by the first-order
/// defect: per eigen-direction with λᵢ > 0 the predicted gain is `P∞ᵢ(1 − midᵢ)`,
/// `P∞ = α_0√((λ + r_0²)/(λ + r_L²))/α_L` ([`flow::exact_flow_gain`]) and `mid` the centre of
/// [`flow::defect_band`] — the band `[1 − e^{−S/2}, 1 − e^{−T/2}]` proved to contain the relative
/// defect, `S = Σ sin²Δφ_ℓ ≤ C/L` ([`flow::angle_defect`]), `T = Σ tan²Δφ_ℓ`; dropped and null
/// directions are
/// predicted 0. Residuals: `max|A − s U diag(pred) Uᵀ|` and `max|m − (μ − α_L U diag(pred) Uᵀμ)|`.
/// Tolerances (derived): the band's half-width, `s·max P∞ᵢ·halfᵢ` for A and
/// `α_L‖μ‖₂·max P∞ᵢ·halfᵢ` for m (entries of `U diag(e) Uᵀ` are at most max|e|) — the
/// remainder beyond first order, `O(Σ Δφ⁴)` — plus twice [`ddim_rounding_bound`] and `8dε` of the assembled prediction. The
/// exact-flow law itself is `N(μ − α_L U diag(P∞)Uᵀμ, U diag(s²P∞²) Uᵀ)`, which is `N(μ, Σ)`
/// (`N(μ, Σ_K)` for rank K) up to the initial-law error: `s²P∞² = λ/(α_L²λ + σ_L²)` on VP.
pub fn ddim_converges_to_exact_flow(
    schedule: &Schedule,
    mean: &[f64],
    covariance: &Mat,
    rank: usize,
    planted_limit: PlantedLimit,
) -> Result<Vec<Controlled>> {
    let d = mean.len();
    let law = generated_law(schedule, mean, covariance, rank, false)?;
    let (all, u) = flow::descending_eigenpairs(covariance)?;
    let s = schedule.initial_scale();
    let alpha_l = schedule.alpha(schedule.steps());
    let mut pred = vec![0.0; d];
    let mut planted = vec![0.0; d];
    let mut slack = 0.0f64;
    let mut p_max = 0.0f64;
    for i in 0..d {
        let shrunk = |lam: f64| -> (f64, f64, f64) {
            if lam <= 0.0 {
                return (0.0, 0.0, 0.0);
            }
            let p_inf = flow::exact_flow_gain(schedule, lam);
            let (lo, hi) = flow::defect_band(schedule, lam);
            (
                p_inf * (1.0 - 0.5 * (lo + hi)),
                p_inf * 0.5 * (hi - lo),
                p_inf,
            )
        };
        let (p, half, p_inf) = shrunk(law.eigenvalues[i]);
        pred[i] = p;
        slack = slack.max(half);
        p_max = p_max.max(p_inf);
        planted[i] = match planted_limit {
            PlantedLimit::NoFirstOrderDefect => p_inf,
            PlantedLimit::KeepsDroppedDirections => shrunk(all[i]).0,
        };
    }
    let denoiser = optimal_denoiser(mean, covariance, rank)?;
    let (m, a) = ddim_affine_map(schedule, denoiser.as_ref())?;
    let round = 2.0 * run_rounding(schedule, mean, &law, 1.0);
    let assembly = 8.0 * d as f64 * EPS * p_max;
    let mu_norm = linalg::dot(mean, mean).sqrt();
    let checks = |gains: &[f64]| {
        let map = in_basis(&u, gains);
        let a_pred = Mat::from_fn(d, d, |i, j| s * map[(i, j)]);
        let shift = linalg::mat_vec(&map, mean);
        let m_pred: Vec<f64> = (0..d).map(|i| mean[i] - alpha_l * shift[i]).collect();
        [
            Check {
                residual: max_abs_diff_mat(&a, &a_pred),
                tolerance: s * (slack + assembly) + round,
            },
            Check {
                residual: max_abs_diff(&m, &m_pred),
                tolerance: alpha_l * mu_norm * (slack + assembly) + round,
            },
        ]
    };
    let (c, p) = (checks(&pred), checks(&planted));
    Ok(vec![
        Controlled {
            check: c[0],
            planted: p[0],
        },
        Controlled {
            check: c[1],
            planted: p[1],
        },
    ])
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
/// `16Lε` relative (each of the L steps rounds a product of O(1) factors a few times).
/// Planted: the formula with its last factor `c_{L,L} = 1 − LT²/(λL² + L²T²)` dropped (an
/// off-by-one in the step range), which moves P by the relative amount `LT²/(λL² + L²T²)`,
/// far above the tolerance for every L the checks use.
pub fn example_3_5_sampler_matches_formula(
    lambda: f64,
    t_max: f64,
    steps: usize,
) -> Result<Controlled> {
    let schedule = Schedule::ve_uniform(t_max, steps)?;
    let den = OptimalAffine::from_moments(&[0.0], &Mat::from_fn(1, 1, |_, _| lambda))?;
    let out = Ddim { schedule }.sample(&den, &Mat::from_fn(1, 1, |_, _| 1.0))?;
    let p = out[(0, 0)] / t_max;
    let formula = example_3_5_product(lambda, t_max, steps);
    let l = steps as f64;
    let last = 1.0 - l * t_max * t_max / (lambda * l * l + l * l * t_max * t_max);
    let tolerance = 16.0 * l * EPS * formula.abs().max(EPS);
    Ok(Controlled {
        check: Check {
            residual: (p - formula).abs(),
            tolerance,
        },
        planted: Check {
            residual: (p - formula / last).abs(),
            tolerance,
        },
    })
}

/// The book's product against the exact flow (Example 3.5 on the uniform VE grid, D = 1, μ = 0):
/// [`example_3_5_product`] lies in the proved band around the exact probability-flow gain
/// `P∞ = √(λ/(λ + T²))` ([`flow::exact_flow_gain`]), i.e. `1 − P/P∞ ∈ [1 − e^{−S/2},
/// 1 − e^{−T'/2}]` with `S = Σ sin²Δφ_ℓ ≤ Tφ_L/(√λ L)`, `T' = Σ tan²Δφ_ℓ` ([`flow::defect_band`],
/// [`flow::ve_uniform_rate_constant`]): the products converge to `P∞ > 0` at rate exactly 1/L.
/// Residual `|P − P∞(1 − mid)|`; tolerance (derived) the band's half-width `P∞·half` plus the
/// product's rounding `16Lε·P∞`. Planted: the limit 0 that the contraction argument of eq.3.2.47
/// suggests (the book's "x_0 → μ").
pub fn example_3_5_product_converges_to_exact_flow(
    lambda: f64,
    t_max: f64,
    steps: usize,
) -> Result<Controlled> {
    let schedule = Schedule::ve_uniform(t_max, steps)?;
    let p = example_3_5_product(lambda, t_max, steps);
    let p_inf = flow::exact_flow_gain(&schedule, lambda);
    let (lo, hi) = flow::defect_band(&schedule, lambda);
    let tolerance = p_inf * 0.5 * (hi - lo) + 16.0 * steps as f64 * EPS * p_inf;
    Ok(Controlled {
        check: Check {
            residual: (p - p_inf * (1.0 - 0.5 * (lo + hi))).abs(),
            tolerance,
        },
        planted: Check {
            residual: p.abs(),
            tolerance,
        },
    })
}
