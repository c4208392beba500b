//! The workloads of `diffusion-theorems bench` and of the criterion benches, each with its FLOP
//! count and minimal bytes (f32 = 4 bytes; a multiply-add counts 2 FLOPs).

mod conv;
mod estimators;
mod gemm;
mod steps;

use crate::bench::{Runner, Scale, Workload};
use crate::error::Result;
use crate::gpu::gemm::{run_products, GemmKernel, GpuMat, Product};
use crate::gpu::{rowwise, Gpu};
use crate::linalg::Mat;
use crate::rng::PhiloxStream;

pub use conv::{unet_conv_layers, ConvLayer, ConvLayerGemms, CONV_IM2COL, CONV_IM2COL_GEMM};
pub use estimators::{
    Covariance, EmpiricalDenoiser, GaussianEval, GmmPosterior, PolynomialFeatures,
};
pub use gemm::{gemm_shapes, tensor_core_workloads, Gemm, GemmShape, GemmTensorCores};
use rayon::prelude::*;
pub use steps::{DdimAffine, MlpStep};

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
/// denoiser, polynomial features, the dense Gaussian's `eval` route, DDIM, one MLP training
/// step, the U-Net's conv layers through im2col + GEMM each beside its GEMMs alone. Push new
/// workloads here.
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
            w.push(Box::new(GaussianEval {
                d: 12288,
                n: 1000,
                tile: crate::gpu::gaussian::DEFAULT_TILE,
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
            w.push(Box::new(GaussianEval {
                d: 768,
                n: 100,
                tile: 256,
            }));
        }
    }
    w.push(Box::new(DdimAffine::at(scale)));
    w.push(Box::new(MlpStep::at(scale)));
    for layer in unet_conv_layers(scale) {
        w.push(Box::new(layer));
        w.push(Box::new(ConvLayerGemms(layer)));
    }
    w
}
