//! Uncentred covariance `XᵀX` (N samples × d): the GEMM tiled over output row blocks that fit
//! the storage binding, against faer's f64 `XᵀX`, at the size of `diffusion-theorems bench`
//! (N = 1000, d = 12288; quick on a software adapter). Throughput in FLOPs (2Nd²).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::Covariance;
use diffusion_theorems::bench::Scale;

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "covariance", scale);
    let sizes: &[(usize, usize)] = match scale {
        Scale::Full => &[(1000, 3072), (1000, 12288)],
        Scale::Quick => &[(100, 768)],
    };
    for &(n, d) in sizes {
        common::compare(&mut group, gpu, &Covariance { n, d });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
