//! The workloads of `diffusion-theorems bench` and of the criterion benches, each with its FLOP
//! count and minimal bytes (f32 = 4 bytes; a multiply-add counts 2 FLOPs).

use super::{Runner, Scale, Workload};
use crate::diffusion::affine::affine_step;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::adam::AdamConfig;
use crate::gpu::ddim::AffineStep;
use crate::gpu::dense::{DenseConfig, DenseTrainer};
use crate::gpu::empirical::GpuEmpirical;
use crate::gpu::gemm::{product, run_products, GemmKernel, GpuMat, Product};
use crate::gpu::{chunks, gmm, power_features, rowwise, Gpu};
use crate::linalg::Mat;
use crate::numerics::activation::Activation;
use crate::rng::{PhiloxStream, Rng};
use crate::targets::GaussianMixture;
use rayon::prelude::*;

/// Name of the GEMM workload, whose best rate is the FLOP peak.
pub const GEMM: &str = "gemm";

/// Seed of every workload's random inputs (one Philox stream per input).
const SEED: u64 = 0xBE7C_4000;

/// `count` standard normals as f32 from the Philox stream `(SEED, stream)`, in parallel.
pub(crate) fn random_normals(stream: u32, count: usize) -> Vec<f32> {
    let philox = PhiloxStream::new(SEED, stream);
    let mut out = vec![0.0f32; count.next_multiple_of(4)];
    out.par_chunks_mut(4).enumerate().for_each(|(b, chunk)| {
        for (o, z) in chunk.iter_mut().zip(philox.normals(b as u64)) {
            *o = z as f32;
        }
    });
    out.truncate(count);
    out
}

/// A rows×cols resident matrix holding `scale ×` standard normals of `stream`.
fn random_gpu(
    gpu: &Gpu,
    label: &str,
    (rows, cols): (usize, usize),
    stream: u32,
    scale: f32,
) -> Result<GpuMat> {
    let data: Vec<f32> = random_normals(stream, rows * cols)
        .into_iter()
        .map(|z| scale * z)
        .collect();
    let m = GpuMat::poisoned(gpu, label, rows, cols)?;
    if !data.is_empty() {
        gpu.queue()
            .write_buffer(m.buffer(), 0, bytemuck::cast_slice(&data));
    }
    Ok(m)
}

/// The same numbers as [`random_gpu`], as an f64 host matrix.
fn random_host((rows, cols): (usize, usize), stream: u32, scale: f32) -> Mat {
    let data = random_normals(stream, rows * cols);
    Mat::from_fn(rows, cols, |i, j| f64::from(scale * data[i * cols + j]))
}

/// f32 words of the adapter's largest storage binding.
fn binding_words(gpu: &Gpu) -> usize {
    (gpu.max_binding_bytes() / 4) as usize
}

/// Runs `f` on a fresh runner-local closure state; the runner of most workloads.
struct FnRunner<F: FnMut() -> Result<()>>(F);

impl<F: FnMut() -> Result<()>> Runner for FnRunner<F> {
    fn run(&mut self) -> Result<()> {
        (self.0)()
    }
}

fn runner<'g, F: FnMut() -> Result<()> + 'g>(f: F) -> Box<dyn Runner + 'g> {
    Box::new(FnRunner(f))
}

/// The runner of an n×n product `C = A·B` on random inputs, by `kernel` (else the automatic
/// plan's).
fn square_gemm<'g>(
    gpu: &'g Gpu,
    n: usize,
    kernel: Option<GemmKernel>,
) -> Result<Box<dyn Runner + 'g>> {
    let a = random_gpu(gpu, "bench A", (n, n), 1, 1.0)?;
    let b = random_gpu(gpu, "bench B", (n, n), 2, 1.0)?;
    let c = GpuMat::poisoned(gpu, "bench C", n, n)?;
    Ok(runner(move || {
        let mut p = Product::new((&a, false), (&b, false), &c);
        if let Some(kernel) = kernel {
            p = p.with_kernel(kernel);
        }
        run_products(gpu, &[p.prepare(gpu)?], 1)
    }))
}

