//! Shared proptest strategies and configuration for the theorem tests (named ranges, fixed seed).
#![allow(dead_code)]

use diffusion_theorems::denoisers::bottleneck::{Activation, Architecture, SigmaInput};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::targets::{gmm_from_draws, GaussianMixture};
use diffusion_theorems::theorems::point_near_component;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// Dimensions of random targets (issue: d 1–16).
pub const DIMS: std::ops::RangeInclusive<usize> = 1..=16;
/// Mixture sizes (K 1–6).
pub const COMPONENTS: std::ops::RangeInclusive<usize> = 1..=6;
/// log10 σ (σ from 1e-2 to 10).
pub const LOG10_SIGMA: std::ops::Range<f64> = -2.0..1.0;
/// Means lie in this box.
pub const MEAN_RANGE: std::ops::Range<f64> = -3.0..3.0;
/// How far a query point lies from its mode, in units of (√λ_max + σ): near (0) to far (6).
pub const REACH: std::ops::Range<f64> = 0.0..6.0;

/// Fixed-seed configuration: `cases` by default, `PROPTEST_CASES` overrides; shrunk failures
/// are saved next to the test source (`tests/<file>.regressions`) and replayed forever — except
/// under `NO_REGRESSION_FILES=1` (the mutation runs, where a failure is the planted bug's and
/// must not be replayed against the next mutant).
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let persist = std::env::var("NO_REGRESSION_FILES").map_or(true, |v| v != "1");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x00D1_FF05),
        failure_persistence: persist
            .then(|| Box::new(FileFailurePersistence::WithSource("regressions")) as _),
        ..Config::default()
    }
}

/// One case of a noisy-density claim: a target, a noise level and a query point.
#[derive(Debug, Clone)]
pub struct Case {
    pub target: GaussianMixture,
    pub sigma: f64,
    pub y: Vec<f64>,
}

