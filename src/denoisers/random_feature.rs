//! The random-feature polynomial denoiser of Levine–Weiss §3.2: a fixed random projection R
//! (w × n, width w = 1024 by default), elementwise powers `φ_j(y) = (c_j R_j·y)^k`, and a linear
//! read-out `f(y) = A φ̃(y)`, `φ̃ = (1, φ)`, fitted by ridge least squares
//! `(G + λ·diag G) Aᵀ = B`, `G = E[φ̃φ̃ᵀ]`, `B = E[φ̃ xᵀ]` over sample pairs.
//!
//! Stability for large k (the paper uses k = 3, 9, 27): the scales `c_j = 1/(‖R_j‖·max_i‖y_i‖)`
//! make `|c_j R_j·y_i| ≤ 1` on the training data (Cauchy–Schwarz), so no power overflows, and the
//! ridge is relative to each feature's own second moment (a Jacobi-scaled ridge), so features of
//! very different sizes (`0.5^27 ≈ 10⁻⁸`) are treated alike.
//!
//! Two routes: [`fit_cpu`] in f64 (Cholesky), and [`fit_gpu`] — projection and Gram by the WGSL
//! GEMM, powers by `gpu/power_features.wgsl`, the solve by Jacobi-preconditioned conjugate
//! gradients whose matrix products run on the GPU.

use super::{check_input, Denoiser};
use crate::error::{Error, Result};
use crate::gpu::gemm::{product, run_products, GpuMat};
use crate::gpu::power_features::power_features;
use crate::gpu::Gpu;
use crate::linalg::{self, Mat};
use crate::numerics::F32_UNIT_ROUNDOFF;
use crate::rng::Rng;

/// A fitted random-feature denoiser (for the noise level it was fitted at).
#[derive(Debug, Clone)]
pub struct RandomFeature {
    projection: Mat,
    scales: Vec<f64>,
    power: usize,
    /// A: n × (w + 1), column 0 the intercept.
    coefficients: Mat,
    sigma: f64,
}

impl RandomFeature {
    /// `φ̃(y) = (1, (c_j R_j·y)^k)`.
    pub fn features(&self, y: &[f64]) -> Vec<f64> {
        std::iter::once(1.0)
            .chain((0..self.projection.nrows()).map(|j| {
                let z: f64 = (0..y.len()).map(|l| self.projection[(j, l)] * y[l]).sum();
                (self.scales[j] * z).powi(self.power as i32)
            }))
            .collect()
    }

    /// The read-out A (n × (w + 1)).
    pub fn coefficients(&self) -> &Mat {
        &self.coefficients
    }

    /// The noise level it was fitted at.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

impl Denoiser for RandomFeature {
    fn dim(&self) -> usize {
        self.projection.ncols()
    }

    /// `A φ̃(y)`; an error at any σ other than the one it was fitted at.
    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        if sigma != self.sigma {
            return Err(Error::InvalidArgument {
                what: "σ".into(),
                reason: format!(
                    "this random-feature denoiser was fitted at σ = {}, asked at σ = {sigma}",
                    self.sigma
                ),
            });
        }
        let h = self.features(y);
        Ok((0..self.coefficients.nrows())
            .map(|i| (0..h.len()).map(|j| self.coefficients[(i, j)] * h[j]).sum())
            .collect())
    }
}

/// A random projection R (w × n) with N(0, 1) entries from Philox `(seed, 0)`.
pub fn random_projection(seed: u64, width: usize, dim: usize) -> Mat {
    let mut rng = Rng::new(seed, 0);
    Mat::from_fn(width, dim, |_, _| rng.normal())
}

