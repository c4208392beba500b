//! Shared by the criterion benches that reuse the workloads of `diffusion_theorems::bench`:
//! one GPU function and, where affordable, one CPU function per workload, with the FLOP
//! count as `Throughput::Elements` (criterion's "elem/s" is FLOP/s).

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use diffusion_theorems::bench::{self, Scale, Workload};
use diffusion_theorems::gpu::Gpu;
use std::time::Duration;

/// The CPU path runs only for workloads of at most this many FLOPs (≈ 0.1–1 s per iteration
/// in f64 on a few cores); larger ones are GPU-only.
pub const CPU_FLOP_LIMIT: f64 = 2e10;

/// The shared GPU context and the workload scale for it (quick on a software adapter).
pub fn gpu() -> (&'static Gpu, Scale) {
    let gpu = match Gpu::shared() {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    (gpu, Scale::for_adapter(gpu, false))
}

/// A benchmark group with few samples and, on a software adapter, short warm-up and
/// measurement times so that `cargo bench` finishes on llvmpipe.
pub fn group<'c>(c: &'c mut Criterion, name: &str, scale: Scale) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    if scale == Scale::Quick {
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
    }
    group
}

/// `gpu/<size>` (timed by `bench::timed_runs`: GPU timestamps, or the wall clock after a full
/// poll) and `cpu_f64/<size>` (criterion's wall clock) for one workload.
pub fn compare(group: &mut BenchmarkGroup<WallTime>, gpu: &Gpu, workload: &dyn Workload) {
    group.throughput(Throughput::Elements(workload.flops() as u64));
    let mut runner = workload.gpu(gpu).unwrap();
    runner.run().unwrap();
    group.bench_function(format!("gpu/{}", workload.size()), |b| {
        b.iter_custom(|iters| bench::timed_runs(gpu, runner.as_mut(), iters).unwrap())
    });
    drop(runner);
    if workload.flops() <= CPU_FLOP_LIMIT {
        if let Some(mut cpu) = workload.cpu() {
            group.bench_function(format!("cpu_f64/{}", workload.size()), |b| {
                b.iter(|| cpu.run().unwrap())
            });
        }
    }
}
