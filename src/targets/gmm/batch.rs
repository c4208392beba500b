//! The closed forms of a Gaussian mixture at many points at once (points as the rows of an
//! n×d matrix). Everything that depends on σ but not on the point is formed once per
//! component — the capacitance `K = FᵀF + σ²I` of the posterior route with its solve
//! `K⁻¹Fᵀ` and log-determinant, the spectral factor of the density route — and the per-point
//! work is matrix products. The formulas are those of the per-point routes in `gmm.rs`
//! (posterior mean by the posterior route; score and log-density by the density route), so the
//! two routes stay independent of each other; only the order of the sums differs.

use super::{Component, GaussianMixture, LN_2PI};
use crate::error::{ensure_sigma_squared, Error, Result};
use crate::linalg::{self, log_sum_exp, softmax, Mat};

/// `Y − 1μᵀ`: every row of `points` less the component mean.
fn centred(points: &Mat, mean: &[f64]) -> Mat {
    Mat::from_fn(points.nrows(), points.ncols(), |i, j| {
        points[(i, j)] - mean[j]
    })
}

/// `Σ_j a_ij b_ij` for every row i.
fn row_dots(a: &Mat, b: &Mat) -> Vec<f64> {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * b[(i, j)]).sum())
        .collect()
}

/// Row i of the result is `Σ_k ρ_ik v_k(i)` with `ρ_i = softmax_k(logits_ik)`, where
/// `value(k)` gives component k's n×d values; `logits` is n×K.
fn mix_rows(logits: &Mat, d: usize, mut value: impl FnMut(usize) -> Result<Mat>) -> Result<Mat> {
    let (n, k) = (logits.nrows(), logits.ncols());
    let resp: Vec<Vec<f64>> = (0..n)
        .map(|i| softmax(&(0..k).map(|c| logits[(i, c)]).collect::<Vec<_>>()))
        .collect();
    let mut out = Mat::zeros(n, d);
    for c in 0..k {
        if resp.iter().all(|r| r[c] == 0.0) {
            continue;
        }
        let v = value(c)?;
        for j in 0..d {
            // column slices: the same sums as indexing (i, j), without its bounds checks
            let (out_j, v_j) = (out.col_as_slice_mut(j), v.col_as_slice(j));
            for ((o, r), x) in out_j.iter_mut().zip(&resp).zip(v_j) {
                *o += r[c] * x;
            }
        }
    }
    Ok(out)
}

/// One component's posterior route, formed once per σ: the scaled basis F (d×r), `K⁻¹Fᵀ`
/// (r×d) and `log det C = (d − r) log σ² + log det K`.
struct PosteriorFactor {
    factor: Mat,
    solved_factor_t: Mat,
    log_det: f64,
}

impl PosteriorFactor {
    fn new(c: &Component, d: usize, s2: f64) -> Result<Self> {
        let f = c.factor.scaled_basis();
        let r = f.ncols();
        if r == 0 {
            return Ok(Self {
                factor: f,
                solved_factor_t: Mat::zeros(0, d),
                log_det: d as f64 * s2.ln(),
            });
        }
        let ft = f.transpose().to_owned();
        let mut capacitance = &ft * &f;
        for i in 0..r {
            capacitance[(i, i)] += s2;
        }
        let solved_factor_t = linalg::spd_solve(&capacitance, &ft)?;
        let log_det = (d - r) as f64 * s2.ln() + linalg::spd_logdet(&capacitance)?;
        Ok(Self {
            factor: f,
            solved_factor_t,
            log_det,
        })
    }
}

/// One component's density route at every point: the log weighted evidence and, on demand,
/// the gradient of log N(y; μ, C).
struct DensityRows {
    /// `C = Δ·U` (n×r): coordinates in the component's basis.
    coords: Mat,
    /// `δ_⊥ = Δ − CUᵀ` (n×d), or `None` for a full-rank component (exactly zero there).
    perp: Option<Mat>,
    log_weighted_evidence: Vec<f64>,
}

impl DensityRows {
    fn new(c: &Component, points: &Mat, s2: f64) -> Self {
        let (n, d) = (points.nrows(), points.ncols());
        let u = &c.factor.basis;
        let r = c.factor.rank();
        let delta = centred(points, &c.mean);
        let coords = &delta * u;
        // as in the per-point route: δ_⊥ only where the component is rank-deficient
        let perp = (r < d).then(|| &delta - &coords * u.transpose());
        let mut log_det = (d - r) as f64 * s2.ln();
        for &lambda in &c.factor.eigenvalues {
            log_det += (lambda + s2).ln();
        }
        let log_weighted_evidence = (0..n)
            .map(|i| {
                // ‖δ_⊥‖²/σ²: exactly zero for a full-rank component (no complement)
                let mut quad = match &perp {
                    Some(p) => (0..d).map(|j| p[(i, j)] * p[(i, j)]).sum::<f64>() / s2,
                    None => 0.0,
                };
                for (j, &lambda) in c.factor.eigenvalues.iter().enumerate() {
                    quad += coords[(i, j)] * coords[(i, j)] / (lambda + s2);
                }
                c.weight.ln() - 0.5 * (d as f64 * LN_2PI + log_det + quad)
            })
            .collect();
        Self {
            coords,
            perp,
            log_weighted_evidence,
        }
    }

