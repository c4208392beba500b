//! The estimators' workloads: covariance, GMM posterior, empirical denoiser, polynomial features.

use super::{binding_words, random_gpu, random_host, random_normals, runner, SEED};
use crate::bench::{Runner, Workload};
use crate::error::{Error, Result};
use crate::gpu::empirical::GpuEmpirical;
use crate::gpu::gemm::{product, run_products, GpuMat};
use crate::gpu::{chunks, gmm, power_features, Gpu};
use crate::linalg::Mat;
use crate::rng::Rng;
use crate::targets::GaussianMixture;
use rayon::prelude::*;

/// The uncentred covariance `XᵀX` of N samples of dimension d: `2Nd²` FLOPs (the full d×d
/// product, both triangles), `4(Nd + d²)` bytes. The d×d output is tiled into row blocks
/// `C_b = X_bᵀX` (`X_b` the matching column block of X, copied at setup) so that each fits the
/// adapter's storage binding (one block on an H100 at d = 12288; 5 on llvmpipe's 128 MiB); all
/// blocks run in one submission and the whole product is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covariance {
    /// N samples.
    pub n: usize,
    /// d.
    pub d: usize,
}

impl Covariance {
    /// Output rows per tile: `d_b·d` and `N·d_b` f32 within one binding.
    pub fn tile_rows(&self, binding_words: usize) -> usize {
        (binding_words / self.d.max(1))
            .min(binding_words / self.n.max(1))
            .clamp(1, self.d.max(1))
    }
}

impl Workload for Covariance {
    fn name(&self) -> &'static str {
        "covariance"
    }
    fn size(&self) -> String {
        format!("N={},d={}", self.n, self.d)
    }
    fn flops(&self) -> f64 {
        2.0 * self.n as f64 * (self.d as f64).powi(2)
    }
    fn bytes(&self) -> f64 {
        4.0 * (self.n as f64 * self.d as f64 + (self.d as f64).powi(2))
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let (n, d) = (self.n, self.d);
        let data = random_normals(3, n * d);
        let x = GpuMat::poisoned(gpu, "bench X", n, d)?;
        gpu.queue()
            .write_buffer(x.buffer(), 0, bytemuck::cast_slice(&data));
        let mut tiles = Vec::new();
        for (start, rows) in chunks(d, self.tile_rows(binding_words(gpu))) {
            let xb = GpuMat::poisoned(gpu, "bench X column block", n, rows)?;
            let block: Vec<f32> = (0..n)
                .flat_map(|i| data[i * d + start..i * d + start + rows].iter().copied())
                .collect();
            gpu.queue()
                .write_buffer(xb.buffer(), 0, bytemuck::cast_slice(&block));
            let cb = GpuMat::poisoned(gpu, "bench XᵀX row block", rows, d)?;
            tiles.push((xb, cb));
        }
        Ok(runner(move || {
            let products = tiles
                .iter()
                .map(|(xb, cb)| product(gpu, (xb, true), (&x, false), 1.0, 0.0, None, cb))
                .collect::<Result<Vec<_>>>()?;
            run_products(gpu, &products, 1)
        }))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let x = random_host((self.n, self.d), 3, 1.0);
        Some(runner(move || {
            std::hint::black_box(x.transpose() * &x);
            Ok(())
        }))
    }
}

/// GMM posterior (responsibilities, score, posterior mean) of a batch of points through
/// `gpu::gmm::gmm_posterior` (host points in, host results out: the wall clock includes the
/// transfers, timestamps only the kernel). FLOPs per point and component: `C⁻¹δ` and `Gδ`
/// (`2d²` each), `δᵀC⁻¹δ`, δ and the two accumulations (`8d`) — `batch·K·(4d² + 8d)`; the
/// kernel itself recomputes `C⁻¹δ` (`6d²`). Bytes: points in, `K` responsibilities and two
/// d-vectors out per point, and the K precisions and gains: `4(batch(3d + K) + K(2d² + d + 1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GmmPosterior {
    /// Points.
    pub batch: usize,
    /// Dimension (≤ 64, the kernel's limit).
    pub d: usize,
    /// Components.
    pub k: usize,
}

impl Workload for GmmPosterior {
    fn name(&self) -> &'static str {
        "gmm_posterior"
    }
    fn size(&self) -> String {
        format!("batch={},d={},K={}", self.batch, self.d, self.k)
    }
    fn flops(&self) -> f64 {
        let d = self.d as f64;
        self.batch as f64 * self.k as f64 * (4.0 * d * d + 8.0 * d)
    }
    fn bytes(&self) -> f64 {
        let (b, d, k) = (self.batch as f64, self.d as f64, self.k as f64);
        4.0 * (b * (3.0 * d + k) + k * (2.0 * d * d + d + 1.0))
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let target: GaussianMixture =
            crate::targets::random_gmm(&mut Rng::new(SEED, 4), self.d, self.k)?;
        let points = random_host((self.batch, self.d), 5, 2.0);
        Ok(runner(move || {
            gmm::gmm_posterior(gpu, &target, &points, 1.0).map(|_| ())
        }))
    }
}

