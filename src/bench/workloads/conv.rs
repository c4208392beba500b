//! A convolution layer's forward and backward through im2col + GEMM
//! ([`crate::gpu::conv::im2col`]) at the layer shapes of a Levine–Weiss Fig. 1 style U-Net on
//! 64×64×3 images, and the same GEMMs alone: the f32 GEMM rate of the same adapter on the same
//! (m, n, k) shapes, which the conv's rate is compared with (issue 19 item 4's target: ≥ 50 %).

use super::{random_gpu, runner};
use crate::bench::{Runner, Scale, Workload};
use crate::error::Result;
use crate::gpu::conv::im2col::Im2colConv;
use crate::gpu::conv::{ConvShape, Padding};
use crate::gpu::gemm::{run_products, GpuMat, Product};
use crate::gpu::Gpu;

/// Name of [`ConvLayer`].
pub const CONV_IM2COL: &str = "conv_im2col";

/// Name of [`ConvLayerGemms`]: [`CONV_IM2COL`] + `"_gemm"`, the twin whose rate the bench
/// report sets beside the conv's ([`crate::bench::Measurement::of_gemm_twin`]).
pub const CONV_IM2COL_GEMM: &str = "conv_im2col_gemm";

/// One 3×3 (odd `kernel`) stride-1 zero-padded convolution layer on a batch of square images,
/// forward `Y = conv(X, W)` then backward (dW and dX from a given dY), by [`Im2colConv`] on
/// resident random inputs, the backward recomputing im2col as a training step would without
/// storing the column matrix. FLOPs: `3·2·B·H·W·C_out·C_in·s²` (the forward product and the two
/// backward ones; the layout kernels' and col2im's additions are not counted). Bytes, the
/// minimum a layer must move: `4(3|X| + 3|W| + 2|Y|)` (forward reads X, W and writes Y;
/// backward reads X, W, dY and writes dX, dW).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvLayer {
    /// Images B.
    pub batch: usize,
    /// Input channels C_in.
    pub in_channels: usize,
    /// Output channels C_out.
    pub out_channels: usize,
    /// Image side H = W.
    pub side: usize,
    /// Kernel side s (odd).
    pub kernel: usize,
}

impl ConvLayer {
    /// The layer as a [`ConvShape`] (zero padding).
    pub fn shape(&self) -> ConvShape {
        ConvShape {
            batch: self.batch,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            height: self.side,
            width: self.side,
            kernel: self.kernel,
            padding: Padding::Zero,
        }
    }

    /// FLOPs of one of the three products, `2·B·H·W·C_out·C_in·s²`.
    pub fn flops_per_product(&self) -> f64 {
        2.0 * (self.batch * self.side * self.side) as f64
            * (self.out_channels * self.in_channels * self.kernel * self.kernel) as f64
    }
}

/// The conv layers of the bench: a U-Net in the style of Levine–Weiss Fig. 1 on 64×64×3 images,
/// B = 128, 3×3 kernels — encoder `3→64` and `64→64` at 64×64, `64→128` and `128→128` at 32×32,
/// `128→256` at 16×16, the bottleneck `256→256` at 8×8 (the decoder's layers repeat these
/// shapes with doubled input channels). Quick: B = 8, channels and sides halved (the bottleneck
/// at 4×4), so that it runs on a software adapter.
pub fn unet_conv_layers(scale: Scale) -> Vec<ConvLayer> {
    let (batch, width, side) = match scale {
        Scale::Full => (128, 64, 64),
        Scale::Quick => (8, 32, 32),
    };
    let layer = |in_channels, out_channels, side| ConvLayer {
        batch,
        in_channels,
        out_channels,
        side,
        kernel: 3,
    };
    vec![
        layer(3, width, side),
        layer(width, width, side),
        layer(width, 2 * width, side / 2),
        layer(2 * width, 2 * width, side / 2),
        layer(2 * width, 4 * width, side / 4),
        layer(4 * width, 4 * width, side / 8),
    ]
}

fn size_key(l: &ConvLayer) -> String {
    format!(
        "B={},{}->{},{}x{},k={}",
        l.batch, l.in_channels, l.out_channels, l.side, l.side, l.kernel
    )
}

