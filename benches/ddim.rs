//! DDIM sampling with an affine denoiser `f(y) = Wy + b`: n samples × L steps, one GEMM per step
//! with the DDIM update and the bias fused into its epilogue, all steps in one submission,
//! against the f64 CPU loop (faer products), at the size of `diffusion-theorems bench`
//! (1000 samples × 50 steps, d = 12288; quick on a software adapter). Throughput in FLOPs
//! (L(2nd² + 5nd)).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::DdimAffine;

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "ddim_affine", scale);
    common::compare(&mut group, gpu, &DdimAffine::at(scale));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
