//! The GEMM workloads: square products (f32, tensor cores) and the experiments' non-square shapes.

use super::{gemm_sizes, random_gpu, random_host, runner, square_gemm, GEMM};
use crate::bench::{Runner, Scale, Workload};
use crate::error::Result;
use crate::gpu::gemm::{run_products, GemmKernel, GpuMat, Product};
use crate::gpu::Gpu;

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