/// The empirical optimal denoiser (book eq. 3.3.3) of B queries against N images of d pixels
/// through [`GpuEmpirical::denoise_resident`]: `S = YXᵀ` and `P·X` (`2BNd` each) and the
/// logits and softmax (`6BN`): `4BNd + 6BN` FLOPs; bytes: the images, their norms, the queries
/// and the outputs once, `4(Nd + N + 2Bd)` (S and P, `4BN` each way, are intermediates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmpiricalDenoiser {
    /// Queries B.
    pub b: usize,
    /// Training images N.
    pub n: usize,
    /// Pixels d.
    pub d: usize,
}

/// α and σ of the benchmark queries (a mid-trajectory VP noise level).
const EMPIRICAL_ALPHA_SIGMA: (f64, f64) = (0.8, 0.6);

/// The CPU path of the empirical denoiser in f64: `S = YXᵀ` and `P·X` by faer, the max-shifted
/// row softmax of `(2αS − α²‖x‖²)/(2σ²)` with rayon.
pub(crate) fn empirical_denoise_cpu(
    x: &Mat,
    norms: &[f64],
    y: &Mat,
    alpha: f64,
    sigma: f64,
) -> Mat {
    let s = y * x.transpose();
    let (b, n) = (s.nrows(), s.ncols());
    let rows: Vec<Vec<f64>> = (0..b)
        .into_par_iter()
        .map(|i| {
            let z: Vec<f64> = (0..n)
                .map(|j| {
                    (2.0 * alpha * s[(i, j)] - alpha * alpha * norms[j]) / (2.0 * sigma * sigma)
                })
                .collect();
            crate::linalg::softmax(&z)
        })
        .collect();
    let p = Mat::from_fn(b, n, |i, j| rows[i][j]);
    p * x
}

impl Workload for EmpiricalDenoiser {
    fn name(&self) -> &'static str {
        "empirical_denoiser"
    }
    fn size(&self) -> String {
        format!("B={},N={},d={}", self.b, self.n, self.d)
    }
    fn flops(&self) -> f64 {
        let (b, n, d) = (self.b as f64, self.n as f64, self.d as f64);
        4.0 * b * n * d + 6.0 * b * n
    }
    fn bytes(&self) -> f64 {
        let (b, n, d) = (self.b as f64, self.n as f64, self.d as f64);
        4.0 * (n * d + n + 2.0 * b * d)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let data = random_host((self.n, self.d), 6, 1.0);
        let emp = GpuEmpirical::new(gpu, &data)?;
        let y = random_gpu(gpu, "bench queries", (self.b, self.d), 7, 1.0)?;
        let out = GpuMat::poisoned(gpu, "bench denoised", self.b, self.d)?;
        let (alpha, sigma) = EMPIRICAL_ALPHA_SIGMA;
        Ok(runner(move || emp.denoise_resident(&y, &out, alpha, sigma)))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let x = random_host((self.n, self.d), 6, 1.0);
        let norms: Vec<f64> = (0..self.n)
            .map(|i| (0..self.d).map(|l| x[(i, l)] * x[(i, l)]).sum())
            .collect();
        let y = random_host((self.b, self.d), 7, 1.0);
        let (alpha, sigma) = EMPIRICAL_ALPHA_SIGMA;
        Some(runner(move || {
            std::hint::black_box(empirical_denoise_cpu(&x, &norms, &y, alpha, sigma));
            Ok(())
        }))
    }
}

/// Random polynomial features of degree k (Levine–Weiss §3.2): the projection `Z = Y Rᵀ`
/// (M×d times d×w, `2Mdw`) and the power kernel `Φ̃ = [1 | (c_j Z_ij)^k]` (`(k + 1)Mw`).
/// Bytes: Y, R and Φ̃ once, `4(Md + wd + M(w + 1))` (Z, `4Mw` each way, is an intermediate).
/// Y is held in row tiles that fit the storage binding; each tile is one GEMM then one power
/// kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolynomialFeatures {
    /// Samples M.
    pub m: usize,
    /// Input dimension d.
    pub d: usize,
    /// Random directions w.
    pub w: usize,
    /// Degree k.
    pub k: usize,
}