impl Workload for ConvLayer {
    fn name(&self) -> &'static str {
        CONV_IM2COL
    }
    fn size(&self) -> String {
        size_key(self)
    }
    fn flops(&self) -> f64 {
        3.0 * self.flops_per_product()
    }
    fn bytes(&self) -> f64 {
        let s = self.shape();
        4.0 * (3.0 * s.input_len() as f64
            + 3.0 * s.weight_len() as f64
            + 2.0 * s.output_len() as f64)
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let s = self.shape();
        let plane = s.height * s.width;
        let taps = s.in_channels * s.kernel * s.kernel;
        let plan = Im2colConv::new(gpu, &s)?;
        let x = random_gpu(
            gpu,
            "bench conv X",
            (s.batch, s.in_channels * plane),
            15,
            1.0,
        )?;
        let w_scale = 1.0 / (taps as f32).sqrt();
        let w = random_gpu(gpu, "bench conv W", (s.out_channels, taps), 16, w_scale)?;
        let dy = random_gpu(
            gpu,
            "bench conv dY",
            (s.batch, s.out_channels * plane),
            17,
            1.0,
        )?;
        let y = GpuMat::poisoned(gpu, "bench conv Y", s.batch, s.out_channels * plane)?;
        let dx = GpuMat::poisoned(gpu, "bench conv dX", s.batch, s.in_channels * plane)?;
        let dw = GpuMat::poisoned(gpu, "bench conv dW", s.out_channels, taps)?;
        Ok(runner(move || {
            plan.forward(gpu, &x, &w, &y)?;
            plan.backward(gpu, &x, &w, &dy, Some(&dx), Some(&dw))
        }))
    }
}

/// The GEMMs of [`ConvLayer`] alone, on random resident operands of the same shapes, chunks and
/// plans, in the same two submissions: per chunk of `b_c` images (P = b_c·H·W rows, K = C_in·s²)
/// the forward `Colᵀ·Wᵀ` (P × C_out, inner K), then the weight gradient `(dYᵀ)ᵀ·Colᵀ` (C_out × K,
/// inner P, chained over the chunks with β = 1) and the input gradient `dYᵀ·W` (P × K, inner
/// C_out). The same FLOPs as [`ConvLayer`], so the ratio of their rates is the share of the
/// conv's time spent in its GEMMs. Bytes: each product's `4(mk + kn + mn)` (and D's mn where
/// chained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvLayerGemms(pub ConvLayer);

impl Workload for ConvLayerGemms {
    fn name(&self) -> &'static str {
        CONV_IM2COL_GEMM
    }
    fn size(&self) -> String {
        size_key(&self.0)
    }
    fn flops(&self) -> f64 {
        self.0.flops()
    }
    fn bytes(&self) -> f64 {
        let s = self.0.shape();
        let (plane, taps) = (s.height * s.width, s.in_channels * s.kernel * s.kernel);
        let p = (s.batch * plane) as f64;
        let (k, o) = (taps as f64, s.out_channels as f64);
        // forward (P×K)(K×O) → P×O; dW (O×P)(P×K) → O×K (+ D); dCol (P×O)(O×K) → P×K
        4.0 * ((p * k + k * o + p * o) + (o * p + p * k + 2.0 * o * k) + (p * o + o * k + p * k))
    }
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>> {
        let s = self.0.shape();
        let plan = Im2colConv::new(gpu, &s)?;
        let taps = s.in_channels * s.kernel * s.kernel;
        let pixels = plan.images_per_chunk() * s.height * s.width;
        let col = random_gpu(gpu, "bench Colᵀ", (pixels, taps), 18, 1.0)?;
        let rows = random_gpu(gpu, "bench Yᵀ", (pixels, s.out_channels), 19, 1.0)?;
        // dColᵀ in its own buffer (the conv writes it over Colᵀ): fed back into the next run's
        // forward, the values would shrink or grow geometrically into subnormals or overflow.
        let dcol = GpuMat::poisoned(gpu, "bench dColᵀ", pixels, taps)?;
        let w_scale = 1.0 / (taps as f32).sqrt();
        let w = random_gpu(gpu, "bench conv W", (s.out_channels, taps), 16, w_scale)?;
        let dw = [
            GpuMat::poisoned(gpu, "bench dW", s.out_channels, taps)?,
            GpuMat::poisoned(gpu, "bench dW partial", s.out_channels, taps)?,
        ];
        let chunks: Vec<(GpuMat, GpuMat, GpuMat)> = plan
            .chunks()
            .into_iter()
            .map(|(_, images)| {
                let p = images * s.height * s.width;
                Ok((
                    col.leading_rows(p)?,
                    rows.leading_rows(p)?,
                    dcol.leading_rows(p)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(runner(move || {
            let forward = chunks
                .iter()
                .map(|(c, r, _)| Product::new((c, false), (&w, true), r).prepare(gpu))
                .collect::<Result<Vec<_>>>()?;
            run_products(gpu, &forward, 1)?;
            let last = chunks.len() - 1;
            let mut backward = Vec::new();
            for (l, (c, r, d)) in chunks.iter().enumerate() {
                let p = Product::new((r, true), (c, false), &dw[(last - l) % 2]);
                let p = if l == 0 {
                    p
                } else {
                    p.plus(1.0, &dw[(last - l + 1) % 2])
                };
                backward.push(p.prepare(gpu)?);
                backward.push(Product::new((r, false), (&w, false), d).prepare(gpu)?);
            }
            run_products(gpu, &backward, 1)
        }))
    }
}
