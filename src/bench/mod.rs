//! `diffusion-theorems bench`: the GPU workloads of the paper-scale runs, timed on random
//! inputs (never zeros) and compared with peaks the command measures itself.
//!
//! Each [`Workload`] states its floating-point operation count F and the minimal bytes B it
//! must move between device memory and the cores (inputs read once, outputs written once,
//! intermediates that fit nowhere else counted where stated). A run of time t reports
//! `F/t` (TFLOP/s) and `B/t` (GB/s), and the fractions of the two measured peaks:
//! * the best GEMM rate among the `gemm` workloads (`C = AB`, n³), and
//! * a streaming vec4 copy kernel (`gpu::rowwise::copy`), counting bytes read plus written.
//!
//! For a workload the roofline floor is `max(F/peak_flops, B/peak_bandwidth)`; the larger
//! fraction says how close it is to the bound that limits it.
//!
//! Timing ([`measure`]): `warmup` untimed runs, then `runs` runs each measured with
//! [`Gpu::time`] — GPU timestamp queries summed over the run's submissions where the adapter
//! has `TIMESTAMP_QUERY`, else the wall clock after a full device poll — and the median is
//! reported (the wall-clock median too). Inputs are uploaded before timing; the GPU workloads
//! keep them resident.
//!
//! Sizes: [`Scale::Full`] are the sizes; [`Scale::Quick`] (chosen by `--quick` or a
//! software adapter, `DeviceType::Cpu`, such as llvmpipe) shrinks every size so that the whole
//! command finishes in well under a minute on two CPU cores.
//!
//! **Adding a workload** (e.g. an MLP training step): implement [`Workload`] — name, size,
//! FLOPs, bytes, and a [`Runner`] that does one run with resident inputs — and push it in
//! [`standard_workloads`]; the table, the JSON and the peak fractions follow. Give it the same
//! `name`/`size` in `benches/pytorch_reference.py` for side-by-side ratios.

pub mod workloads;

use crate::error::{Error, Result};
use crate::gpu::{Clock, Gpu, Timing};
use crate::stats::nearest::median;
use serde::Serialize;
use std::time::Duration;
pub use workloads::standard_workloads;

/// How large the workloads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scale {
    /// The sizes (CelebA scale: d = 12288, N = 1000 images, GEMMs up to 8192³).
    Full,
    /// Every size shrunk so the command finishes in < 1 min on a software adapter.
    Quick,
}

impl Scale {
    /// [`Scale::Quick`] when asked for or when the adapter is a software one
    /// (`DeviceType::Cpu`), else [`Scale::Full`].
    pub fn for_adapter(gpu: &Gpu, quick: bool) -> Self {
        if quick || gpu.adapter_info().device_type == wgpu::DeviceType::Cpu {
            Scale::Quick
        } else {
            Scale::Full
        }
    }
}

/// One run of a workload with its inputs already in place; `run` returns after the work has
/// completed (the GPU wrappers wait for their submissions).
pub trait Runner {
    /// Does the work once.
    fn run(&mut self) -> Result<()>;
}

/// A benchmark workload: what it computes, how much arithmetic and memory traffic that is,
/// and how to set it up on the GPU (and on the CPU where the crate has a CPU path).
pub trait Workload {
    /// Family name, shared with `benches/pytorch_reference.py` (e.g. `"gemm"`).
    fn name(&self) -> &'static str;
    /// The size, e.g. `"n=4096"` (with the name, the key of a result).
    fn size(&self) -> String;
    /// Floating-point operations of one run (a multiply-add counts 2).
    fn flops(&self) -> f64;
    /// Minimal bytes one run moves between device memory and the cores.
    fn bytes(&self) -> f64;
    /// Allocates and uploads random inputs on `gpu`; the runner does one run per call.
    fn gpu<'g>(&self, gpu: &'g Gpu) -> Result<Box<dyn Runner + 'g>>;
    /// The CPU path of the same computation (f64, faer/rayon), where the crate has one.
    fn cpu(&self) -> Option<Box<dyn Runner>> {
        None
    }
}

/// Settings of a bench run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Workload sizes.
    pub scale: Scale,
    /// Untimed runs before timing (pipelines compiled, caches warm).
    pub warmup: usize,
    /// Timed runs; the median is reported (≥ 1).
    pub runs: usize,
    /// Only workloads whose `name/size` contains this (the copy peak always runs).
    pub filter: Option<String>,
}