/// The scales `c_j = 1/(‖R_j‖·max_i‖y_i‖)` that keep every scaled projection in [−1, 1].
pub(crate) fn feature_scales(projection: &Mat, ys: &Mat) -> Result<Vec<f64>> {
    let max_norm = (0..ys.nrows())
        .map(|i| linalg::row(ys, i).iter().map(|v| v * v).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    if max_norm == 0.0 {
        return Err(Error::InvalidArgument {
            what: "noisy samples".into(),
            reason: "all samples are zero: the features are undefined".into(),
        });
    }
    (0..projection.nrows())
        .map(|j| {
            let r: f64 = (0..projection.ncols())
                .map(|l| projection[(j, l)].powi(2))
                .sum::<f64>()
                .sqrt();
            if r == 0.0 {
                Err(Error::InvalidArgument {
                    what: "projection".into(),
                    reason: format!("row {j} is zero"),
                })
            } else {
                Ok(1.0 / (r * max_norm))
            }
        })
        .collect()
}

fn check_fit(
    xs: &Mat,
    ys: &Mat,
    projection: &Mat,
    power: usize,
    ridge: f64,
    sigma: f64,
) -> Result<()> {
    crate::error::ensure_sigma(sigma)?;
    if xs.nrows() != ys.nrows() || xs.ncols() != ys.ncols() || projection.ncols() != ys.ncols() {
        return Err(Error::DimensionMismatch {
            what: "samples / projection (columns)".into(),
            expected: ys.ncols(),
            got: if projection.ncols() != ys.ncols() {
                projection.ncols()
            } else {
                xs.ncols()
            },
        });
    }
    if power == 0 || !(ridge.is_finite() && ridge > 0.0) {
        return Err(Error::InvalidArgument {
            what: "random-feature fit".into(),
            reason: format!("needs k ≥ 1 and a ridge λ > 0, got k = {power}, λ = {ridge}"),
        });
    }
    linalg::ensure_finite_mat("clean samples", xs)?;
    linalg::ensure_finite_mat("noisy samples", ys)?;
    linalg::ensure_finite_mat("projection", projection)
}

/// The ridge system `M Aᵀ = B`, `M = G + λ·diag G`, in f64 from the sample features.
#[derive(Debug, Clone)]
pub struct RidgeSystem {
    /// `G = (1/N) Φ̃ᵀΦ̃`.
    pub gram: Mat,
    /// `B = (1/N) Φ̃ᵀX`.
    pub cross: Mat,
    /// λ.
    pub ridge: f64,
}

impl RidgeSystem {
    /// `M = G + λ·diag G`.
    pub fn matrix(&self) -> Mat {
        let m = self.gram.nrows();
        Mat::from_fn(m, m, |i, j| {
            self.gram[(i, j)] * if i == j { 1.0 + self.ridge } else { 1.0 }
        })
    }
}

/// The f64 reference fit: features in f64, Gram and cross moments, Cholesky solve.
pub fn fit_cpu(
    xs: &Mat,
    ys: &Mat,
    projection: &Mat,
    power: usize,
    ridge: f64,
    sigma: f64,
) -> Result<(RandomFeature, RidgeSystem)> {
    check_fit(xs, ys, projection, power, ridge, sigma)?;
    let scales = feature_scales(projection, ys)?;
    let mut model = RandomFeature {
        projection: projection.clone(),
        scales,
        power,
        coefficients: Mat::zeros(xs.ncols(), projection.nrows() + 1),
        sigma,
    };
    let n = ys.nrows();
    let phi = Mat::from_fn(n, projection.nrows() + 1, |_, _| 0.0);
    let mut phi = phi;
    for i in 0..n {
        for (j, v) in model.features(&linalg::row(ys, i)).into_iter().enumerate() {
            phi[(i, j)] = v;
        }
    }
    let gram = (phi.transpose() * &phi) * faer::Scale(1.0 / n as f64);
    let cross = (phi.transpose() * xs) * faer::Scale(1.0 / n as f64);
    let system = RidgeSystem { gram, cross, ridge };
    let at = linalg::spd_solve(&system.matrix(), &system.cross)?;
    model.coefficients = at.transpose().to_owned();
    Ok((model, system))
}

/// What the GPU fit's conjugate-gradient solve did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveReport {
    /// Iterations taken.
    pub iterations: usize,
    /// Final `max_c ‖B_c − M A_c‖/‖B_c‖` (with the GPU's M).
    pub relative_residual: f64,
}

