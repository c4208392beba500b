//! Central differences with an error estimate.
//!
//! `D(h) = (f(x+h) − f(x−h))/2h` has truncation error `h²f'''/6 + O(h⁴)`, so
//! `D(2h) − D(h) = 3·h²f'''/6 + O(h⁴)` and `|D(2h) − D(h)|/3` estimates the truncation error of
//! `D(h)` (Richardson). The rounding error is at most `δf/h` when each evaluation of f is
//! accurate to `δf`. The figure reported is `2·|D(2h) − D(h)|/3 + 2δf/h` — the Richardson
//! estimate with a safety factor of two for the `O(h⁴)` remainder, plus the rounding term.
//!
//! **This is a calibrated estimate, not a proved bound.** Taylor's theorem with the fifth-order
//! remainder gives `D(h) = f' + a h² + r(h)`, `a = f'''/6`, `|r(h)| ≤ M₅h⁴/120` with `M₅` bounding
//! `|f⁽⁵⁾|` on `[x − 2h, x + 2h]`; eliminating `a h²` with `D(2h)` and adding the rounding of both
//! differences (`δf/h` and `δf/2h`) proves
//! `|D̂(h) − f'| ≤ |D̂(2h) − D̂(h)|/3 + 3δf/2h + M₅h⁴/18`.
//! The reported figure is therefore a bound exactly when `M₅h⁴/18 ≤ |D̂(2h) − D̂(h)|/3 + δf/2h`,
//! i.e. when the `h²` term is not cancelled by the `h⁴` term. No bound on `M₅` is derived for the
//! functions this module is used on (log p_σ of a mixture, Bayes denoisers, MLPs), so every
//! tolerance built on it is labelled calibrated; the unit test
//! `richardson_figure_fails_when_the_h4_term_cancels_the_h2_term` shows a function where the
//! figure is below the true error.

use crate::error::Result;
use crate::linalg::Mat;

/// A derivative estimate with its error bound.
#[derive(Debug, Clone)]
pub struct Derivative<T> {
    /// The central-difference estimate at step h.
    pub value: T,
    /// The calibrated error figure described in the module documentation (a bound only while
    /// the `h⁴` remainder stays below the `h²` estimate).
    pub error: T,
}

/// Gradient of a scalar function by central differences at step `h` per coordinate, with the
/// error bound. `f_error` bounds the absolute error of one evaluation of `f`.
pub fn gradient(
    f: impl Fn(&[f64]) -> Result<f64>,
    x: &[f64],
    h: f64,
    f_error: f64,
) -> Result<Derivative<Vec<f64>>> {
    let mut value = Vec::with_capacity(x.len());
    let mut error = Vec::with_capacity(x.len());
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        let mut d = |step: f64| -> Result<f64> {
            xp[i] = x[i] + step;
            let fp = f(&xp)?;
            xp[i] = x[i] - step;
            let fm = f(&xp)?;
            xp[i] = x[i];
            Ok((fp - fm) / (2.0 * step))
        };
        let d1 = d(h)?;
        let d2 = d(2.0 * h)?;
        value.push(d1);
        error.push(2.0 * (d2 - d1).abs() / 3.0 + 2.0 * f_error / h);
    }
    Ok(Derivative { value, error })
}

/// Jacobian `J_ij = ∂f_i/∂x_j` of a vector function by central differences at step `h`, with
/// the elementwise error bound; `f_error` bounds the absolute error of each output of `f`.
pub fn jacobian(
    f: impl Fn(&[f64]) -> Result<Vec<f64>>,
    x: &[f64],
    h: f64,
    f_error: f64,
) -> Result<Derivative<Mat>> {
    let n = x.len();
    let m = f(x)?.len();
    let mut value = Mat::zeros(m, n);
    let mut error = Mat::zeros(m, n);
    let mut xp = x.to_vec();
    for j in 0..n {
        let mut d = |step: f64| -> Result<Vec<f64>> {
            xp[j] = x[j] + step;
            let fp = f(&xp)?;
            xp[j] = x[j] - step;
            let fm = f(&xp)?;
            xp[j] = x[j];
            Ok(fp
                .iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * step))
                .collect())
        };
        let d1 = d(h)?;
        let d2 = d(2.0 * h)?;
        for i in 0..m {
            value[(i, j)] = d1[i];
            error[(i, j)] = 2.0 * (d2[i] - d1[i]).abs() / 3.0 + 2.0 * f_error / h;
        }
    }
    Ok(Derivative { value, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_error_bound_covers_the_true_error() {
        let f = |x: &[f64]| Ok(x[0].sin() * x[1].exp());
        let x = [0.7, -0.3];
        let g = gradient(f, &x, 1e-3, 1e-16).unwrap();
        let truth = [
            0.7f64.cos() * (-0.3f64).exp(),
            0.7f64.sin() * (-0.3f64).exp(),
        ];
        for ((v, e), t) in g.value.iter().zip(&g.error).zip(truth) {
            assert!((v - t).abs() <= *e);
            assert!(*e < 1e-6);
        }
    }

    /// `f(x) = x⁵ − 5h²x³` at 0: `D(h) = h⁴ − 5h⁴ = −4h⁴` and `D(2h) = 16h⁴ − 20h⁴ = −4h⁴`, so
    /// Richardson's estimate vanishes while the true error is `4h⁴` (`f'(0) = 0`): the reported
    /// figure is no bound here, and the proved bound `|D(2h) − D(h)|/3 + 3δf/2h + M₅h⁴/18`
    /// (`M₅ = 120`) covers it.
    #[test]
    fn richardson_figure_fails_when_the_h4_term_cancels_the_h2_term() {
        let h = 1e-2;
        let f = move |x: &[f64]| Ok(x[0].powi(5) - 5.0 * h * h * x[0].powi(3));
        let g = gradient(f, &[0.0], h, 1e-18).unwrap();
        let true_error = g.value[0].abs();
        assert!((true_error - 4.0 * h.powi(4)).abs() < 1e-12, "{g:?}");
        assert!(
            g.error[0] < true_error,
            "the figure covered the error: {g:?}"
        );
        let proved = g.error[0] / 2.0 + 120.0 * h.powi(4) / 18.0;
        assert!(true_error <= proved, "{g:?}");
    }
}