/// The median of the timed runs of one workload, with its rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// Workload family.
    pub name: String,
    /// Workload size.
    pub size: String,
    /// FLOPs of one run.
    pub flops: f64,
    /// Minimal bytes of one run.
    pub bytes: f64,
    /// Median time of a run in seconds (GPU timestamps or wall clock: see `clock`).
    pub seconds: f64,
    /// Median wall-clock time of a run in seconds, after a full device poll.
    pub wall_seconds: f64,
    /// Fastest run in seconds (same clock as `seconds`).
    pub min_seconds: f64,
    /// Timed runs.
    pub runs: usize,
    /// The clock of `seconds`.
    pub clock: Clock,
    /// `flops / seconds / 10¹²`.
    pub tflops: f64,
    /// `bytes / seconds / 10⁹`.
    pub gbs: f64,
    /// `tflops` / the best GEMM rate measured (none when no GEMM ran).
    pub flop_fraction: Option<f64>,
    /// `gbs` / the copy kernel's bandwidth.
    pub bandwidth_fraction: Option<f64>,
    /// `tflops` / the rate of this workload's GEMM twin — the measurement named `<name>_gemm`
    /// with the same size, doing the same FLOPs as GEMMs alone on the same shapes (e.g.
    /// [`workloads::CONV_IM2COL_GEMM`]); none when no twin ran.
    pub of_gemm_twin: Option<f64>,
    /// Why the workload could not run (then the numbers are zero).
    pub error: Option<String>,
}

/// The peaks the command measured on this adapter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peaks {
    /// Streaming copy bandwidth, bytes read plus written, GB/s.
    pub copy_gbs: f64,
    /// Best GEMM rate among the `gemm` workloads, TFLOP/s (0 when none ran).
    pub gemm_tflops: f64,
    /// The size of the GEMM that reached it.
    pub gemm_size: Option<String>,
}

/// Everything `diffusion-theorems bench` prints, as written by `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Crate version.
    pub version: &'static str,
    /// `"<adapter> (<backend>)"`.
    pub adapter: String,
    /// The adapter's device type (`Cpu` for a software rasteriser).
    pub device_type: String,
    /// Whether the device runs the tensor-core GEMM (`gemm_f16` workloads, added by the CLI).
    pub tensor_cores: bool,
    /// The clock used for `seconds`.
    pub clock: Clock,
    /// Workload sizes.
    pub scale: Scale,
    /// Untimed runs per workload.
    pub warmup: usize,
    /// Timed runs per workload.
    pub runs: usize,
    /// The measured peaks.
    pub peaks: Peaks,
    /// One entry per workload, the copy probe first.
    pub results: Vec<Measurement>,
}

/// Runs `workload` `warmup` times untimed and `runs` times timed by [`Gpu::time`]; the median
/// and the rates (fractions of peaks are filled in by [`run`]).
pub fn measure(
    gpu: &Gpu,
    workload: &dyn Workload,
    warmup: usize,
    runs: usize,
) -> Result<Measurement> {
    if runs == 0 {
        return Err(Error::InvalidArgument {
            what: "timed runs".into(),
            reason: "need at least 1, got 0".into(),
        });
    }
    let mut runner = workload.gpu(gpu)?;
    for _ in 0..warmup {
        runner.run()?;
    }
    let timings = (0..runs)
        .map(|_| gpu.time(|| runner.run()).map(|((), t)| t))
        .collect::<Result<Vec<Timing>>>()?;
    let secs: Vec<f64> = timings.iter().map(|t| t.seconds).collect();
    let wall: Vec<f64> = timings.iter().map(|t| t.wall_seconds).collect();
    let min_seconds = secs.iter().cloned().fold(f64::INFINITY, f64::min);
    let seconds = median(&secs);
    let (flops, bytes) = (workload.flops(), workload.bytes());
    Ok(Measurement {
        name: workload.name().into(),
        size: workload.size(),
        flops,
        bytes,
        seconds,
        wall_seconds: median(&wall),
        min_seconds,
        runs,
        clock: timings[0].clock,
        tflops: flops / seconds / 1e12,
        gbs: bytes / seconds / 1e9,
        flop_fraction: None,
        bandwidth_fraction: None,
        of_gemm_twin: None,
        error: None,
    })
}

/// The time of `iters` runs summed (GPU timestamps where available, else wall clock), for
/// criterion's `iter_custom`: the clock stops only after each run has completed on the device.
pub fn timed_runs(gpu: &Gpu, runner: &mut dyn Runner, iters: u64) -> Result<Duration> {
    let mut total = 0.0;
    for _ in 0..iters {
        total += gpu.time(|| runner.run())?.1.seconds;
    }
    Ok(Duration::from_secs_f64(total))
}

/// A row for a workload that failed (e.g. a buffer over the adapter's limits).
fn failed(workload: &dyn Workload, clock: Clock, error: &Error) -> Measurement {
    Measurement {
        name: workload.name().into(),
        size: workload.size(),
        flops: workload.flops(),
        bytes: workload.bytes(),
        seconds: 0.0,
        wall_seconds: 0.0,
        min_seconds: 0.0,
        runs: 0,
        clock,
        tflops: 0.0,
        gbs: 0.0,
        flop_fraction: None,
        bandwidth_fraction: None,
        of_gemm_twin: None,
        error: Some(error.to_string()),
    }
}

