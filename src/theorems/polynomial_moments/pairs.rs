//! Product laws, the degree-1 case and the DDIM pair: the same denoiser gives the same samples.

use super::*;

/// The product law `P₁ ⊗ P₂` of two 1-D mixtures (K₁K₂ components, diagonal covariances).
pub fn product_mixture(p1: &GaussianMixture, p2: &GaussianMixture) -> Result<GaussianMixture> {
    if p1.dim() != 1 || p2.dim() != 1 {
        return Err(Error::InvalidArgument {
            what: "product mixture".into(),
            reason: format!("needs two 1-D laws, got d = {} and {}", p1.dim(), p2.dim()),
        });
    }
    let (mut w, mut m, mut c) = (vec![], vec![], vec![]);
    for a in p1.components() {
        for b in p2.components() {
            w.push(a.weight * b.weight);
            m.push(vec![a.mean[0], b.mean[0]]);
            let (va, vb) = (a.factor.covariance()[(0, 0)], b.factor.covariance()[(0, 0)]);
            c.push(Mat::from_fn(2, 2, |i, j| match (i, j) {
                (0, 0) => va,
                (1, 1) => vb,
                _ => 0.0,
            }));
        }
    }
    GaussianMixture::new(&w, &m, &c)
}

/// 2-D: `P₁ ⊗ P₂` against the product of the (d+1)-node rules, which matches every mixed moment
/// `E[x₁^a x₂^b]` with a, b ≤ 2d + 1, hence all of total degree ≤ 2d; compared on a 9×9 grid.
/// Planted: the product of the d-node rules.
pub fn product_pair(
    p1: &GaussianMixture,
    p2: &GaussianMixture,
    degree: usize,
    sigma: f64,
) -> Result<Controlled> {
    let p = product_mixture(p1, p2)?;
    let rules = |nodes: usize| -> Result<GaussianMixture> {
        product_mixture(&gauss_rule(p1, nodes)?.law, &gauss_rule(p2, nodes)?.law)
    };
    let g1 = grid(p1, sigma);
    let g2 = grid(p2, sigma);
    let ys: Vec<Vec<f64>> = g1
        .iter()
        .step_by(5)
        .flat_map(|a| g2.iter().step_by(5).map(move |b| vec![*a, *b]))
        .collect();
    compare_fits(&p, &rules(degree + 1)?, &rules(degree)?, degree, sigma, &ys)
}

/// Degree 1 is the optimal affine denoiser `μ + Σ(Σ + σ²I)⁻¹(y − μ)` (linear_gaussian): compared
/// on the grid, tolerance the fit's rounding bound times ‖h̃‖ plus the affine map's
/// `8d·κ(Σ + σ²I)·ε·(‖W‖‖y − μ‖ + ‖μ‖)`. Planted: "σ for σ²" — the affine map evaluated at
/// noise level √σ, i.e. with noise variance σ in place of σ² (rejected unless σ = 1).
pub fn degree_one_is_affine(target: &GaussianMixture, sigma: f64) -> Result<Controlled> {
    let fit = optimal_polynomial(target, sigma, 1)?;
    let affine = OptimalAffine::from_moments(&target.mean(), &target.covariance())?;
    let w = affine.weight(sigma)?;
    let d = target.dim();
    let noisy = Mat::from_fn(d, d, |i, j| {
        target.covariance()[(i, j)] + if i == j { sigma * sigma } else { 0.0 }
    });
    let (eig, _) = linalg::sym_eigen(&noisy)?;
    let kappa = eig[d - 1] / eig[0];
    let mean = target.mean();
    let (mut check, mut planted) = (no_case(), no_case());
    for g in grid(target, sigma) {
        let y: Vec<f64> = (0..d)
            .map(|i| if i == 0 { g } else { mean[i] + 0.5 * g })
            .collect();
        let h = fit.augmented_features(&y);
        let dy: Vec<f64> = y.iter().zip(&mean).map(|(a, b)| a - b).collect();
        let tolerance = rounding_bound(&fit) * linalg::dot(&h, &h).sqrt()
            + 8.0
                * d as f64
                * kappa
                * EPS
                * (w.norm_l2() * linalg::dot(&dy, &dy).sqrt() + linalg::dot(&mean, &mean).sqrt());
        let f = fit.apply(&y);
        let c = Check {
            residual: linalg::max_abs_diff(&f, &affine.denoise(&y, sigma)?),
            tolerance,
        };
        let v = Check {
            residual: linalg::max_abs_diff(&f, &affine.denoise(&y, sigma.sqrt())?),
            tolerance,
        };
        if c.ratio() >= check.ratio() {
            check = c;
        }
        if v.ratio() >= planted.ratio() {
            planted = v;
        }
    }
    Ok(Controlled { check, planted })
}