impl Workload for PolynomialFeatures {
    fn name(&self) -> &'static str {
        "polynomial_features"
    }
    fn size(&self) -> String {
        format!("M={},d={},w={},k={}", self.m, self.d, self.w, self.k)
    }
    fn flops(&self) -> f64 {
        let (m, d, w, k) = (self.m as f64, self.d as f64, self.w as f64, self.k as f64);
        2.0 * m * d * w + (k + 1.0) * m * w
    }
    fn bytes(&self) -> f64 {
        let (m, d, w) = (self.m as f64, self.d as f64, self.w as f64);
        4.0 * (m * d + w * d + m * (w + 1.0))
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let (d, w, k) = (self.d, self.w, self.k);
        let words = binding_words(gpu);
        let rows = (words / d.max(1)).min(words / (w + 1));
        let r = random_gpu(gpu, "bench R", (w, d), 8, 1.0)?;
        let mut tiles = Vec::new();
        for (t, (_, len)) in chunks(self.m, rows).into_iter().enumerate() {
            let stream = 100 + u32::try_from(t).map_err(|_| Error::GpuLimit("tiles".into()))?;
            let y = random_gpu(gpu, "bench Y tile", (len, d), stream, 1.0)?;
            let z = GpuMat::poisoned(gpu, "bench Z tile", len, w)?;
            tiles.push((y, z));
        }
        let scales = vec![1.0 / (4.0 * (d as f64).sqrt()); w];
        Ok(runner(move || {
            for (y, z) in &tiles {
                let p = product(gpu, (y, false), (&r, true), 1.0, 0.0, None, z)?;
                run_products(gpu, &[p], 1)?;
                power_features::power_features(gpu, z, &scales, k)?;
            }
            Ok(())
        }))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let y = random_host((self.m, self.d), 100, 1.0);
        let r = random_host((self.w, self.d), 8, 1.0);
        let (w, k) = (self.w, self.k as i32);
        let c = 1.0 / (4.0 * (self.d as f64).sqrt());
        Some(runner(move || {
            let z = &y * r.transpose();
            let phi: Vec<Vec<f64>> = (0..z.nrows())
                .into_par_iter()
                .map(|i| {
                    std::iter::once(1.0)
                        .chain((0..w).map(|j| (c * z[(i, j)]).powi(k)))
                        .collect()
                })
                .collect();
            std::hint::black_box(phi);
            Ok(())
        }))
    }
}

/// `eval`-shaped work on a dense Gaussian at image scale: factor `C = Σ + σ²I` (σ = 0.5) by
/// the tiled Cholesky of [`crate::gpu::gaussian`] and solve for the scores of n points —
/// `d³/3 + 2nd²` FLOPs, `4(d² + 2nd)` bytes; Σ = 0.5·I + VVᵀ with V d×5 of entries N(0, 9/d)
/// (the target of `benches/eval_image_scale.py`), validated at setup. The run mixes GPU
/// products with host work (each diagonal tile read back and factored in f64, the points
/// uploaded and the scores read back), so the timestamp time counts the products only; the
/// wall time is the route's whole cost per σ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaussianEval {
    /// d.
    pub d: usize,
    /// Points.
    pub n: usize,
    /// Tile edge.
    pub tile: usize,
}

impl GaussianEval {
    /// The target and the row-major points (streams 40–42).
    fn inputs(&self) -> Result<(crate::targets::gaussian::DenseGaussian, Vec<f64>)> {
        let (d, n) = (self.d, self.n);
        let v = random_host((d, 5), 40, 3.0 / (d as f32).sqrt());
        let mut cov = &v * v.transpose();
        for i in 0..d {
            cov[(i, i)] += 0.5;
        }
        let mean = random_normals(41, d).into_iter().map(f64::from).collect();
        let points = random_normals(42, n * d)
            .into_iter()
            .map(|z| 1.5 * f64::from(z))
            .collect();
        Ok((
            crate::targets::gaussian::DenseGaussian::new(mean, cov)?,
            points,
        ))
    }
}

impl Workload for GaussianEval {
    fn name(&self) -> &'static str {
        "gaussian_eval"
    }
    fn size(&self) -> String {
        format!("d={},n={},tile={}", self.d, self.n, self.tile)
    }
    fn flops(&self) -> f64 {
        let (d, n) = (self.d as f64, self.n as f64);
        d * d * d / 3.0 + 2.0 * n * d * d
    }
    fn bytes(&self) -> f64 {
        let (d, n) = (self.d as f64, self.n as f64);
        4.0 * (d * d + 2.0 * n * d)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let (target, points) = self.inputs()?;
        let (n, tile) = (self.n, self.tile);
        Ok(runner(move || {
            let noisy = crate::gpu::gaussian::GpuNoisyGaussian::factor(gpu, &target, 0.5, tile)?;
            std::hint::black_box(noisy.score_rows(&points, n)?);
            Ok(())
        }))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let (target, points) = self.inputs().ok()?;
        let (n, d) = (self.n, self.d);
        let columns = Mat::from_fn(d, n, |j, i| points[i * d + j]);
        Some(runner(move || {
            let noisy = target.noisy(0.5)?;
            std::hint::black_box(noisy.score_columns(&columns)?);
            Ok(())
        }))
    }
}