/// The GPU fit: `Z = Y Rᵀ` and `G`, `B` by the WGSL GEMM, powers by the power-feature kernel,
/// then Jacobi-preconditioned conjugate gradients on `M Aᵀ = B` (one right-hand side per output
/// coordinate), each `G·P` product a GPU GEMM, until the relative residual is below `tolerance`
/// (an error after 10(w + 1) iterations).
#[allow(clippy::too_many_arguments)]
pub fn fit_gpu(
    gpu: &Gpu,
    xs: &Mat,
    ys: &Mat,
    projection: &Mat,
    power: usize,
    ridge: f64,
    sigma: f64,
    tolerance: f64,
) -> Result<(RandomFeature, SolveReport)> {
    check_fit(xs, ys, projection, power, ridge, sigma)?;
    let scales = feature_scales(projection, ys)?;
    let (n, d, w) = (ys.nrows(), ys.ncols(), projection.nrows());
    let m = w + 1;
    let gy = GpuMat::upload(gpu, "rf Y", ys)?;
    let gx = GpuMat::upload(gpu, "rf X", xs)?;
    let gr = GpuMat::upload(gpu, "rf R", projection)?;
    let gz = GpuMat::poisoned(gpu, "rf Z", n, w)?;
    run_products(
        gpu,
        &[product(
            gpu,
            (&gy, false),
            (&gr, true),
            1.0,
            0.0,
            None,
            &gz,
        )?],
        1,
    )?;
    let phi = power_features(gpu, &gz, &scales, power)?;
    let gg = GpuMat::poisoned(gpu, "rf G", m, m)?;
    let gb = GpuMat::poisoned(gpu, "rf B", m, d)?;
    let inv_n = 1.0 / n as f64;
    run_products(
        gpu,
        &[
            product(
                gpu,
                (&phi, true),
                (&phi, false),
                inv_n as f32,
                0.0,
                None,
                &gg,
            )?,
            product(
                gpu,
                (&phi, true),
                (&gx, false),
                inv_n as f32,
                0.0,
                None,
                &gb,
            )?,
        ],
        1,
    )?;
    let gram = gg.download(gpu)?;
    let cross = gb.download(gpu)?;
    let diag: Vec<f64> = (0..m).map(|i| gram[(i, i)] * (1.0 + ridge)).collect();
    if let Some(j) = diag.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(Error::Numerical(format!(
            "feature {j} has zero second moment in f32 (power k = {power} underflows): lower k"
        )));
    }
    // CG on M A_c = B_c for every column c at once; products G·P on the GPU.
    let mut a = Mat::zeros(m, d);
    let mut r = cross.clone();
    let mut z = Mat::from_fn(m, d, |i, c| r[(i, c)] / diag[i]);
    let mut p = z.clone();
    let col_dot = |x: &Mat, y: &Mat, c: usize| (0..m).map(|i| x[(i, c)] * y[(i, c)]).sum::<f64>();
    let mut rz: Vec<f64> = (0..d).map(|c| col_dot(&r, &z, c)).collect();
    let b_norm: Vec<f64> = (0..d)
        .map(|c| col_dot(&cross, &cross, c).sqrt().max(f64::MIN_POSITIVE))
        .collect();
    let gq = GpuMat::poisoned(gpu, "rf GP", m, d)?;
    let max_iter = 10 * m;
    for iteration in 1..=max_iter {
        let gp = GpuMat::upload(gpu, "rf P", &p)?;
        run_products(
            gpu,
            &[product(
                gpu,
                (&gg, false),
                (&gp, false),
                1.0,
                0.0,
                None,
                &gq,
            )?],
            1,
        )?;
        let gpp = gq.download(gpu)?;
        let q = Mat::from_fn(m, d, |i, c| gpp[(i, c)] + ridge * gram[(i, i)] * p[(i, c)]);
        let mut worst: f64 = 0.0;
        for c in 0..d {
            let pq = col_dot(&p, &q, c);
            if pq <= 0.0 {
                continue;
            }
            let alpha = rz[c] / pq;
            for i in 0..m {
                a[(i, c)] += alpha * p[(i, c)];
                r[(i, c)] -= alpha * q[(i, c)];
            }
            worst = worst.max(col_dot(&r, &r, c).sqrt() / b_norm[c]);
        }
        if worst <= tolerance {
            return Ok((
                RandomFeature {
                    projection: projection.clone(),
                    scales,
                    power,
                    coefficients: a.transpose().to_owned(),
                    sigma,
                },
                SolveReport {
                    iterations: iteration,
                    relative_residual: worst,
                },
            ));
        }
        z = Mat::from_fn(m, d, |i, c| r[(i, c)] / diag[i]);
        for c in 0..d {
            let rz_new = col_dot(&r, &z, c);
            let beta = if rz[c] > 0.0 { rz_new / rz[c] } else { 0.0 };
            rz[c] = rz_new;
            for i in 0..m {
                p[(i, c)] = z[(i, c)] + beta * p[(i, c)];
            }
        }
    }
    Err(Error::Numerical(format!(
        "conjugate gradients did not reach a relative residual of {tolerance} in {max_iter} \
         iterations (κ of the ridge system too large: raise λ)"
    )))
}