/// The rule route's denoiser of a discrete law as a σ-dependent [`Denoiser`]
/// ([`rule_least_squares`] at each σ, once per batch).
#[derive(Debug, Clone)]
pub struct RuleDenoiser {
    /// The discrete law Q.
    pub law: GaussianMixture,
    /// The degree d.
    pub degree: usize,
}

impl Denoiser for RuleDenoiser {
    fn dim(&self) -> usize {
        self.law.dim()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        Ok(rule_least_squares(&self.law, sigma, self.degree)?.apply(y))
    }

    fn denoise_batch(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        let fit = rule_least_squares(&self.law, sigma, self.degree)?;
        let rows: Vec<Vec<f64>> = (0..ys.nrows())
            .map(|i| fit.apply(&linalg::row(ys, i)))
            .collect();
        Ok(Mat::from_fn(ys.nrows(), self.dim(), |i, j| rows[i][j]))
    }
}

/// DDIM with P's optimal degree-d denoiser (library route) and with the rule route's denoiser of
/// `matched` from identical noise: residual `max |x_P − x_Q|` over samples; tolerance by
/// first-order propagation along P's trajectory,
/// `e_{ℓ−1} = |k_ℓ| e_ℓ + |a_ℓ|(‖∇f‖_∞ e_ℓ/α_ℓ + δ_ℓ) + 4ε·max(|k_ℓ x| + |a_ℓ f|)`, δ_ℓ the
/// largest [`RuleComparison::tolerance`] at that step's points, ‖∇f‖_∞ the largest row-sum norm
/// of P's Jacobian there, the last term the two updates' own rounding; the result is doubled for
/// the neglected second-order terms (`e²·max|f''|`, below 10⁻²⁰ at the e ≤ 10⁻⁹ reached here).
/// Planted: the same sampler with the rule-route denoiser of `short` (moments up to 2d − 1).
pub fn ddim_pair(
    p: &GaussianMixture,
    matched: &GaussianMixture,
    short: &GaussianMixture,
    degree: usize,
    schedule: &Schedule,
    noise: &Mat,
) -> Result<Controlled> {
    let sampler = Ddim {
        schedule: schedule.clone(),
    };
    let xp = sampler.sample(&OptimalPolynomial::new(p.clone(), degree)?, noise)?;
    let rule_sample = |law: &GaussianMixture| {
        sampler.sample(
            &RuleDenoiser {
                law: law.clone(),
                degree,
            },
            noise,
        )
    };
    let (xq, xs) = (rule_sample(matched)?, rule_sample(short)?);
    let (n, d) = (noise.nrows(), noise.ncols());
    let mut x = Mat::from_fn(n, d, |i, j| schedule.initial_scale() * noise[(i, j)]);
    let mut e = 0.0;
    for l in (1..=schedule.steps()).rev() {
        let alpha = schedule.alpha(l);
        let cmp = compare_to_rule(p, matched, degree, schedule.denoiser_noise(l))?;
        let (k, a, _) = step_coefficients(schedule, l, false);
        let (mut lip, mut dl, mut size): (f64, f64, f64) = (0.0, 0.0, 0.0);
        let mut next = Mat::zeros(n, d);
        for i in 0..n {
            let y: Vec<f64> = (0..d).map(|j| x[(i, j)] / alpha).collect();
            let jac = cmp.target_fit.jacobian(&y);
            for r in 0..d {
                lip = lip.max((0..d).map(|c| jac[(r, c)].abs()).sum());
            }
            dl = dl.max(cmp.tolerance(&y));
            let f = cmp.target_fit.apply(&y);
            for j in 0..d {
                next[(i, j)] = k * x[(i, j)] + a * f[j];
                size = size.max((k * x[(i, j)]).abs() + (a * f[j]).abs());
            }
        }
        e = k.abs() * e + a.abs() * (lip * e / alpha + dl) + 4.0 * EPS * size;
        x = next;
    }
    Ok(Controlled {
        check: Check {
            residual: linalg::max_abs_diff_mat(&xp, &xq),
            tolerance: 2.0 * e,
        },
        planted: Check {
            residual: linalg::max_abs_diff_mat(&xp, &xs),
            tolerance: 2.0 * e,
        },
    })
}