    /// `∇ log N(y; μ, C) = −δ_⊥/σ² − U diag(1/(λ + σ²)) Uᵀδ` at every point (n×d).
    fn gradient(&self, c: &Component, s2: f64) -> Mat {
        let u = &c.factor.basis;
        let scaled = Mat::from_fn(self.coords.nrows(), self.coords.ncols(), |i, j| {
            self.coords[(i, j)] / (c.factor.eigenvalues[j] + s2)
        });
        let mut g = &scaled * u.transpose();
        if let Some(p) = &self.perp {
            for j in 0..g.ncols() {
                for i in 0..g.nrows() {
                    g[(i, j)] += p[(i, j)] / s2;
                }
            }
        }
        for j in 0..g.ncols() {
            for i in 0..g.nrows() {
                g[(i, j)] = -g[(i, j)];
            }
        }
        g
    }
}

impl GaussianMixture {
    /// Validates a batch: `points` n×d with finite entries, σ² a normal f64.
    fn check_batch(&self, points: &Mat, sigma: f64) -> Result<()> {
        ensure_sigma_squared(sigma)?;
        if points.ncols() != self.dim {
            return Err(Error::DimensionMismatch {
                what: "query points (columns)".into(),
                expected: self.dim,
                got: points.ncols(),
            });
        }
        linalg::ensure_finite_mat("query points", points)
    }

    /// `E[x | y]` at every row y of `points` (n×d), by the posterior route: per component
    /// `μ_k + F K⁻¹Fᵀ(y − μ_k)` weighted by the responsibilities from the log evidences
    /// `log w_k − ½(d log 2π + log det C_k + ((‖δ‖² − δᵀF K⁻¹Fᵀδ)/σ²))` — the formulas of
    /// [`ClosedForm::posterior_mean`](crate::targets::ClosedForm::posterior_mean), with `K`
    /// solved once per component instead of once per point.
    pub fn posterior_mean_batch(&self, points: &Mat, sigma: f64) -> Result<Mat> {
        self.check_batch(points, sigma)?;
        let (n, d) = (points.nrows(), self.dim);
        let s2 = sigma * sigma;
        let factors: Vec<PosteriorFactor> = self
            .components
            .iter()
            .map(|c| PosteriorFactor::new(c, d, s2))
            .collect::<Result<_>>()?;
        let mut logits = Mat::zeros(n, self.components.len());
        let mut projections = Vec::with_capacity(factors.len());
        for (k, (c, pf)) in self.components.iter().zip(&factors).enumerate() {
            let delta = centred(points, &c.mean);
            let delta_sq = row_dots(&delta, &delta);
            let (proj, explained) = if pf.factor.ncols() == 0 {
                (Mat::zeros(n, 0), vec![0.0; n])
            } else {
                let proj = &delta * pf.solved_factor_t.transpose(); // (K⁻¹Fᵀδ)ᵀ, n×r
                let ftd = &delta * &pf.factor; // (Fᵀδ)ᵀ, n×r
                let explained = row_dots(&ftd, &proj);
                (proj, explained)
            };
            let log_weight = c.weight.ln();
            for i in 0..n {
                let quad = (delta_sq[i] - explained[i]) / s2;
                logits[(i, k)] = log_weight - 0.5 * (d as f64 * LN_2PI + pf.log_det + quad);
            }
            projections.push(proj);
        }
        mix_rows(&logits, d, |k| {
            let c = &self.components[k];
            let mut means = if factors[k].factor.ncols() == 0 {
                Mat::zeros(n, d)
            } else {
                &projections[k] * factors[k].factor.transpose()
            };
            for (j, &mean) in c.mean.iter().enumerate() {
                for m in means.col_as_slice_mut(j) {
                    *m += mean;
                }
            }
            Ok(means)
        })
    }

    /// The density route of every component at every point, and σ² (after validating).
    fn density_rows(&self, points: &Mat, sigma: f64) -> Result<(Vec<DensityRows>, f64)> {
        self.check_batch(points, sigma)?;
        let s2 = sigma * sigma;
        let rows = self
            .components
            .iter()
            .map(|c| DensityRows::new(c, points, s2))
            .collect();
        Ok((rows, s2))
    }

    /// `∇_y log p_σ(y)` at every row of `points` (n×d), by the density route of
    /// [`ClosedForm::score`](crate::targets::ClosedForm::score), each component's spectral
    /// terms formed once for all points.
    pub fn score_batch(&self, points: &Mat, sigma: f64) -> Result<Mat> {
        let (rows, s2) = self.density_rows(points, sigma)?;
        let logits = Mat::from_fn(points.nrows(), rows.len(), |i, k| {
            rows[k].log_weighted_evidence[i]
        });
        mix_rows(&logits, self.dim, |k| {
            Ok(rows[k].gradient(&self.components[k], s2))
        })
    }

    /// `log p_σ(y)` at every row of `points`, by the density route of
    /// [`ClosedForm::log_density`](crate::targets::ClosedForm::log_density).
    pub fn log_density_batch(&self, points: &Mat, sigma: f64) -> Result<Vec<f64>> {
        let (rows, _) = self.density_rows(points, sigma)?;
        Ok((0..points.nrows())
            .map(|i| {
                log_sum_exp(
                    &rows
                        .iter()
                        .map(|r| r.log_weighted_evidence[i])
                        .collect::<Vec<_>>(),
                )
            })
            .collect())
    }
}
