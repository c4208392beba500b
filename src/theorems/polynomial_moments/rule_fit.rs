//! The Gauss-rule route: least squares over the rule’s atoms with Gauss–Hermite quadrature over the noise, compared with the optimal polynomial, with its derived tolerance.

use super::*;

/// The degree-d least-squares polynomial denoiser of a discrete law Q = Σ_k w_k δ_{x_k} under
/// noise σ, by the second route: features `h̃_a(y) = (y/s)^a` over [`exponents`] (constant
/// included), s the RMS of y from the atoms, and the normal equations
/// `Ĝ = Σ_k Σ_j w_k ω_j h̃(x_k + σz_j) h̃(x_k + σz_j)ᵀ`, `r̂_i = Σ_k Σ_j w_k ω_j x_{ki} h̃(…)`,
/// with the tensor Gauss–Hermite rule `(z_j, ω_j)` of d + 1 nodes per coordinate (exact: every
/// entry is a polynomial of degree ≤ 2d in the noise), solved by Cholesky. Carries what
/// [`RuleComparison`] needs for its bound.
#[derive(Debug, Clone)]
pub struct RuleFit {
    /// The exponents of h̃ (the constant first).
    pub exponents: Vec<MultiIndex>,
    /// The scale s.
    pub scale: f64,
    /// `Ĉ` (n × m): row i holds output i's coefficients over `exponents`.
    pub coefficients: Mat,
    /// A lower bound on `λ_min(G_R)`, G_R the exact normal matrix of the rule law R (Q's atoms
    /// with the computed Gauss–Hermite rule as the noise): `λ̂_min − ‖E‖_F − 16mε·λ̂_max`.
    pub lambda_min: f64,
    /// `‖Ĉ − C_R‖_F`: the assembly and solve rounding, derived in [`rule_least_squares`].
    pub coefficient_error: f64,
    /// The atoms of Q.
    atoms: Vec<(f64, Vec<f64>)>,
    /// The Gauss–Hermite rule used, (nodes, weights).
    hermite: (Vec<f64>, Vec<f64>),
    /// σ.
    sigma: f64,
}

impl RuleFit {
    /// `h̃(y)` over the fit's exponents.
    pub fn features(&self, y: &[f64]) -> Vec<f64> {
        let u: Vec<f64> = y.iter().map(|v| v / self.scale).collect();
        self.exponents
            .iter()
            .map(|a| power_product(&u, a))
            .collect()
    }

    /// `f(y) = Ĉ h̃(y)`.
    pub fn apply(&self, y: &[f64]) -> Vec<f64> {
        let h = self.features(y);
        (0..self.coefficients.nrows())
            .map(|i| {
                h.iter()
                    .enumerate()
                    .map(|(j, v)| self.coefficients[(i, j)] * v)
                    .sum()
            })
            .collect()
    }