/// Measures the copy peak, then every workload of `workloads` (those matching the filter; a
/// workload that fails is reported with its error, the others still run), then fills in the
/// fractions of the peaks.
pub fn run(gpu: &Gpu, settings: &Settings, workloads: &[Box<dyn Workload>]) -> Result<BenchReport> {
    let clock = if gpu.has_timestamps() {
        Clock::Timestamps
    } else {
        Clock::WallClock
    };
    let copy = workloads::CopyProbe::for_adapter(gpu, settings.scale);
    let peak_copy = measure(gpu, &copy, settings.warmup, settings.runs)?;
    let mut results = vec![peak_copy];
    for w in workloads {
        let key = format!("{}/{}", w.name(), w.size());
        if settings
            .filter
            .as_ref()
            .is_some_and(|f| !key.contains(f.as_str()))
        {
            continue;
        }
        let m = measure(gpu, w.as_ref(), settings.warmup, settings.runs)
            .unwrap_or_else(|e| failed(w.as_ref(), clock, &e));
        results.push(m);
    }
    let copy_gbs = results[0].gbs;
    let best_gemm = results
        .iter()
        .filter(|m| m.name == workloads::GEMM && m.error.is_none())
        .max_by(|a, b| a.tflops.total_cmp(&b.tflops));
    let peaks = Peaks {
        copy_gbs,
        gemm_tflops: best_gemm.map_or(0.0, |m| m.tflops),
        gemm_size: best_gemm.map(|m| m.size.clone()),
    };
    for m in results.iter_mut().filter(|m| m.error.is_none()) {
        m.flop_fraction =
            (peaks.gemm_tflops > 0.0 && m.flops > 0.0).then(|| m.tflops / peaks.gemm_tflops);
        m.bandwidth_fraction = (copy_gbs > 0.0).then(|| m.gbs / copy_gbs);
    }
    let twins: Vec<(String, String, f64)> = results
        .iter()
        .filter(|m| m.error.is_none() && m.tflops > 0.0)
        .map(|m| (m.name.clone(), m.size.clone(), m.tflops))
        .collect();
    for m in results.iter_mut().filter(|m| m.error.is_none()) {
        let twin = format!("{}_gemm", m.name);
        m.of_gemm_twin = twins
            .iter()
            .find(|(name, size, _)| *name == twin && *size == m.size)
            .map(|(_, _, tflops)| m.tflops / tflops);
    }
    Ok(BenchReport {
        version: env!("CARGO_PKG_VERSION"),
        adapter: gpu.backend_name(),
        device_type: format!("{:?}", gpu.adapter_info().device_type),
        tensor_cores: gpu.has_tensor_cores(),
        clock,
        scale: settings.scale,
        warmup: settings.warmup,
        runs: settings.runs,
        peaks,
        results,
    })
}

fn percent(f: Option<f64>) -> String {
    f.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v))
}

/// The report as a text table: one row per workload with time (the report's clock) and wall
/// time in ms, GFLOP, TFLOP/s, GB/s and the fractions of the measured peaks.
pub fn table(report: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "adapter: {} [{}], tensor cores: {}, clock: {:?}, scale: {:?}, median of {} runs after {} \
         warm-up",
        report.adapter,
        report.device_type,
        if report.tensor_cores { "yes" } else { "no" },
        report.clock,
        report.scale,
        report.runs,
        report.warmup
    );
    let _ = writeln!(
        s,
        "peaks: copy {:.1} GB/s (read + write), GEMM {:.3} TFLOP/s{}",
        report.peaks.copy_gbs,
        report.peaks.gemm_tflops,
        report
            .peaks
            .gemm_size
            .as_ref()
            .map_or_else(String::new, |z| format!(" ({z})"))
    );
    let _ = writeln!(
        s,
        "{:<20} {:<40} {:>11} {:>11} {:>10} {:>9} {:>9} {:>8} {:>8}",
        "workload", "size", "time ms", "wall ms", "GFLOP", "TFLOP/s", "GB/s", "%FLOP", "%BW"
    );
    for m in &report.results {
        match &m.error {
            Some(e) => {
                let _ = writeln!(s, "{:<20} {:<40} error: {e}", m.name, m.size);
            }
            None => {
                let _ = writeln!(
                    s,
                    "{:<20} {:<40} {:>11.3} {:>11.3} {:>10.3} {:>9.4} {:>9.2} {:>8} {:>8}",
                    m.name,
                    m.size,
                    m.seconds * 1e3,
                    m.wall_seconds * 1e3,
                    m.flops / 1e9,
                    m.tflops,
                    m.gbs,
                    percent(m.flop_fraction),
                    percent(m.bandwidth_fraction)
                );
            }
        }
    }
    for m in report.results.iter().filter(|m| m.of_gemm_twin.is_some()) {
        let _ = writeln!(
            s,
            "{}/{}: {} of the f32 GEMM rate on the same shapes ({}_gemm)",
            m.name,
            m.size,
            percent(m.of_gemm_twin),
            m.name
        );
    }
    s
}