/// `C = A·B` for n×n matrices on the tensor cores ([`GemmKernel::TensorCoresF16`]: f16
/// operands, f32 accumulation), only on a device where [`Gpu::has_tensor_cores`]; FLOPs and
/// bytes as [`Gemm`] (the operands are read as f32 and rounded in the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmTensorCores {
    /// n.
    pub n: usize,
}

impl Workload for GemmTensorCores {
    fn name(&self) -> &'static str {
        "gemm_f16"
    }
    fn size(&self) -> String {
        format!("n={}", self.n)
    }
    fn flops(&self) -> f64 {
        Gemm { n: self.n }.flops()
    }
    fn bytes(&self) -> f64 {
        Gemm { n: self.n }.bytes()
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        square_gemm(gpu, self.n, Some(GemmKernel::TensorCoresF16))
    }
}

/// The workloads of the tensor cores, for a device where [`Gpu::has_tensor_cores`]: the f16
/// GEMM at the square sizes of [`Gemm`].
pub fn tensor_core_workloads(scale: Scale) -> Vec<Box<dyn Workload>> {
    gemm_sizes(scale)
        .iter()
        .map(|&n| Box::new(GemmTensorCores { n }) as Box<dyn Workload>)
        .collect()
}

/// `C = A·B` for n×n matrices: `2n³` FLOPs, `3·4n²` bytes (read A and B, write C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    /// n.
    pub n: usize,
}

impl Workload for Gemm {
    fn name(&self) -> &'static str {
        GEMM
    }
    fn size(&self) -> String {
        format!("n={}", self.n)
    }
    fn flops(&self) -> f64 {
        2.0 * (self.n as f64).powi(3)
    }
    fn bytes(&self) -> f64 {
        12.0 * (self.n as f64).powi(2)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        square_gemm(gpu, self.n, None)
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let n = self.n;
        let a = random_host((n, n), 1, 1.0);
        let b = random_host((n, n), 2, 1.0);
        Some(runner(move || {
            std::hint::black_box(&a * &b);
            Ok(())
        }))
    }
}

/// `C = op(A)·op(B)` for the non-square shapes the experiments run (m×k times k×n, A or B
/// stored transposed as the callers store them): `2mnk` FLOPs, `4(mk + kn + mn)` bytes. The
/// issue's target is each within 20 % of the square [`Gemm`] rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmShape {
    /// What the product is in the experiments (part of the size key).
    pub role: &'static str,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// A is stored k×m and used transposed.
    pub trans_a: bool,
    /// B is stored n×k and used transposed.
    pub trans_b: bool,
}

impl GemmShape {
    /// The stored shapes of A and B.
    fn stored(&self) -> ((usize, usize), (usize, usize)) {
        let a = if self.trans_a {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        };
        let b = if self.trans_b {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        };
        (a, b)
    }
}

impl Workload for GemmShape {
    fn name(&self) -> &'static str {
        "gemm_shape"
    }
    fn size(&self) -> String {
        let layout = |t: bool| if t { 'T' } else { 'N' };
        format!(
            "{},m={},n={},k={},{}{}",
            self.role,
            self.m,
            self.n,
            self.k,
            layout(self.trans_a),
            layout(self.trans_b)
        )
    }
    fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
    fn bytes(&self) -> f64 {
        let (m, n, k) = (self.m as f64, self.n as f64, self.k as f64);
        4.0 * (m * k + k * n + m * n)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let (a_shape, b_shape) = self.stored();
        let scale = 1.0 / (self.k as f32).sqrt();
        let a = random_gpu(gpu, "bench A", a_shape, 13, 1.0)?;
        let b = random_gpu(gpu, "bench B", b_shape, 14, scale)?;
        let c = GpuMat::poisoned(gpu, "bench C", self.m, self.n)?;
        let (ta, tb) = (self.trans_a, self.trans_b);
        Ok(runner(move || {
            let p = Product::new((&a, ta), (&b, tb), &c).prepare(gpu)?;
            run_products(gpu, &[p], 1)
        }))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let (a_shape, b_shape) = self.stored();
        let a = random_host(a_shape, 13, 1.0);
        let b = random_host(b_shape, 14, 1.0 / (self.k as f32).sqrt());
        let (ta, tb) = (self.trans_a, self.trans_b);
        Some(runner(move || {
            let c = match (ta, tb) {
                (false, false) => &a * &b,
                (false, true) => &a * b.transpose(),
                (true, false) => a.transpose() * &b,
                (true, true) => a.transpose() * b.transpose(),
            };
            std::hint::black_box(c);
            Ok(())
        }))
    }
}

