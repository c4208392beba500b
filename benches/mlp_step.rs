//! One Adam training step of the bottleneck MLP `x̂ = W₂·ReLU(W₁y + b₁) + b₂` on a batch of
//! noisy images (`gpu::dense::DenseTrainer::train_batch`: GPU noise, five GEMMs with fused
//! epilogues, bias sums, Adam) against the same step in f64 on the CPU (faer products), at the
//! size of `diffusion-theorems bench` (B = 128, d = 12288, h = 1000; quick on a software
//! adapter). Throughput in FLOPs (10Bdh + elementwise and Adam work).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::MlpStep;

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "mlp_step", scale);
    common::compare(&mut group, gpu, &MlpStep::at(scale));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
