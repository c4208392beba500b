//! The sampling and training steps' workloads: affine DDIM and one MLP training step.

use super::{random_gpu, random_host, runner, SEED};
use crate::bench::{Runner, Scale, Workload};
use crate::diffusion::affine::affine_step;
use crate::diffusion::Schedule;
use crate::error::Result;
use crate::gpu::adam::AdamConfig;
use crate::gpu::ddim::AffineStep;
use crate::gpu::dense::{DenseConfig, DenseTrainer};
use crate::gpu::gemm::{run_products, GpuMat};
use crate::gpu::Gpu;
use crate::linalg::Mat;
use crate::numerics::activation::Activation;

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