/// The shapes of [`GemmShape`]: the polynomial features `Y·Rᵀ` (M×w, inner d) and the four
/// products of one MLP training step on a batch of B images (`gpu::dense`): the hidden layer
/// `Y·W₁ᵀ` (B×h, inner d), the output `H·W₂ᵀ` (B×d, inner h), the back-propagated `G·W₂`
/// (B×h, inner d), and the weight gradients `Gᵀ·H` (d×h, inner B) and `dZᵀ·Y` (h×d, inner B).
pub fn gemm_shapes(scale: Scale) -> Vec<GemmShape> {
    let (m_features, d, w, batch, h) = match scale {
        Scale::Full => (20_000, 12288, 1024, 128, 1000),
        Scale::Quick => (2000, 768, 128, 32, 100),
    };
    let shape = |role, (m, n, k), (trans_a, trans_b)| GemmShape {
        role,
        m,
        n,
        k,
        trans_a,
        trans_b,
    };
    vec![
        shape("features", (m_features, w, d), (false, true)),
        shape("mlp_hidden", (batch, h, d), (false, true)),
        shape("mlp_output", (batch, d, h), (false, true)),
        shape("mlp_back_hidden", (batch, h, d), (false, false)),
        shape("mlp_grad_w2", (d, h, batch), (true, false)),
        shape("mlp_grad_w1", (h, d, batch), (true, false)),
    ]
}

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

/// DDIM sampling (book eq. 3.2.87, VP cosine schedule) of n samples over L steps with one fixed
/// affine denoiser `f(y) = W y + b`, as a GEMM loop on resident states:
/// `x' = k_ℓ x + (a_ℓ/α_ℓ) x Wᵀ + a_ℓ b` — one GEMM per step with β = k_ℓ, D = x and the
/// broadcast `a_ℓ b` fused as its bias epilogue, all L steps in one submission.
/// FLOPs `L(2nd² + 5nd)`; bytes `4L(d² + 2nd + d)`: W (d² f32, far larger than any cache at
/// d = 12288) is read again every step, the state read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdimAffine {
    /// Samples n.
    pub n: usize,
    /// Steps L.
    pub steps: usize,
    /// Dimension d.
    pub d: usize,
}

impl DdimAffine {
    /// The size, 1000 samples × 50 steps at d = 12288 (quick: 100 × 10 at d = 768).
    pub fn at(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self {
                n: 1000,
                steps: 50,
                d: 12288,
            },
            Scale::Quick => Self {
                n: 100,
                steps: 10,
                d: 768,
            },
        }
    }

    /// The steps ℓ = L, …, 1 on the VP cosine schedule with t_max = 0.99.
    fn coefficients(&self) -> Result<Vec<AffineStep>> {
        let schedule = Schedule::vp_cosine(0.99, self.steps)?;
        Ok((1..=self.steps)
            .rev()
            .map(|l| affine_step(&schedule, l))
            .collect())
    }

    /// W's entries: `0.5/√d ×` standard normals (spectral radius ≈ 1, so the states stay O(1)).
    fn w_scale(&self) -> f32 {
        0.5 / (self.d as f32).sqrt()
    }
}

