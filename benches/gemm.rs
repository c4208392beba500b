//! GEMM `C = AB` (n×n): the WGSL kernels (tiled below 64, register-blocked above) against
//! faer's f64 product on the CPU, at the sizes of `diffusion-theorems bench` (quick ones on a
//! software adapter). Throughput in FLOPs (2n³).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::{gemm_sizes, Gemm};

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "gemm", scale);
    for &n in gemm_sizes(scale) {
        common::compare(&mut group, gpu, &Gemm { n });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
