//! GMM posterior (responsibilities, score, posterior mean) for a batch of points: the WGSL kernel
//! against the f64 CPU reference (rayon over points) and the batched f64 closed forms (each
//! component's factor once, points as matrix products). Throughput in points per second.
//! Sizes shrink on a software adapter (llvmpipe/lavapipe) so `cargo bench` finishes there.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diffusion_theorems::gpu::{gmm, Gpu};
use diffusion_theorems::linalg::{self, Mat};
use diffusion_theorems::rng::Rng;
use diffusion_theorems::targets::random_gmm;
use diffusion_theorems::targets::ClosedForm;
use rayon::prelude::*;

fn bench(c: &mut Criterion) {
    let gpu = match Gpu::shared() {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    let software = gpu.backend_name().contains("llvmpipe");
    // The size (batch 1e5, d = 64, K = 16), reduced 100× on a software adapter.
    let (n, d, k) = if software {
        (1_000, 64, 16)
    } else {
        (100_000, 64, 16)
    };
    let mut rng = Rng::new(1, 0);
    let target = random_gmm(&mut rng, d, k).unwrap();
    let points = Mat::from_fn(n, d, |_, _| 2.0 * rng.normal());
    let sigma = 1.0;
    let mut group = c.benchmark_group("gmm_posterior");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.bench_function(format!("gpu/{n}x{d}x{k}"), |b| {
        b.iter(|| gmm::gmm_posterior(gpu, &target, &points, sigma).unwrap())
    });
    group.bench_function(format!("cpu_f64_rayon/{n}x{d}x{k}"), |b| {
        b.iter(|| {
            (0..n)
                .into_par_iter()
                .map(|p| {
                    let y = linalg::row(&points, p);
                    (
                        target.score(&y, sigma).unwrap(),
                        target.posterior_mean(&y, sigma).unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    group.bench_function(format!("cpu_f64_batched/{n}x{d}x{k}"), |b| {
        b.iter(|| {
            (
                target.score_batch(&points, sigma).unwrap(),
                target.posterior_mean_batch(&points, sigma).unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