impl Workload for DdimAffine {
    fn name(&self) -> &'static str {
        "ddim_affine"
    }
    fn size(&self) -> String {
        format!("samples={},steps={},d={}", self.n, self.steps, self.d)
    }
    fn flops(&self) -> f64 {
        let (n, d, l) = (self.n as f64, self.d as f64, self.steps as f64);
        l * (2.0 * n * d * d + 5.0 * n * d)
    }
    fn bytes(&self) -> f64 {
        let (n, d, l) = (self.n as f64, self.d as f64, self.steps as f64);
        4.0 * l * (d * d + 2.0 * n * d + d)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let (n, d) = (self.n, self.d);
        let coefficients = self.coefficients()?;
        let w = random_gpu(gpu, "bench W", (d, d), 9, self.w_scale())?;
        let b = random_host((1, d), 10, 1.0);
        let steps = coefficients
            .iter()
            .map(|&step| {
                let bias = GpuMat::upload(
                    gpu,
                    "bench a_l b",
                    &Mat::from_fn(1, d, |_, j| step.a * b[(0, j)]),
                )?;
                Ok((step, bias))
            })
            .collect::<Result<Vec<_>>>()?;
        let states = [
            random_gpu(gpu, "bench state A", (n, d), 11, 1.0)?,
            GpuMat::poisoned(gpu, "bench state B", n, d)?,
        ];
        Ok(runner(move || {
            let products = steps
                .iter()
                .enumerate()
                .map(|(i, (step, bias))| {
                    let (x, next) = (&states[i % 2], &states[1 - i % 2]);
                    step.product(x, &w, bias, next).prepare(gpu)
                })
                .collect::<Result<Vec<_>>>()?;
            run_products(gpu, &products, 1)
        }))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let coefficients = self.coefficients().ok()?;
        let w = random_host((self.d, self.d), 9, self.w_scale());
        let b = random_host((1, self.d), 10, 1.0);
        let start = random_host((self.n, self.d), 11, 1.0);
        Some(runner(move || {
            let mut x = start.clone();
            for step in &coefficients {
                let xw = &x * w.transpose();
                x = Mat::from_fn(x.nrows(), x.ncols(), |i, j| {
                    step.k * x[(i, j)] + step.a_over_alpha * xw[(i, j)] + step.a * b[(0, j)]
                });
            }
            std::hint::black_box(x);
            Ok(())
        }))
    }
}

/// One Adam step of the bottleneck MLP `x̂ = W₂·ReLU(W₁·y + b₁) + b₂` (d→h→d) on a batch of B
/// noisy images `y = αx + σε`, as [`DenseTrainer::train_batch`] takes it in the `bottleneck`
/// experiment (lr 10⁻⁴): the gather with GPU noise, five GEMMs with fused epilogues, the bias
/// sums and Adam. FLOPs: [`DenseTrainer::flops_per_epoch`] of a one-batch epoch,
/// `10·B·d·h + B(9d + 6h) + 12P` with `P = 2dh + d + h` parameters. Bytes: the weights read by
/// the forward and backward products (`3·2dh`: W₁ once, W₂ twice), the gradients written
/// (P) and Adam's reads of θ, g, m, v and writes of θ, m, v (7P), and the batch's images,
/// noisy inputs, outputs and residuals (`4Bd`) and hidden activations and masks (`3Bh`) — all
/// ×4 bytes. The step ends with the trainer's readback of B squared errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlpStep {
    /// Batch size B.
    pub batch: usize,
    /// Pixels d.
    pub d: usize,
    /// Hidden width h.
    pub h: usize,
}

impl MlpStep {
    /// The size, B = 128, d = 12288, h = 1000 (quick: 32, 768, 100).
    pub fn at(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self {
                batch: 128,
                d: 12288,
                h: 1000,
            },
            Scale::Quick => Self {
                batch: 32,
                d: 768,
                h: 100,
            },
        }
    }

    /// Trainable parameters `P = 2dh + d + h`.
    fn parameters(&self) -> f64 {
        let (d, h) = (self.d as f64, self.h as f64);
        2.0 * d * h + d + h
    }

    /// The trainer's configuration: ReLU, batch B, Adam with the paper's lr 10⁻⁴.
    fn config(&self) -> DenseConfig {
        DenseConfig {
            hidden: self.h,
            activation: Activation::Relu,
            batch: self.batch,
            adam: AdamConfig {
                lr: 1e-4,
                ..AdamConfig::default()
            },
            seed: SEED,
        }
    }
}

