//! The optimal *local-window* linear denoiser on an image grid: each output pixel is the best
//! affine prediction of the clean pixel from the noisy pixels of its `w × w` neighbourhood only
//! (a linear denoiser with receptive field w, the locality of a convolutional network's first
//! layers without its weight sharing).
//!
//! For a law of clean images `x` with mean μ and covariance Σ (d = side², one channel,
//! row-major), `y = x + σg`, and the window `N(p) = {q : |row(q) − row(p)| ≤ h,
//! |col(q) − col(p)| ≤ h} ∩ grid`, `h = (w − 1)/2`, minimising `E(x_p − v_pᵀy_{N(p)} − b_p)²`
//! gives the normal equations
//!
//! `(Σ_{NN} + σ²I) v_p = Σ_{Np}`,  `b_p = μ_p − v_pᵀμ_N`,
//!
//! and the minimum `E(x_p − f_p(y))² = Σ_pp − v_pᵀΣ_{Np}` (the Schur complement). The map is
//! affine, `f(y) = W y + b` with `W_{p,N(p)} = v_pᵀ` and zeros elsewhere, so its MSE under any
//! law with moments (μ, Σ) is also [`super::linear::affine_mse`] of (W, b): the two agree exactly
//! when the `v_p` solve their normal equations. A pixel permutation moves the window onto
//! unrelated pixels, which is what `theorems::shuffled_pixels` measures.

use super::linear::Affine;
use crate::error::{ensure_finite, ensure_sigma, Error, Result};
use crate::linalg::{self, Mat};

/// The local-window linear denoiser of a `side × side` single-channel image law, stored by its
/// moments; [`LocalWindow::at`] solves the normal equations at one σ.
#[derive(Debug, Clone)]
pub struct LocalWindow {
    side: usize,
    window: usize,
    mean: Vec<f64>,
    covariance: Mat,
}

impl LocalWindow {
    /// From the mean μ (length `side²`) and covariance Σ (`side² × side²`, symmetric, finite)
    /// of the clean images and an odd window width `window ≥ 1`. Errors name the bad value.
    pub fn new(side: usize, window: usize, mean: &[f64], covariance: &Mat) -> Result<Self> {
        if side == 0 || window == 0 || window.is_multiple_of(2) {
            return Err(Error::InvalidArgument {
                what: "local window".into(),
                reason: format!(
                    "need side ≥ 1 and an odd window ≥ 1, got side {side}, window {window}"
                ),
            });
        }
        let d = side * side;
        if mean.len() != d {
            return Err(Error::DimensionMismatch {
                what: "mean of the images (side² pixels)".into(),
                expected: d,
                got: mean.len(),
            });
        }
        ensure_finite("mean of the images", mean)?;
        if covariance.nrows() != d || covariance.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: "covariance of the images (side² rows and columns)".into(),
                expected: d,
                got: if covariance.nrows() != d {
                    covariance.nrows()
                } else {
                    covariance.ncols()
                },
            });
        }
        linalg::check_symmetric("covariance of the images", covariance)?;
        Ok(Self {
            side,
            window,
            mean: mean.to_vec(),
            covariance: covariance.clone(),
        })
    }

    /// The window `N(p)` of pixel `p` (row-major indices, increasing): the pixels within
    /// `h = (w − 1)/2` rows and columns of p, clipped at the border.
    pub fn neighbourhood(&self, p: usize) -> Vec<usize> {
        let h = self.window / 2;
        let (r, c) = (p / self.side, p % self.side);
        let rows = r.saturating_sub(h)..(r + h + 1).min(self.side);
        rows.flat_map(|i| {
            (c.saturating_sub(h)..(c + h + 1).min(self.side)).map(move |j| i * self.side + j)
        })
        .collect()
    }

    /// The weights `v_p` of every pixel at σ: Cholesky solves of `(Σ_NN + σ²I)v = Σ_Np`.
    fn weights(&self, sigma: f64) -> Result<Vec<(Vec<usize>, Vec<f64>)>> {
        ensure_sigma(sigma)?;
        let s2 = sigma * sigma;
        (0..self.side * self.side)
            .map(|p| {
                let n = self.neighbourhood(p);
                let k = n.len();
                let a = Mat::from_fn(k, k, |i, j| {
                    self.covariance[(n[i], n[j])] + if i == j { s2 } else { 0.0 }
                });
                let rhs = Mat::from_fn(k, 1, |i, _| self.covariance[(n[i], p)]);
                let v = linalg::col_to_vec(&linalg::spd_solve(&a, &rhs)?);
                Ok((n, v))
            })
            .collect()
    }

    /// The denoiser at σ as a dense affine map `y ↦ W y + b` (`W_{p,N(p)} = v_pᵀ`, zero outside
    /// the window; `b_p = μ_p − v_pᵀμ_N`).
    pub fn at(&self, sigma: f64) -> Result<Affine> {
        let d = self.side * self.side;
        let mut w = Mat::zeros(d, d);
        let mut b = self.mean.clone();
        for (p, (n, v)) in self.weights(sigma)?.into_iter().enumerate() {
            for (q, vq) in n.iter().zip(&v) {
                w[(p, *q)] = *vq;
                b[p] -= vq * self.mean[*q];
            }
        }
        Affine::new(w, b)
    }

    /// The minimum MSE by the Schur complements, `Σ_p (Σ_pp − v_pᵀΣ_{Np})` — valid only because
    /// the `v_p` solve the normal equations (an independent route to
    /// [`super::linear::affine_mse`] of [`LocalWindow::at`]).
    pub fn schur_mse(&self, sigma: f64) -> Result<f64> {
        Ok(self
            .weights(sigma)?
            .iter()
            .enumerate()
            .map(|(p, (n, v))| {
                self.covariance[(p, p)]
                    - n.iter()
                        .zip(v)
                        .map(|(q, vq)| vq * self.covariance[(*q, p)])
                        .sum::<f64>()
            })
            .sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows by hand on a 4×4 grid, w = 3: a corner has 4 pixels, an edge 6, an inner 9.
    #[test]
    fn neighbourhoods_by_hand() {
        let lw = LocalWindow::new(4, 3, &[0.0; 16], &Mat::identity(16, 16)).unwrap();
        assert_eq!(lw.neighbourhood(0), vec![0, 1, 4, 5]);
        assert_eq!(lw.neighbourhood(1), vec![0, 1, 2, 4, 5, 6]);
        assert_eq!(lw.neighbourhood(5), vec![0, 1, 2, 4, 5, 6, 8, 9, 10]);
        assert_eq!(lw.neighbourhood(15), vec![10, 11, 14, 15]);
    }

    /// Independent pixels of variance λ: every window weight but the own pixel's is 0, the own
    /// is λ/(λ + σ²), and the MSE is d·λσ²/(λ + σ²).
    #[test]
    fn white_pixels_shrink_alone() {
        let lw = LocalWindow::new(3, 3, &[0.5; 9], &(Mat::identity(9, 9) * 2.0)).unwrap();
        let f = lw.at(1.0).unwrap();
        for p in 0..9 {
            for q in 0..9 {
                let want = if p == q { 2.0 / 3.0 } else { 0.0 };
                assert!((f.weight()[(p, q)] - want).abs() < 1e-15);
            }
        }
        assert!((lw.schur_mse(1.0).unwrap() - 9.0 * 2.0 / 3.0).abs() < 1e-13);
    }
}
