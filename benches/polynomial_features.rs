//! Random polynomial features `[1 | (c_j (YRᵀ)_ij)^k]`: the projection GEMM plus the power
//! kernel (`gpu::power_features`) against faer's f64 product and rayon powers, at the sizes of
//! `diffusion-theorems bench` (M = 20000, d = 12288, w = 1024, k = 3, and a 10× smaller M;
//! quick on a software adapter). Throughput in FLOPs (2Mdw + (k + 1)Mw).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::PolynomialFeatures;
use diffusion_theorems::bench::Scale;

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "polynomial_features", scale);
    let sizes: &[(usize, usize, usize)] = match scale {
        Scale::Full => &[(2000, 12288, 1024), (20_000, 12288, 1024)],
        Scale::Quick => &[(2000, 768, 128)],
    };
    for &(m, d, w) in sizes {
        common::compare(&mut group, gpu, &PolynomialFeatures { m, d, w, k: 3 });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