/// `α = 0.8, σ = 0.6` of the benchmarked MLP step (a mid-trajectory noise level).
const MLP_ALPHA_SIGMA: (f64, f64) = (0.8, 0.6);

impl Workload for MlpStep {
    fn name(&self) -> &'static str {
        "mlp_step"
    }
    fn size(&self) -> String {
        format!("B={},d={},h={}", self.batch, self.d, self.h)
    }
    fn flops(&self) -> f64 {
        let (b, d, h) = (self.batch as f64, self.d as f64, self.h as f64);
        10.0 * b * d * h + b * (9.0 * d + 6.0 * h) + 12.0 * self.parameters()
    }
    fn bytes(&self) -> f64 {
        let (b, d, h) = (self.batch as f64, self.d as f64, self.h as f64);
        4.0 * (6.0 * d * h + 8.0 * self.parameters() + 4.0 * b * d + 3.0 * b * h)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let data = random_gpu(gpu, "bench MLP images", (self.batch, self.d), 15, 0.5)?;
        let mut trainer = DenseTrainer::new(gpu, &data, self.config())?;
        let (alpha, sigma) = MLP_ALPHA_SIGMA;
        Ok(runner(move || {
            std::hint::black_box(trainer.train_batch(alpha, sigma, 0, 0)?);
            Ok(())
        }))
    }
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        let (b, d, h) = (self.batch, self.d, self.h);
        let (alpha, sigma) = MLP_ALPHA_SIGMA;
        let x = random_host((b, d), 15, 0.5);
        let noise = random_host((b, d), 16, 1.0);
        let y = Mat::from_fn(b, d, |i, j| alpha * x[(i, j)] + sigma * noise[(i, j)]);
        let mut params = [
            random_host((h, d), 17, 1.0 / (d as f32).sqrt()),
            Mat::zeros(1, h),
            random_host((d, h), 18, 1.0 / (h as f32).sqrt()),
            Mat::zeros(1, d),
        ];
        let mut moments: Vec<(Mat, Mat)> = params
            .iter()
            .map(|p| {
                (
                    Mat::zeros(p.nrows(), p.ncols()),
                    Mat::zeros(p.nrows(), p.ncols()),
                )
            })
            .collect();
        let adam = self.config().adam;
        let mut step = 0;
        Some(runner(move || {
            step += 1;
            let [w1, b1, w2, b2] = &params;
            let z = &y * w1.transpose();
            let hidden = Mat::from_fn(b, h, |i, j| (z[(i, j)] + b1[(0, j)]).max(0.0));
            let out = &hidden * w2.transpose();
            let scale = 2.0 / b as f64;
            let g = Mat::from_fn(b, d, |i, j| scale * (out[(i, j)] + b2[(0, j)] - x[(i, j)]));
            let back = &g * w2;
            let dz = Mat::from_fn(b, h, |i, j| {
                if hidden[(i, j)] > 0.0 {
                    back[(i, j)]
                } else {
                    0.0
                }
            });
            let column_sums = |m: &Mat| {
                Mat::from_fn(1, m.ncols(), |_, j| (0..m.nrows()).map(|i| m[(i, j)]).sum())
            };
            let grads = [
                dz.transpose() * &y,
                column_sums(&dz),
                g.transpose() * &hidden,
                column_sums(&g),
            ];
            for ((p, grad), (m, v)) in params.iter_mut().zip(&grads).zip(&mut moments) {
                adam_update(&adam, step, p, grad, m, v);
            }
            Ok(())
        }))
    }
}

