//! GEMM: `C = AB` (n×n) with the WGSL kernels (the automatic plan of `gpu::gemm`) against faer's f64 product on the CPU, at the
//! sizes of `diffusion-theorems bench` (quick ones on a software adapter), then the non-square
//! shapes of the experiments (polynomial features and the MLP step's products,
//! `bench::workloads::gemm_shapes`). Throughput in FLOPs (2n³, 2mnk).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::{gemm_shapes, gemm_sizes, Gemm};

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "gemm", scale);
    for &n in gemm_sizes(scale) {
        common::compare(&mut group, gpu, &Gemm { n });
    }
    group.finish();
    let mut group = common::group(c, "gemm_shape", scale);
    for shape in gemm_shapes(scale) {
        common::compare(&mut group, gpu, &shape);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
