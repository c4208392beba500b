//! `eval`-shaped work on a dense Gaussian: factor `Σ + σ²I` and solve for the scores of n
//! points — the f32 tiled Cholesky route on the GPU (`gpu::gaussian`) against the f64 Cholesky
//! route on the CPU (`targets::gaussian::NoisyGaussian`), at the size of `diffusion-theorems
//! bench` (d = 12288, n = 1000; quick on a software adapter). Throughput in FLOPs
//! (`d³/3 + 2nd²`).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_theorems::bench::workloads::GaussianEval;
use diffusion_theorems::bench::Scale;
use diffusion_theorems::gpu::gaussian::DEFAULT_TILE;

fn bench(c: &mut Criterion) {
    let (gpu, scale) = common::gpu();
    let mut group = common::group(c, "gaussian_eval", scale);
    let sizes: &[(usize, usize, usize)] = match scale {
        Scale::Full => &[(3072, 1000, DEFAULT_TILE), (12288, 1000, DEFAULT_TILE)],
        Scale::Quick => &[(768, 100, 256)],
    };
    for &(d, n, tile) in sizes {
        common::compare(&mut group, gpu, &GaussianEval { d, n, tile });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
