//! GPU kernels against their f64 CPU references, on random inputs, with poisoned outputs
//! (every output buffer starts as NaN / u32::MAX, so an unwritten element fails). Run a second
//! time in CI with WGPU_BACKEND=gl so both software backends stay working.
//!
//! One module per kernel family; a test is cited as `tests/gpu_parity/<module>.rs::<name>` and run
//! alone with `cargo test --test proof_check gpu_parity::<module>::<name>`.

use crate::common;

use common::gpu;
use diffusion_theorems::gpu::gemm::{GemmKernel, GemmPlan, GemmTiling};
use diffusion_theorems::gpu::{gmm, monte_carlo, philox, shaders};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::{word_to_uniform, PhiloxStream, Rng};
use diffusion_theorems::targets::random_gmm;

mod bench;
mod bfcnn;
mod concurrency;
mod conv;
mod ddim;
mod dense;
mod embedding;
mod gaussian;
mod gemm;
mod group_norm;
mod im2col;
mod inputs;
mod jvp;
mod mlp;
mod philox_stream;
mod posterior;
mod power_features;
mod resample;
mod rowwise;
mod unet;
mod wgsl_validation;

/// Standard-normal GEMM operands for `op(A)` m×k and `op(B)` k×n, stored transposed (A as k×m,
/// B as n×k) where asked.
fn random_operands(
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    (trans_a, trans_b): (bool, bool),
) -> (Mat, Mat) {
    let a_shape = if trans_a { (k, m) } else { (m, k) };
    let b_shape = if trans_b { (n, k) } else { (k, n) };
    (
        Mat::from_fn(a_shape.0, a_shape.1, |_, _| rng.normal()),
        Mat::from_fn(b_shape.0, b_shape.1, |_, _| rng.normal()),
    )
}

/// Asserts `|got − reference| ≤ bound` entry by entry for flat slices (a reference's
/// `(values, bounds)`), naming `what` and the entry that fails; returns the largest
/// `|got − reference|/bound`.
fn assert_within_slice(what: &str, got: &[f64], (reference, bound): &(Vec<f64>, Vec<f64>)) -> f64 {
    assert_eq!(got.len(), reference.len(), "{what}");
    let mut worst = 0.0f64;
    for (l, ((g, r), e)) in got.iter().zip(reference).zip(bound).enumerate() {
        assert!(
            (g - r).abs() <= *e,
            "{what}: entry {l}: {g} vs {r} (bound {e})"
        );
        worst = worst.max((g - r).abs() / e);
    }
    worst
}

/// Asserts `|got − reference| ≤ bound` elementwise (naming `what` and the entry that fails) and
/// returns the largest `|got − reference|/bound`.
fn assert_within_bound(what: &str, got: &Mat, reference: &Mat, bound: &Mat) -> f64 {
    let mut worst = 0.0f64;
    for i in 0..got.nrows() {
        for j in 0..got.ncols() {
            let (g, r, e) = (got[(i, j)], reference[(i, j)], bound[(i, j)]);
            assert!(
                (g - r).abs() <= e,
                "{what}: [{i},{j}] {g} vs {r} (bound {e})"
            );
            worst = worst.max((g - r).abs() / e);
        }
    }
    worst
}