/// A random GMM with d in `dims`, K in `components`: weights ∝ [0.1, 1), means in [−3, 3]ᵈ,
/// covariances `F Fᵀ` with F the first r columns of a d×d matrix of entries in [−1, 1] and
/// r ∈ 0..=d (so point masses, singular and full covariances all occur).
pub fn gmm(
    dims: std::ops::RangeInclusive<usize>,
    components: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = GaussianMixture> {
    (dims, components).prop_flat_map(|(d, k)| {
        (
            proptest::collection::vec(0.1f64..1.0, k),
            proptest::collection::vec(proptest::collection::vec(MEAN_RANGE, d), k),
            proptest::collection::vec((0..=d, proptest::collection::vec(-1.0f64..1.0, d * d)), k),
        )
            .prop_map(move |(raw, means, factors)| {
                let factors: Vec<Mat> = factors
                    .iter()
                    .map(|(r, entries)| Mat::from_fn(d, *r, |i, j| entries[i * d + j]))
                    .collect();
                gmm_from_draws(&raw, &means, &factors).expect("valid by construction")
            })
    })
}

/// A case: a random GMM, σ log-uniform in [1e-2, 10], and y placed `reach·(√λ_max + σ)` from a
/// random component's mean in a random direction (near and far points).
pub fn case(
    dims: std::ops::RangeInclusive<usize>,
    components: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Case> {
    gmm(dims, components).prop_flat_map(|target| {
        let d = target.components()[0].mean.len();
        let k = target.components().len();
        (
            Just(target),
            LOG10_SIGMA,
            0..k,
            proptest::collection::vec(-1.0f64..1.0, d),
            REACH,
        )
            .prop_map(|(target, log_sigma, comp, dir, reach)| {
                let sigma = 10f64.powf(log_sigma);
                let y = point_near_component(&target.components()[comp], sigma, reach, &dir);
                Case { target, sigma, y }
            })
    })
}

/// This test's GPU context; a missing adapter fails the test with the one-line install hint.
pub fn gpu() -> &'static diffusion_theorems::gpu::Gpu {
    match gpu_context() {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// The most GPU contexts the tests open: one per test thread up to this many.
pub const MAX_GPU_CONTEXTS: usize = 4;

/// This test's GPU context, or why there is none. The tests share a pool of contexts, one per
/// test thread (`RUST_TEST_THREADS`, else the number of cores, at most [`MAX_GPU_CONTEXTS`]):
/// each test thread takes the context the fewest running tests hold, on its first call, and
/// gives it back when the test's thread ends. A context serializes its callers ([`Gpu::turn`]),
/// so with one shared context a test waiting for the GPU left its core idle while another
/// test's dispatch ran; with one context per test thread, two tests' kernels run side by side
/// (on a software adapter, each on its own core). The results do not depend on the context: the
/// same kernels run on the same adapter.
///
/// [`Gpu::turn`]: diffusion_theorems::gpu::Gpu::turn
pub fn gpu_context() -> Result<&'static diffusion_theorems::gpu::Gpu, diffusion_theorems::Error> {
    use diffusion_theorems::gpu::Gpu;
    use std::sync::{Mutex, OnceLock};
    type Context = OnceLock<Result<Gpu, diffusion_theorems::Error>>;
    static CONTEXTS: OnceLock<Vec<Context>> = OnceLock::new();
    // how many running test threads hold each context
    static HOLDERS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    /// A test thread's hold on context `index`, released when the thread ends.
    struct Lease {
        index: usize,
    }
    impl Drop for Lease {
        fn drop(&mut self) {
            let mut holders = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
            holders[self.index] -= 1;
        }
    }
    thread_local! {
        static LEASE: Lease = {
            let count = std::env::var("RUST_TEST_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .clamp(1, MAX_GPU_CONTEXTS);
            let mut holders = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
            if holders.is_empty() {
                holders.resize(count, 0);
            }
            let index = (0..holders.len())
                .min_by_key(|&i| holders[i])
                .expect("at least one context");
            holders[index] += 1;
            Lease { index }
        };
    }
    let index = LEASE.with(|lease| lease.index);
    let contexts = CONTEXTS.get_or_init(|| {
        let holders = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
        (0..holders.len()).map(|_| OnceLock::new()).collect()
    });
    contexts[index]
        .get_or_init(Gpu::new)
        .as_ref()
        .map_err(Clone::clone)
}

/// Every case of a verify row passes and its planted variant is rejected (power > 1): what the
/// row tests assert of the cases a `Verdict` is collected from.
pub fn assert_controlled(cases: &[diffusion_theorems::theorems::Controlled]) {
    for c in cases {
        assert!(c.check.passed(), "{c:?}");
    }
    let power = diffusion_theorems::theorems::power(cases);
    assert!(power > 1.0, "planted variant not rejected: power {power}");
}

/// One verify row as recorded in `tests/common/pins/<theorem id>.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    pub claim: String,
    pub backend: String,
    pub cases: usize,
    pub power: f64,
    pub tolerance_log_mean: f64,
    pub planted_log_mean: f64,
}

/// Relative agreement asked of a pinned figure: 10⁻⁵ for rows computed in f64 on the CPU
/// (what differs between runs and CPUs is the order of sums, ~10⁻¹⁵); 10⁻² for the planted
/// residual of rows run on a software GPU adapter, whose f32 results may differ between CPUs
/// running llvmpipe (fused multiply-adds on one and not another). Calibrated: far above what a
/// rerun changes and far below what a changed formula does.
fn pin_tolerance(backend: &str) -> f64 {
    if backend == "cpu-f64" {
        1e-5
    } else {
        1e-2
    }
}

/// The claims the theorem table lists for `id` are its verify rows, in order; every row passes,
/// and reproduces the numbers recorded for it in
/// `tests/common/pins/<id>.json`: its number of cases, its power, and the geometric means over all its
/// cases of the tolerance and of the planted variant's residual. A row's tolerance is part of
/// the claim a paper cites, so a change to any case's allowance (tighter or looser) or to a
/// negative control fails here until it is recorded on purpose with `PIN_UPDATE=1 cargo test
/// --test proof_check <id>::verify_rows` and the diff of the pin file is reviewed. Rows run on a GPU are
/// compared only on a software adapter (llvmpipe, where the pins were recorded), by their cases
/// and planted residual (see [`pin_tolerance`]); on a real GPU they are checked for passing and
/// their number of cases only. Rows with a calibrated tolerance are compared by their cases and
/// planted residual too.
pub fn assert_rows_reproduce_pins(id: &str) {
    use diffusion_theorems::theorems;
    let theorem = theorems::theorem(id).expect("a registered theorem");
    let gpu = gpu_context();
    let software = gpu
        .as_ref()
        .is_ok_and(|g| g.adapter_info().device_type == wgpu::DeviceType::Cpu);
    let verdicts = (theorem.verdicts)(gpu, theorems::Depth::Default);
    let listed: Vec<&str> = theorem.claims.iter().map(|c| c.statement).collect();
    let ran: Vec<&str> = verdicts.iter().map(|v| v.claim.as_str()).collect();
    assert_eq!(
        listed, ran,
        "theorems::THEOREMS' claims of {id} are not its verify rows"
    );
    for v in &verdicts {
        assert!(v.passed, "{v:?}");
    }
    let pins: Vec<Pin> = verdicts
        .iter()
        .map(|v| Pin {
            claim: v.claim.clone(),
            backend: if v.backend == "cpu-f64" {
                "cpu-f64".into()
            } else {
                "gpu".into()
            },
            cases: v.cases,
            power: v.power,
            tolerance_log_mean: v.tolerance_log_mean,
            planted_log_mean: v.planted_log_mean,
        })
        .collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/common/pins")
        .join(format!("{id}.json"));
    if std::env::var_os("PIN_UPDATE").is_some() {
        let text = serde_json::to_string_pretty(&pins).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
        return;
    }
    let recorded: Vec<Pin> = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (record it with PIN_UPDATE=1)", path.display())),
    )
    .unwrap();
    assert_eq!(recorded.len(), pins.len(), "number of rows of {id}");
    for ((now, then), verdict) in pins.iter().zip(&recorded).zip(&verdicts) {
        let derived =
            verdict.tolerance_kind == diffusion_theorems::theorems::ToleranceKind::Derived;
        assert_eq!(now.claim, then.claim);
        assert_eq!(now.cases, then.cases, "{}", now.claim);
        if now.backend != "cpu-f64" && !software {
            continue;
        }
        let allowed = pin_tolerance(&now.backend);
        let mut figures = vec![(
            "planted residual",
            now.planted_log_mean,
            then.planted_log_mean,
        )];
        // A GPU row's tolerance (and so its power) can hang on f32 differences that an
        // iterative stop rule amplifies (the gradient-descent rows' "floor + 2·last change"),
        // and a calibrated f64 tolerance on rounding noise (Richardson's |D(2h) − D(h)|), which
        // another CPU's summation order moves: compared for derived f64 tolerances only.
        if now.backend == "cpu-f64" && derived {
            figures.push(("power", now.power.ln(), then.power.ln()));
            figures.push(("tolerance", now.tolerance_log_mean, then.tolerance_log_mean));
        }
        for (what, a, b) in figures {
            // the figures are logs, so an absolute difference is a relative one
            assert!(
                (a - b).abs() <= allowed || (a.is_nan() && b.is_nan()),
                "{id}: {what} of \"{}\" moved from e^{b} to e^{a} (more than {allowed} \
                 relative); if that is meant, record it with PIN_UPDATE=1",
                now.claim
            );
        }
    }
}

pub fn sigma_input(k: u8) -> SigmaInput {
    match k % 3 {
        0 => SigmaInput::None,
        1 => SigmaInput::Encoder,
        _ => SigmaInput::EncoderAndDecoder,
    }
}

pub fn activation(k: u8) -> Activation {
    match k % 4 {
        0 => Activation::Tanh,
        1 => Activation::LeakyRelu { slope: 0.2 },
        2 => Activation::Relu,
        _ => Activation::Identity,
    }
}

/// (n, h < n, encoder widths, decoder widths, hidden activation, σ input, seed).
pub fn arch_strategy(smooth: bool) -> impl Strategy<Value = (Architecture, u64)> {
    (2usize..=8).prop_flat_map(move |n| {
        (
            1..n,
            proptest::collection::vec(1usize..=24, 0..=4),
            proptest::collection::vec(1usize..=24, 0..=4),
            0u8..4,
            0u8..3,
            0u64..1_000_000,
        )
            .prop_map(move |(h, enc, dec, act, sig, seed)| {
                let hidden = if smooth {
                    Activation::Tanh
                } else {
                    activation(act)
                };
                (
                    Architecture {
                        dim: n,
                        encoder: enc,
                        bottleneck: h,
                        decoder: dec,
                        hidden,
                        code: if smooth { Activation::Tanh } else { hidden },
                        output: Activation::Identity,
                        sigma: sigma_input(sig),
                    },
                    seed,
                )
            })
    })
}

/// A random 1-D mixture with K components of positive variance (so every Gauss rule exists).
pub fn mixture_1d() -> impl Strategy<Value = GaussianMixture> {
    (1usize..=4).prop_flat_map(|k| {
        (
            proptest::collection::vec(0.1f64..1.0, k),
            proptest::collection::vec(-3.0f64..3.0, k),
            proptest::collection::vec(0.05f64..2.0, k),
        )
            .prop_map(|(w, m, v)| {
                let total: f64 = w.iter().sum();
                let weights: Vec<f64> = w.iter().map(|x| x / total).collect();
                let means: Vec<Vec<f64>> = m.iter().map(|x| vec![*x]).collect();
                let covs: Vec<Mat> = v.iter().map(|x| Mat::from_fn(1, 1, |_, _| *x)).collect();
                GaussianMixture::new(&weights, &means, &covs).expect("valid by construction")
            })
    })
}

/// A random covariance `F Fᵀ`, F d×r with entries in [−1, 1] (rank r ≤ d), and a mean.
pub fn covariance(d: usize, r: usize, entries: &[f64]) -> Mat {
    let f = Mat::from_fn(d, r, |i, j| entries[i * d + j]);
    &f * f.transpose()
}

pub fn cov_strategy() -> impl Strategy<Value = (Mat, Vec<f64>, usize)> {
    (1usize..=8).prop_flat_map(|d| {
        (
            0..=d,
            proptest::collection::vec(-1.0f64..1.0, d * d),
            proptest::collection::vec(-3.0f64..3.0, d),
            1..=d,
        )
            .prop_map(move |(r, e, mean, k)| (covariance(d, r, &e), mean, k))
    })
}