    /// `Σ_ij |Ĉ_ij||h̃_j(y)|`, the scale of the evaluation's rounding.
    fn abs_apply(&self, y: &[f64]) -> f64 {
        let h = self.features(y);
        (0..self.coefficients.nrows())
            .map(|i| {
                h.iter()
                    .enumerate()
                    .map(|(j, v)| (self.coefficients[(i, j)] * v).abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    }
}

/// [`RuleFit`] of the discrete law `law` at noise σ and degree d (see there).
///
/// Rounding bound (derived): each summand `w_k ω_j h̃_a h̃_b` is a product of at most
/// `4d + 4n + 8` rounded operations whose inputs `u = (x + σz)/s` may cancel, so its error is at
/// most `γ_N w_k ω_j ũ^{|a|+|b|}` with `ũ = (|x| + σ|z|)/s` per coordinate; summing the
/// `K·(d+1)ⁿ` summands adds their count to N. Hence `|E_ab| ≤ γ_N A_ab` with the majorant
/// `A_ab = Σ w ω ũ^{a+b}` and `‖E‖_F ≤ γ_N‖A‖_F` (likewise for r̂). The Cholesky solve is
/// backward stable: `(Ĝ + F)Ĉᵀ = r̂ᵀ` with `‖F‖₂ ≤ 4m²ε‖Ĝ‖₂` (Higham Thm 10.4 and eq. 10.7).
/// Then `G_R(Ĉ − C_R)ᵀ = (r̂ − r_R)ᵀ − (Ĝ − G_R + F)Ĉᵀ` gives
/// `‖Ĉ − C_R‖_F ≤ (‖E_r‖_F + (‖E‖_F + ‖F‖₂)‖Ĉ‖_F)/λ_min(G_R)`.
pub fn rule_least_squares(law: &GaussianMixture, sigma: f64, degree: usize) -> Result<RuleFit> {
    crate::error::ensure_sigma(sigma)?;
    if degree == 0 {
        return Err(Error::InvalidArgument {
            what: "degree".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    let n = law.dim();
    let atoms = atoms(law)?;
    let hermite = gauss_hermite(degree + 1)?;
    let (z, omega) = &hermite;
    // the tensor rule over n coordinates: index vectors into (z, ω)
    let grid = lower_indices(&vec![degree; n]);
    let second: f64 = (0..n)
        .map(|i| atoms.iter().map(|(w, x)| w * x[i] * x[i]).sum::<f64>() + sigma * sigma)
        .sum();
    let scale = (second / n as f64).sqrt();
    let exps = exponents(n, degree);
    let m = exps.len();
    let (mut g, mut a_g) = (Mat::zeros(m, m), Mat::zeros(m, m));
    let (mut r, mut a_r) = (Mat::zeros(n, m), Mat::zeros(n, m));
    for (w, x) in &atoms {
        for node in &grid {
            let weight = w * node.iter().map(|&j| omega[j]).product::<f64>();
            let y: Vec<f64> = (0..n).map(|i| x[i] + sigma * z[node[i]]).collect();
            let u: Vec<f64> = y.iter().map(|v| v / scale).collect();
            let ua: Vec<f64> = (0..n)
                .map(|i| (x[i].abs() + sigma * z[node[i]].abs()) / scale)
                .collect();
            let h: Vec<f64> = exps.iter().map(|e| power_product(&u, e)).collect();
            let ha: Vec<f64> = exps.iter().map(|e| power_product(&ua, e)).collect();
            for p in 0..m {
                for q in 0..m {
                    g[(p, q)] += weight * h[p] * h[q];
                    a_g[(p, q)] += weight * ha[p] * ha[q];
                }
                for i in 0..n {
                    r[(i, p)] += weight * x[i] * h[p];
                    a_r[(i, p)] += weight * x[i].abs() * ha[p];
                }
            }
        }
    }
    let (eig, _) = linalg::sym_eigen(&g)?;
    let lambda_max = eig[m - 1];
    let errors = NormalEquationErrors::new(
        atoms.len() * grid.len(),
        degree,
        n,
        a_g.norm_l2(),
        a_r.norm_l2(),
        lambda_max,
    );
    let lambda_min = eig[0] - errors.gram - 16.0 * m as f64 * EPS * lambda_max;
    if lambda_min <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "rule least squares".into(),
            reason: format!(
                "the feature moment matrix is not provably positive definite (λ_min ≥ \
                 {lambda_min:e})"
            ),
        });
    }
    let ct = linalg::spd_solve(&g, &r.transpose().to_owned())?;
    let coefficients = ct.transpose().to_owned();
    let coefficient_error = perturbed_solution_bound(
        errors.rhs,
        errors.matrix(),
        coefficients.norm_l2(),
        lambda_min,
    );
    Ok(RuleFit {
        exponents: exps,
        scale,
        coefficients,
        lambda_min,
        coefficient_error,
        atoms,
        hermite,
        sigma,
    })
}

/// The optimal degree-d denoiser of P (the library's [`optimal_polynomial`]) next to the
/// rule-route fit of a discrete law Q, with the bound that makes their comparison a check.
#[derive(Debug, Clone)]
pub struct RuleComparison {
    /// P's fit (route 1).
    pub target_fit: PolynomialFit,
    /// Q's fit (route 2).
    pub rule_fit: RuleFit,
    /// `‖C_P − C_R‖_F` in the rule fit's basis, C_P P's exact coefficients and C_R those of
    /// the rule law R: see [`compare_to_rule`].
    pub law_difference: f64,
}

impl RuleComparison {
    /// Derived bound on `|f̂_P(y) − f̂_Q(y)|` (max over outputs) when Q matches P's moments up
    /// to order 2d:
    /// `rounding_bound(f_P)·‖h̃_P(y)‖` (the library's bound on P's coefficients, Higham 10.4)
    /// `+ (‖C_P − C_R‖_F + ‖Ĉ_Q − C_R‖_F)·‖h̃_Q(y)‖` (the laws' exact fits, then Q's rounding)
    /// `+ γ_{m+d+4}(Σ|ĉ_P||h̃_P| + Σ|ĉ_Q||h̃_Q|)` (the two evaluations).
    pub fn tolerance(&self, y: &[f64]) -> f64 {
        let fp = &self.target_fit;
        let hp = fp.augmented_features(y);
        let hq = self.rule_fit.features(y);
        let norm = |h: &[f64]| linalg::dot(h, h).sqrt();
        let abs_p = (0..fp.coefficients.nrows())
            .map(|i| {
                hp.iter()
                    .enumerate()
                    .map(|(j, v)| (fp.coefficients[(i, j)] * v).abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        let degree = self
            .rule_fit
            .exponents
            .iter()
            .map(|e| e.iter().sum::<usize>())
            .max();
        let eval = gamma_f64(hq.len() + degree.unwrap_or(0) + 4);
        rounding_bound(fp) * norm(&hp)
            + (self.law_difference + self.rule_fit.coefficient_error) * norm(&hq)
            + eval * (abs_p + self.rule_fit.abs_apply(y))
    }
}

/// P's optimal degree-d fit against the rule route's fit of Q at noise σ, with the bound on the
/// difference of the two laws' exact fits (derived): with `Δ = P − R` (R: Q's atoms with the
/// computed Gauss–Hermite rule as noise), `G_P(C_P − C_R)ᵀ = Δrᵀ − ΔG C_Rᵀ`, so
/// `‖C_P − C_R‖_F ≤ (‖Δr‖_F + ‖ΔG‖_F(‖Ĉ‖_F + ‖Ĉ − C_R‖_F))/(λ_min(G_R) − ‖ΔG‖_F)`. Each entry
/// of ΔG, Δr is a difference of joint moments `E[x^γ y^β]/s^{|β|}`, expanded binomially:
/// `|ΔE[x^γ y^β]| ≤ Σ_{β'≤β} C(β, β') σ^{|β−β'|} (ê_{γ+β'}(|m_g| + e_g) + |m_{P,γ+β'}| e_g)`,
/// with `ê_α = |m_P,α − m_Q,α|` plus both moments' rounding bounds (P's written out by
/// [`diagonal_mixture_moment`], Q's summed over atoms), `m_g` the normal moments of the noise
/// index `β − β'` and `e_g` the computed Gauss–Hermite rule's error on them (plus its rounding).
/// An error when P has off-diagonal component covariances, or when the bound's denominator is
/// not positive (Q too far from P's moments for the bound to say anything).
pub fn compare_to_rule(
    p: &GaussianMixture,
    q: &GaussianMixture,
    degree: usize,
    sigma: f64,
) -> Result<RuleComparison> {
    let target_fit = optimal_polynomial(p, sigma, degree)?;
    let rule_fit = rule_least_squares(q, sigma, degree)?;
    let law_difference = law_difference_bound(p, &rule_fit, degree)?;
    Ok(RuleComparison {
        target_fit,
        rule_fit,
        law_difference,
    })
}

/// `‖C_P − C_R‖_F` (see [`compare_to_rule`]).
pub(super) fn law_difference_bound(
    p: &GaussianMixture,
    fit: &RuleFit,
    degree: usize,
) -> Result<f64> {
    let n = p.dim();
    let sigma = fit.sigma;
    let (z, omega) = &fit.hermite;
    let nodes = z.len();
    // the computed rule's moments of order k and their errors against N(0, 1)
    let gh: Vec<(f64, f64)> = (0..=2 * degree)
        .map(|k| {
            let (mut v, mut a) = (0.0, 0.0);
            for (zj, wj) in z.iter().zip(omega) {
                let t = wj * zj.powi(k as i32);
                v += t;
                a += t.abs();
            }
            (v, a)
        })
        .collect();
    let noise = |idx: &[usize]| -> (f64, f64) {
        let exact: f64 = idx.iter().map(|&k| normal_moment(k)).product();
        let computed: f64 = idx.iter().map(|&k| gh[k].0).product();
        let majorant: f64 = idx.iter().map(|&k| gh[k].1).product();
        let err = (computed - exact).abs() + gamma_f64(nodes + 2 * degree + 2 * n) * majorant;
        (exact.abs(), err)
    };
    let k_count = p.components().len() + fit.atoms.len();
    let moment_error = |alpha: &[usize]| -> Result<(f64, f64)> {
        let (mp, maj_p) = diagonal_mixture_moment(p, alpha)?;
        let (mq, maj_q) = atom_moment(&fit.atoms, alpha);
        let deg = alpha.iter().sum::<usize>();
        let e = (mp - mq).abs() + gamma_f64(6 * deg + 4 * n + k_count + 8) * (maj_p + maj_q);
        Ok((mp.abs(), e))
    };
    // |E_P[x^γ y^β] − E_R[x^γ y^β]|
    let joint_error = |gamma_idx: &[usize], beta: &[usize]| -> Result<f64> {
        let mut total = 0.0;
        for b in lower_indices(beta) {
            let rest: Vec<usize> = beta.iter().zip(&b).map(|(x, y)| x - y).collect();
            let c: f64 = beta.iter().zip(&b).map(|(&x, &y)| binomial(x, y)).product();
            let s = sigma.powi(rest.iter().sum::<usize>() as i32);
            let (mg, eg) = noise(&rest);
            let alpha: Vec<usize> = gamma_idx.iter().zip(&b).map(|(x, y)| x + y).collect();
            let (mp, e) = moment_error(&alpha)?;
            total += c * s * (e * (mg + eg) + mp * eg);
        }
        Ok(total * (1.0 + gamma_f64(4 * degree + 4)))
    };
    let exps = &fit.exponents;
    let m = exps.len();
    let zero = vec![0; n];
    let deg = |a: &MultiIndex| a.iter().sum::<usize>() as i32;
    let mut dg2 = 0.0;
    for a in exps {
        for b in exps {
            let sum: Vec<usize> = a.iter().zip(b).map(|(x, y)| x + y).collect();
            let e = joint_error(&zero, &sum)? / fit.scale.powi(deg(a) + deg(b));
            dg2 += e * e;
        }
    }
    let mut dr2 = 0.0;
    for i in 0..n {
        let mut ei = zero.clone();
        ei[i] = 1;
        for a in exps {
            let e = joint_error(&ei, a)? / fit.scale.powi(deg(a));
            dr2 += e * e;
        }
    }
    let (dg, dr) = (dg2.sqrt(), dr2.sqrt());
    let lambda_p = fit.lambda_min - dg;
    if lambda_p <= 0.0 || m == 0 {
        return Err(Error::Numerical(format!(
            "the moment mismatch (‖ΔG‖_F = {dg:e}) exceeds the smallest eigenvalue bound \
             {:e}: the two laws' fits cannot be compared by this bound",
            fit.lambda_min
        )));
    }
    Ok(perturbed_solution_bound(
        dr,
        dg,
        fit.coefficients.norm_l2() + fit.coefficient_error,
        lambda_p,
    ))
}

/// `m ± 4·sd` of y = x + σg in coordinate 0, 41 points.
pub(super) fn grid(target: &GaussianMixture, sigma: f64) -> Vec<f64> {
    let m = target.mean()[0];
    let sd = (target.covariance()[(0, 0)] + sigma * sigma).sqrt();
    (0..=40)
        .map(|i| m + sd * (f64::from(i) / 5.0 - 4.0))
        .collect()
}

/// The check of "f_P depends on P only through its moments up to order 2d" on points `ys`:
/// P's optimal denoiser against the rule route's denoiser of `matched` (a law sharing P's
/// moments up to order 2d), residual `max |f_P − f_Q|` within [`RuleComparison::tolerance`]
/// (worst ratio over the points); the planted variant ("moments up to 2d − 1 suffice") puts the
/// rule-route denoiser of `short` (sharing only the moments up to 2d − 1) in Q's place, against
/// the same tolerance at each point.
pub(crate) fn compare_fits(
    p: &GaussianMixture,
    matched: &GaussianMixture,
    short: &GaussianMixture,
    degree: usize,
    sigma: f64,
    ys: &[Vec<f64>],
) -> Result<Controlled> {
    let cmp = compare_to_rule(p, matched, degree, sigma)?;
    let planted_fit = rule_least_squares(short, sigma, degree)?;
    let (mut check, mut planted) = (no_case(), no_case());
    for y in ys {
        let fp = cmp.target_fit.apply(y);
        let tolerance = cmp.tolerance(y);
        let c = Check {
            residual: linalg::max_abs_diff(&fp, &cmp.rule_fit.apply(y)),
            tolerance,
        };
        let v = Check {
            residual: linalg::max_abs_diff(&fp, &planted_fit.apply(y)),
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

/// 1-D: P against its (d+1)-node Gauss rule on 41 points (m ± 4 sd of y); planted: the d-node
/// rule (moments up to 2d − 1 only).
pub fn quadrature_pair(target: &GaussianMixture, degree: usize, sigma: f64) -> Result<Controlled> {
    let matched = gauss_rule(target, degree + 1)?.law;
    let short = gauss_rule(target, degree)?.law;
    let ys: Vec<Vec<f64>> = grid(target, sigma).into_iter().map(|y| vec![y]).collect();
    compare_fits(target, &matched, &short, degree, sigma, &ys)
}

/// The rounding of the rule's normal equations `Ĝc = r̂` (m features, sums of `terms` atom×node
/// products in n coordinates up to degree d): each entry is a sum of N = terms + 4d + 4n + 8
/// rounded products of positive-majorised factors, so `‖ΔĜ‖ ≤ γ_N(1 + γ_N)‖A_G‖` and
/// `‖Δr̂‖ ≤ γ_N(1 + γ_N)‖A_r‖` (`A` the majorant sums; their own rounding is below γ_N of them),
/// and the Cholesky solve is backward stable with `‖ΔG‖ ≤ 4m²ε·λ_max`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NormalEquationErrors {
    /// Bound on `‖ΔĜ‖` from forming Ĝ.
    gram: f64,
    /// Bound on `‖Δr̂‖` from forming r̂.
    rhs: f64,
    /// The solve's backward error `4m²ε·λ_max`.
    solve: f64,
}

impl NormalEquationErrors {
    fn new(
        terms: usize,
        degree: usize,
        n: usize,
        gram_majorant: f64,
        rhs_majorant: f64,
        lambda_max: f64,
    ) -> Self {
        let m = exponents(n, degree).len();
        let big_n = terms + 4 * degree + 4 * n + 8;
        let gamma = gamma_f64(big_n) * (1.0 + gamma_f64(big_n));
        Self {
            gram: gamma * gram_majorant,
            rhs: gamma * rhs_majorant,
            solve: 4.0 * (m * m) as f64 * EPS * lambda_max,
        }
    }

    /// The matrix side of the solve's perturbation: forming Ĝ plus the solve's backward error.
    fn matrix(&self) -> f64 {
        self.gram + self.solve
    }
}

/// The perturbation bound of a symmetric positive definite system `Gc = r`: if the computed
/// system differs by `‖ΔG‖ ≤ e_G`, `‖Δr‖ ≤ e_r` and the perturbed `G` has smallest eigenvalue
/// ≥ λ > 0, then `‖Δc‖ ≤ (e_r + e_G‖c̃‖)/λ` with `‖c̃‖` (`solution_norm`) a bound on the norm of
/// the perturbed solution.
fn perturbed_solution_bound(
    rhs_error: f64,
    matrix_error: f64,
    solution_norm: f64,
    lambda: f64,
) -> f64 {
    (rhs_error + matrix_error * solution_norm) / lambda
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(e_r + e_G‖c‖)/λ` by hand: (1 + 2·3)/0.5 = 14.
    #[test]
    fn perturbed_solution_bound_by_hand() {
        assert_eq!(perturbed_solution_bound(1.0, 2.0, 3.0, 0.5), 14.0);
    }

    /// The law-difference bound `(‖Δr‖ + ‖ΔG‖(‖Ĉ‖ + e))/λ_P` is affine and strictly increasing
    /// in the fit's coefficient error e (the solution-norm bound is ‖Ĉ‖ **plus** e): for
    /// P = N(0, 1) against Q = ½δ₋₁ + ½δ₁ at degree 1, e = 0, ‖Ĉ‖, 2‖Ĉ‖ give equally spaced,
    /// increasing bounds. (`‖Ĉ‖ − e` would make them decrease.)
    #[test]
    fn law_difference_bound_grows_with_the_coefficient_error() {
        let one = Mat::from_fn(1, 1, |_, _| 1.0);
        let zero = Mat::zeros(1, 1);
        let p = GaussianMixture::new(&[1.0], &[vec![0.0]], &[one]).unwrap();
        let q = GaussianMixture::new(&[0.5, 0.5], &[vec![-1.0], vec![1.0]], &[zero.clone(), zero])
            .unwrap();
        let mut fit = rule_least_squares(&q, 0.7, 1).unwrap();
        let c = fit.coefficients.norm_l2();
        let bounds: Vec<f64> = [0.0, c, 2.0 * c]
            .iter()
            .map(|&e| {
                fit.coefficient_error = e;
                law_difference_bound(&p, &fit, 1).unwrap()
            })
            .collect();
        assert!(bounds[0] < bounds[1] && bounds[1] < bounds[2], "{bounds:?}");
        let (step1, step2) = (bounds[1] - bounds[0], bounds[2] - bounds[1]);
        assert!((step1 - step2).abs() <= 1e-9 * step1, "{bounds:?}");
    }

    /// The normal equations' error terms by hand for 2-D degree 2 (m = 6 features) with 12
    /// atom×node terms: N = 12 + 8 + 8 + 8 = 36, so `gram = γ₃₆(1 + γ₃₆)·5`,
    /// `rhs = γ₃₆(1 + γ₃₆)·7`, `solve = 4·36ε·2` and the matrix side is gram + solve.
    #[test]
    fn normal_equation_errors_by_hand() {
        let e = NormalEquationErrors::new(12, 2, 2, 5.0, 7.0, 2.0);
        let gamma = gamma_f64(36) * (1.0 + gamma_f64(36));
        assert_eq!(e.gram, gamma * 5.0);
        assert_eq!(e.rhs, gamma * 7.0);
        assert_eq!(e.solve, 144.0 * EPS * 2.0);
        assert_eq!(e.matrix(), gamma * 5.0 + 144.0 * EPS * 2.0);
    }
}
