//! `eval`-shaped work: the closed forms of one full-covariance Gaussian (0.5·I plus a rank-5
//! term, σ = 0.5) at many points, per point (one factorisation per point, rayon over points)
//! against batched (`*_batch`: one factorisation per σ, points as matrix products). The sizes of
//! the closed-forms-at-scale issue: d = 200 with 2000 points and d = 1000 with 1000 points (per
//! point only at d = 200).
//! `benches/numpy_eval_reference.py` times the same work (through the command line) in NumPy.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diffusion_theorems::linalg::{self, Mat};
use diffusion_theorems::rng::Rng;
use diffusion_theorems::targets::{ClosedForm, GaussianMixture};
use rayon::prelude::*;

fn gaussian(d: usize, rng: &mut Rng) -> GaussianMixture {
    let v = Mat::from_fn(d, 5, |_, _| 3.0 * rng.normal() / (d as f64).sqrt());
    let low_rank = &v * v.transpose();
    let cov = Mat::from_fn(d, d, |i, j| {
        low_rank[(i, j)] + if i == j { 0.5 } else { 0.0 }
    });
    let mean: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    GaussianMixture::new(&[1.0], &[mean], &[cov]).unwrap()
}

fn bench(c: &mut Criterion) {
    let sigma = 0.5;
    let mut group = c.benchmark_group("closed_forms");
    group.sample_size(10);
    for (d, n) in [(200, 2000), (1000, 1000)] {
        let mut rng = Rng::new(d as u64, 0);
        let target = gaussian(d, &mut rng);
        let points = Mat::from_fn(n, d, |_, _| 1.5 * rng.normal());
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("posterior_mean/batched/d{d}_n{n}"), |b| {
            b.iter(|| target.posterior_mean_batch(&points, sigma).unwrap())
        });
        group.bench_function(format!("score/batched/d{d}_n{n}"), |b| {
            b.iter(|| target.score_batch(&points, sigma).unwrap())
        });
        group.bench_function(format!("log_density/batched/d{d}_n{n}"), |b| {
            b.iter(|| target.log_density_batch(&points, sigma).unwrap())
        });
        if d > 200 {
            continue; // per point, d = 1000 is over a minute an iteration (the 67 s)
        }
        group.bench_function(format!("posterior_mean/per_point/d{d}_n{n}"), |b| {
            b.iter(|| {
                (0..n)
                    .into_par_iter()
                    .map(|p| {
                        target
                            .posterior_mean(&linalg::row(&points, p), sigma)
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