/// Bound on the difference of the GPU and f64 fits' predictions, in the Jacobi-scaled
/// coordinates where the analysis is uniform: with `D = diag M`, `M̂ = D^{-1/2} M D^{-1/2}` has unit
/// diagonal and `λ_min(M̂) ≥ λ/(1 + λ)` (as `M ⪰ λ·diag G = λ/(1+λ)·D`), so for `Â = A D^{1/2}`
/// `‖ΔÂ‖_F ≤ ‖M̂⁻¹‖(‖ΔM̂‖_F‖Â‖_F + ‖ΔB̂‖_F + ρ‖B̂‖_F)/(1 − ‖M̂⁻¹‖‖ΔM̂‖_F)`, ρ the solve's relative
/// residual, and `|f_gpu(y) − f_cpu(y)| ≤ ‖ΔÂ‖_F·‖D^{-1/2}φ̃(y)‖`. Elementwise f32 perturbations
/// (u = 2⁻²⁴, γ_n = nu/(1 − nu)), from the f64 reference's Φ̃ and Y:
/// `ΔΦ̃_ij ≤ k|v|^{k−1}(c_j γ_{n+5}(|Y||R|ᵀ)_ij + 2u|v|) + (k − 1)u|v|^k` (`gpu::power_features`),
/// `ΔG ≤ γ_{N+5}|Φ̃|ᵀ|Φ̃|/N + (|Φ̃|ᵀΔΦ̃ + ΔΦ̃ᵀ|Φ̃|)/N`, `ΔM = ΔG` off the diagonal and `(1+λ)ΔG` on
/// it, `ΔB ≤ γ_{N+5}|Φ̃|ᵀ|X|/N + ΔΦ̃ᵀ|X|/N`; doubled for second-order terms. Returns the closure
/// data: `(‖ΔÂ‖_F bound, D)`.
pub fn gpu_fit_error_bound(
    xs: &Mat,
    ys: &Mat,
    model: &RandomFeature,
    system: &RidgeSystem,
    relative_residual: f64,
) -> Result<(f64, Vec<f64>)> {
    let u = F32_UNIT_ROUNDOFF;
    let gamma = |k: usize| k as f64 * u / (1.0 - k as f64 * u);
    let (n, d) = (ys.nrows(), ys.ncols());
    let w = model.projection.nrows();
    let k = model.power as i32;
    let mut phi = Mat::zeros(n, w + 1);
    let mut dphi = Mat::zeros(n, w + 1);
    for i in 0..n {
        phi[(i, 0)] = 1.0;
        for j in 0..w {
            let (mut z, mut mag) = (0.0, 0.0);
            for l in 0..d {
                z += model.projection[(j, l)] * ys[(i, l)];
                mag += (model.projection[(j, l)] * ys[(i, l)]).abs();
            }
            let v = (model.scales[j] * z).abs();
            phi[(i, j + 1)] = (model.scales[j] * z).powi(k);
            dphi[(i, j + 1)] =
                f64::from(k) * v.powi(k - 1) * (model.scales[j] * gamma(d + 5) * mag + 2.0 * u * v)
                    + f64::from(k - 1) * u * v.powi(k);
        }
    }
    let abs_phi = Mat::from_fn(n, w + 1, |i, j| phi[(i, j)].abs());
    let abs_x = Mat::from_fn(n, d, |i, j| xs[(i, j)].abs());
    let inv_n = faer::Scale(1.0 / n as f64);
    let dg = (abs_phi.transpose() * &abs_phi) * faer::Scale(gamma(n + 5) / n as f64)
        + (abs_phi.transpose() * &dphi) * inv_n
        + (dphi.transpose() * &abs_phi) * inv_n;
    let db = (abs_phi.transpose() * &abs_x) * faer::Scale(gamma(n + 5) / n as f64)
        + (dphi.transpose() * &abs_x) * inv_n;
    let m = system.matrix();
    let diag: Vec<f64> = (0..=w).map(|i| m[(i, i)]).collect();
    let scale = |i: usize| 1.0 / diag[i].sqrt();
    let dm_hat = Mat::from_fn(w + 1, w + 1, |i, j| {
        dg[(i, j)] * if i == j { 1.0 + system.ridge } else { 1.0 } * scale(i) * scale(j)
    })
    .norm_l2();
    let db_hat = Mat::from_fn(w + 1, d, |i, c| db[(i, c)] * scale(i)).norm_l2();
    let b_hat = Mat::from_fn(w + 1, d, |i, c| system.cross[(i, c)] * scale(i)).norm_l2();
    let a_hat = Mat::from_fn(d, w + 1, |c, i| model.coefficients[(c, i)] / scale(i)).norm_l2();
    let inv = (1.0 + system.ridge) / system.ridge;
    if inv * dm_hat >= 1.0 {
        return Err(Error::Numerical(format!(
            "the f32 perturbation of the scaled ridge system (‖ΔM̂‖ = {dm_hat:.3e}) is not below \
             λ/(1 + λ) = {:.3e}: raise λ or lower N·w",
            1.0 / inv
        )));
    }
    let bound = inv * (dm_hat * a_hat + db_hat + relative_residual * b_hat) / (1.0 - inv * dm_hat);
    Ok((2.0 * bound, diag))
}

