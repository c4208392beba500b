//! Denoiser evaluation + Jacobian-vector product (the SURE / Hutchinson workload): the WGSL
//! kernels against their f64 CPU reference (rayon over points), for the tanh MLP and the GMM
//! Bayes denoiser. Throughput in points per second. Sizes shrink on a software adapter.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diffusion_theorems::denoisers::divergence::rademacher_probes;
use diffusion_theorems::denoisers::{Bayes, Mlp};
use diffusion_theorems::gpu::denoiser_jvp::{denoiser_jvp, denoiser_jvp_reference, JvpDenoiser};
use diffusion_theorems::gpu::Gpu;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::{PhiloxStream, Rng};
use diffusion_theorems::targets::random_gmm;

fn bench(c: &mut Criterion) {
    let gpu = match Gpu::shared() {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    let software = gpu.backend_name().contains("llvmpipe");
    let n = if software { 2_000 } else { 200_000 };
    let mut rng = Rng::new(2, 0);
    let mut group = c.benchmark_group("denoiser_jvp");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    let (d, h) = (64, 256);
    let mlp = Mlp::random(&mut rng, d, h).unwrap();
    let bayes = Bayes::new(random_gmm(&mut rng, d, 8).unwrap());
    let points = Mat::from_fn(n, d, |_, _| 2.0 * rng.normal());
    let probes = rademacher_probes(PhiloxStream::new(2, 1), n, d);
    for (name, den) in [
        (format!("mlp/{n}x{d}x{h}"), JvpDenoiser::from(&mlp)),
        (format!("gmm/{n}x{d}x8"), JvpDenoiser::from(&bayes)),
    ] {
        group.bench_function(format!("gpu/{name}"), |b| {
            b.iter(|| denoiser_jvp(gpu, &den, &points, &probes, 1.0).unwrap())
        });
        group.bench_function(format!("cpu_f64_rayon_with_bounds/{name}"), |b| {
            b.iter(|| denoiser_jvp_reference(&den, &points, &probes, 1.0).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
