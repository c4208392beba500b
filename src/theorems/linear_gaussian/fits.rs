//! Least-squares affine fits from samples (CPU, and GPU gradient descent) against the closed form.

use super::*;

/// Least-squares affine fit from n pairs `(x, x + σg)` of `target` against the closed form, as a
/// z-test per entry of `[W b]`: with `e = x − W*y − b*` (zero-mean and uncorrelated with y by
/// optimality), `ŵ − w* = (ỸᵀỸ)⁻¹Ỹᵀe` and its sandwich variance `(ỸᵀỸ)⁻¹(Σ_k e_k² ỹ_kỹ_kᵀ)(ỸᵀỸ)⁻¹`
/// (ỹ = (y, 1)). Residual: the largest |z|; tolerance `z(α/(d(d+1)))` (Bonferroni).
///
/// With `bias_free`, the fit is [`fit_bias_free`] against `W = M(M + σ²I)⁻¹`, `M = Σ + μμᵀ`
/// (regressor y alone; again `E[e yᵀ] = M − W(M + σ²I) = 0`).
///
/// Planted: the closed form with σ for σ² (`Σ(Σ + σI)⁻¹`, i.e. the closed form at noise √σ),
/// z-scored with the same sandwich errors.
pub fn least_squares_matches_closed_form(
    target: &dyn Target,
    sigma: f64,
    n: usize,
    seed: u64,
    bias_free: bool,
) -> Result<Controlled> {
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
    let se = sandwich_standard_errors(&xs, &ya, &w, &b, &ginv);
    let worst_z = |w: &Mat, b: &[f64]| {
        let mut worst = 0.0f64;
        for r in 0..d {
            for c in 0..p {
                let (est, truth) = if c < d {
                    (fit.weight()[(r, c)], w[(r, c)])
                } else {
                    (fit.bias()[r], b[r])
                };
                worst = worst.max((est - truth).abs() / se[(r, c)]);
            }
        }
        worst
    };
    let root = sigma.sqrt();
    Ok(Controlled {
        check: Check {
            residual: worst_z(&w, &b),
            tolerance: z,
        },
        planted: Check {
            residual: worst_z(&opt.weight(root)?, &opt.bias(root)?),
            tolerance: z,
        },
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
/// `64·d·κ(S)·ε·‖W*‖_F`. Planted: GD compared with the other fit (bias-free for the affine run,
/// affine for the bias-free run — the `bias_free` flag passed wrongly).
pub fn gpu_gd_matches_least_squares(
    gpu: &Gpu,
    target: &dyn Target,
    sigma: f64,
    n: usize,
    steps: usize,
    seed: u64,
    bias_free: bool,
) -> Result<Controlled> {
    use crate::denoisers::gd::{gpu_moments, train_linear_gd};
    let (xs, ys) = noisy_pairs(target, sigma, n, seed);
    let moments = gpu_moments(gpu, &xs, &ys, !bias_free)?;
    let gd = train_linear_gd(gpu, &moments, steps)?;
    let fit = |bias_free: bool| {
        if bias_free {
            fit_bias_free(&xs, &ys)
        } else {
            fit_affine(&xs, &ys)
        }
    };
    let d = target.dim();
    let distance = |ls: &crate::denoisers::Affine| {
        let mut diff2 = 0.0;
        for i in 0..d {
            for j in 0..d {
                diff2 += (gd.denoiser.weight()[(i, j)] - ls.weight()[(i, j)]).powi(2);
            }
            diff2 += (gd.denoiser.bias()[i] - ls.bias()[i]).powi(2);
        }
        diff2.sqrt()
    };
    let (eig, _) = linalg::sym_eigen(&moments.second)?;
    let inv_norm = 1.0 / eig[0];
    let w_norm = gd.minimiser.norm_l2();
    let perturbation =
        2.0 * inv_norm * (moments.cross_bound.norm_l2() + w_norm * moments.second_bound.norm_l2());
    let solve = 64.0 * d as f64 * (eig[eig.len() - 1] / eig[0]) * EPS * w_norm;
    let tolerance = gd.error_bound + perturbation + solve;
    Ok(Controlled {
        check: Check {
            residual: distance(&fit(bias_free)?),
            tolerance,
        },
        planted: Check {
            residual: distance(&fit(!bias_free)?),
            tolerance,
        },
    })
}

/// Sandwich standard errors of the least-squares `[W b]` from the residuals of the true optimum
/// `e_r = x_r − b_r − Σ_j W_rj y_j` (row r of the d×p result, p = d + 1 with the bias column or
/// p = d without): `se_rc = √((G⁻¹ M_r G⁻¹)_cc)` with `M_r = Σ_k e_{k,r}² ỹ_k ỹ_kᵀ`, `ỹ_k` row k
/// of `augmented` (n×p, y then 1 when biased) and `G⁻¹ = (ỸᵀỸ)⁻¹` given (`b` is the bias-free
/// optimum's zero bias when p = d).
fn sandwich_standard_errors(
    clean: &Mat,
    augmented: &Mat,
    w: &Mat,
    b: &[f64],
    gram_inverse: &Mat,
) -> Mat {
    let (n, d, p) = (clean.nrows(), clean.ncols(), augmented.ncols());
    let mut se = Mat::zeros(d, p);
    for r in 0..d {
        let e: Vec<f64> = (0..n)
            .map(|i| {
                let fit: f64 = (0..d).map(|j| w[(r, j)] * augmented[(i, j)]).sum();
                clean[(i, r)] - b[r] - fit
            })
            .collect();
        let meat = Mat::from_fn(p, p, |a, c| {
            (0..n)
                .map(|i| e[i] * e[i] * augmented[(i, a)] * augmented[(i, c)])
                .sum()
        });
        let cov = gram_inverse * &meat * gram_inverse;
        for c in 0..p {
            se[(r, c)] = cov[(c, c)].sqrt();
        }
    }
    se
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand in 1-D: y = (1, 2, 4), x = 0.5y + 3 + e with e = (1, −1, 0); `G = [[21, 7],
    /// [7, 3]]`, `M = [[5, 3], [3, 2]]`, so `G⁻¹MG⁻¹ = [[17, −63], [−63, 245]]/196` and the
    /// errors are `√17/14` (weight) and `√245/14` (bias); with e = 0 they are exactly 0.
    #[test]
    fn sandwich_errors_by_hand() {
        let ys = [1.0, 2.0, 4.0];
        let augmented = Mat::from_fn(3, 2, |i, j| if j == 0 { ys[i] } else { 1.0 });
        let gram_inverse = Mat::from_fn(2, 2, |i, j| [[3.0, -7.0], [-7.0, 21.0]][i][j] / 14.0);
        let w = Mat::from_fn(1, 1, |_, _| 0.5);
        let noisy_fit = |e: [f64; 3]| Mat::from_fn(3, 1, |i, _| 0.5 * ys[i] + 3.0 + e[i]);
        let se = sandwich_standard_errors(
            &noisy_fit([1.0, -1.0, 0.0]),
            &augmented,
            &w,
            &[3.0],
            &gram_inverse,
        );
        assert!((se[(0, 0)] - 17f64.sqrt() / 14.0).abs() < 1e-14, "{se:?}");
        assert!((se[(0, 1)] - 245f64.sqrt() / 14.0).abs() < 1e-14, "{se:?}");
        let exact =
            sandwich_standard_errors(&noisy_fit([0.0; 3]), &augmented, &w, &[3.0], &gram_inverse);
        assert_eq!((exact[(0, 0)], exact[(0, 1)]), (0.0, 0.0));
    }
}