#[cfg(test)]
mod tests {
    use super::{feature_scales, fit_cpu, gpu_fit_error_bound, random_projection};
    use crate::linalg::Mat;
    use crate::numerics::F32_UNIT_ROUNDOFF;
    use crate::rng::Rng;

    /// `gpu_fit_error_bound` is the formula of its doc comment, written out again entry by entry
    /// (sums over samples instead of matrix products) on a 5-sample, 2-D, 3-feature fit with
    /// k = 3: the two agree to 1e-12 relative. (The bound is used only as an upper allowance,
    /// where a shrunken bound still passes; this pins it.)
    #[test]
    fn gpu_fit_error_bound_written_out() {
        let (n, d, w, k, ridge) = (5usize, 2usize, 3usize, 3i32, 0.05);
        let mut rng = Rng::new(31, 2);
        let xs = Mat::from_fn(n, d, |_, _| rng.normal());
        let ys = Mat::from_fn(n, d, |i, l| xs[(i, l)] + 0.5 * rng.normal());
        let projection = random_projection(4, w, d);
        let (model, system) = fit_cpu(&xs, &ys, &projection, k as usize, ridge, 0.5).unwrap();
        let rho = 1e-7;
        let (bound, diag) = gpu_fit_error_bound(&xs, &ys, &model, &system, rho).unwrap();

        let u = F32_UNIT_ROUNDOFF;
        let gamma = |m: usize| m as f64 * u / (1.0 - m as f64 * u);
        let (mut phi, mut dphi) = (vec![vec![1.0; w + 1]; n], vec![vec![0.0; w + 1]; n]);
        for i in 0..n {
            for j in 0..w {
                let c = model.scales[j];
                let z: f64 = (0..d).map(|l| projection[(j, l)] * ys[(i, l)]).sum();
                let mag: f64 = (0..d)
                    .map(|l| (projection[(j, l)] * ys[(i, l)]).abs())
                    .sum();
                let v = (c * z).abs();
                phi[i][j + 1] = (c * z).powi(k);
                dphi[i][j + 1] = k as f64 * v.powi(k - 1) * (c * gamma(d + 5) * mag + 2.0 * u * v)
                    + (k - 1) as f64 * u * v.powi(k);
            }
        }
        let g_n = gamma(n + 5);
        let mut m_diag = vec![0.0; w + 1];
        for (a, m) in m_diag.iter_mut().enumerate() {
            *m = (1.0 + ridge) * (0..n).map(|i| phi[i][a] * phi[i][a]).sum::<f64>() / n as f64;
            assert!((*m - diag[a]).abs() <= 1e-12 * *m, "D_{a}");
        }
        let (mut dm2, mut db2, mut b2, mut a2) = (0.0, 0.0, 0.0, 0.0);
        for a in 0..=w {
            for b in 0..=w {
                let dg: f64 = (0..n)
                    .map(|i| {
                        g_n * phi[i][a].abs() * phi[i][b].abs()
                            + phi[i][a].abs() * dphi[i][b]
                            + dphi[i][a] * phi[i][b].abs()
                    })
                    .sum::<f64>()
                    / n as f64;
                let on_diag = if a == b { 1.0 + ridge } else { 1.0 };
                dm2 += (dg * on_diag / (m_diag[a] * m_diag[b]).sqrt()).powi(2);
            }
            for c in 0..d {
                let db: f64 = (0..n)
                    .map(|i| (g_n * phi[i][a].abs() + dphi[i][a]) * xs[(i, c)].abs())
                    .sum::<f64>()
                    / n as f64;
                let cross: f64 = (0..n).map(|i| phi[i][a] * xs[(i, c)]).sum::<f64>() / n as f64;
                db2 += db * db / m_diag[a];
                b2 += cross * cross / m_diag[a];
                a2 += model.coefficients[(c, a)].powi(2) * m_diag[a];
            }
        }
        let inv = (1.0 + ridge) / ridge;
        let dm = dm2.sqrt();
        let expected =
            2.0 * inv * (dm * a2.sqrt() + db2.sqrt() + rho * b2.sqrt()) / (1.0 - inv * dm);
        assert!(
            (bound - expected).abs() <= 1e-12 * expected,
            "{bound} vs {expected}"
        );
    }

    /// `c_j = 1/(‖R_j‖·max_i‖y_i‖)` by hand: rows of R with norms 5 and 1, samples with norms
    /// 5 and 13 (3-4-5 and 5-12-13 triangles), so c = (1/65, 1/13) exactly.
    #[test]
    fn feature_scales_by_hand() {
        let r = Mat::from_fn(2, 2, |j, l| [[3.0, 4.0], [0.0, -1.0]][j][l]);
        let ys = Mat::from_fn(2, 2, |i, l| [[-3.0, 4.0], [5.0, 12.0]][i][l]);
        let c = feature_scales(&r, &ys).unwrap();
        assert!(
            (c[0] - 1.0 / 65.0).abs() < 1e-17 && (c[1] - 1.0 / 13.0).abs() < 1e-16,
            "{c:?}"
        );
        assert!(feature_scales(&r, &Mat::zeros(2, 2)).is_err());
    }
}
