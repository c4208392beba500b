//! A convolution layer's forward + backward through im2col + GEMM (`gpu::conv::im2col`:
//! im2col, three GEMM-family products, layout kernels, col2im as a gather) beside the same GEMMs
//! alone on the same shapes (`bench::workloads::ConvLayerGemms`), at a small U-Net layer that
//! runs on a software adapter (B = 4, 16 → 16 channels, 16×16, 3×3, zero padding); the bench
//! command's `conv_im2col` rows run the U-Net's full layer set. Throughput in FLOPs
//! (`3·2·B·H·W·C_out·C_in·s²`). GPU only: the crate's CPU conv is the naive f64 reference.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::{ConvLayer, ConvLayerGemms};

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let layer = ConvLayer {
        batch: 4,
        in_channels: 16,
        out_channels: 16,
        side: 16,
        kernel: 3,
    };
    let mut group = common::group(c, "conv_im2col", scale);
    common::compare(&mut group, gpu, &layer);
    group.finish();
    let mut group = common::group(c, "conv_im2col_gemm", scale);
    common::compare(&mut group, gpu, &ConvLayerGemms(layer));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
