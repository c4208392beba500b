//! The empirical optimal denoiser (book eq. 3.3.3) of B queries against N training images:
//! `gpu::empirical::GpuEmpirical` (GEMM, blocked row softmax, GEMM, all resident) against the
//! f64 CPU path (faer GEMMs, rayon softmax), at the size of `diffusion-theorems bench`
//! (256 × 1000 × 12288; quick on a software adapter). Throughput in FLOPs (4BNd + 6BN).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::EmpiricalDenoiser;
use diffusion_theorems::bench::Scale;

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "empirical_denoiser", scale);
    let w = match scale {
        Scale::Full => EmpiricalDenoiser {
            b: 256,
            n: 1000,
            d: 12288,
        },
        Scale::Quick => EmpiricalDenoiser {
            b: 32,
            n: 200,
            d: 768,
        },
    };
    common::compare(&mut group, gpu, &w);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