/// Adam's update of `p` by `grad` at step t ≥ 1 (Kingma & Ba, bias-corrected), in place.
fn adam_update(adam: &AdamConfig, step: i32, p: &mut Mat, grad: &Mat, m: &mut Mat, v: &mut Mat) {
    let (c1, c2) = (1.0 - adam.beta1.powi(step), 1.0 - adam.beta2.powi(step));
    for j in 0..p.ncols() {
        for i in 0..p.nrows() {
            let g = grad[(i, j)];
            m[(i, j)] = adam.beta1 * m[(i, j)] + (1.0 - adam.beta1) * g;
            v[(i, j)] = adam.beta2 * v[(i, j)] + (1.0 - adam.beta2) * g * g;
            p[(i, j)] -= adam.lr * (m[(i, j)] / c1) / ((v[(i, j)] / c2).sqrt() + adam.eps);
        }
    }
}

/// The bandwidth probe: a vec4 copy of `words` f32 (`gpu::rowwise::copy`), 0 FLOPs,
/// `8·words` bytes (read plus write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProbe {
    /// f32 words copied (a multiple of 4).
    pub words: usize,
}

impl CopyProbe {
    /// 256 MiB (full) or 16 MiB (quick), capped by the storage binding.
    pub fn for_adapter(gpu: &Gpu, scale: Scale) -> Self {
        let wanted = match scale {
            Scale::Full => 64 << 20,
            Scale::Quick => 4 << 20,
        };
        Self {
            words: wanted.min(binding_words(gpu)) / 4 * 4,
        }
    }
}

impl Workload for CopyProbe {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn size(&self) -> String {
        format!("MiB={}", (self.words * 4) >> 20)
    }
    fn flops(&self) -> f64 {
        0.0
    }
    fn bytes(&self) -> f64 {
        8.0 * self.words as f64
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let shape = (self.words / 4, 4);
        let src = random_gpu(gpu, "bench copy source", shape, 12, 1.0)?;
        let dst = GpuMat::poisoned(gpu, "bench copy destination", shape.0, shape.1)?;
        Ok(runner(move || rowwise::copy(gpu, &src, &dst)))
    }
}

/// The GEMM sizes n of [`Gemm`].
pub fn gemm_sizes(scale: Scale) -> &'static [usize] {
    match scale {
        Scale::Full => &[512, 1024, 2048, 4096, 8192],
        Scale::Quick => &[128, 256, 512],
    }
}

/// Every workload of `diffusion-theorems bench` at `scale` (the copy probe runs separately):
/// GEMM n³ and the experiments' non-square shapes, covariance XᵀX, GMM posterior, empirical
/// denoiser, polynomial features, DDIM, one MLP training step. Push new workloads here.
pub fn standard_workloads(scale: Scale) -> Vec<Box<dyn Workload>> {
    let mut w: Vec<Box<dyn Workload>> = gemm_sizes(scale)
        .iter()
        .map(|&n| Box::new(Gemm { n }) as Box<dyn Workload>)
        .collect();
    for shape in gemm_shapes(scale) {
        w.push(Box::new(shape));
    }
    match scale {
        Scale::Full => {
            w.push(Box::new(Covariance { n: 1000, d: 12288 }));
            w.push(Box::new(GmmPosterior {
                batch: 100_000,
                d: 64,
                k: 16,
            }));
            w.push(Box::new(EmpiricalDenoiser {
                b: 256,
                n: 1000,
                d: 12288,
            }));
            w.push(Box::new(PolynomialFeatures {
                m: 20_000,
                d: 12288,
                w: 1024,
                k: 3,
            }));
        }
        Scale::Quick => {
            w.push(Box::new(Covariance { n: 100, d: 768 }));
            w.push(Box::new(GmmPosterior {
                batch: 2000,
                d: 64,
                k: 16,
            }));
            w.push(Box::new(EmpiricalDenoiser {
                b: 32,
                n: 200,
                d: 768,
            }));
            w.push(Box::new(PolynomialFeatures {
                m: 2000,
                d: 768,
                w: 128,
                k: 3,
            }));
        }
    }
    w.push(Box::new(DdimAffine::at(scale)));
    w.push(Box::new(MlpStep::at(scale)));
    w
}
