//! # diffusion-theorems
//!
//! Executable, property-tested theorems about denoisers and diffusion models. Each theorem is a
//! module of [`theorems`] whose claim is checked by two independent routes (for example the
//! posterior mean from Bayes' rule against `y + σ²∇log p_σ(y)` from differentiating the noisy
//! density), with tolerances derived from floating-point error bounds or from `z·SE` at a
//! stated false-failure probability.
//!
//! * [`denoisers`] — the `Denoiser` trait and architectures (Bayes, affine, soft threshold, MLP, …);
//! * [`diffusion`] — noise schedules and samplers (DDIM, ancestral, Kadkhodaie–Simoncelli);
//! * [`targets`] — distributions with closed-form noisy densities (f64 reference numerics);
//! * [`io`](mod@io) — `.npy` arrays and JSON files in and out;
//! * [`numerics`] — rounding units, `γ_n` and running dot-product bounds (a leaf, used by all);
//! * [`rng`] — the Philox4x32-10 stream shared bit-for-bit with the WGSL kernels;
//! * [`gpu`] — the wgpu runtime and one wrapper per kernel in `gpu/*.wgsl`;
//! * [`stats`] — statistical tolerances, moments and Gauss rules, two-sample tests, numerical
//!   differentiation, intrinsic dimension;
//! * [`theorems`] — one module per theorem id, each returning [`theorems::Verdict`]s;
//! * [`experiments`] — paper-scale runs (`diffusion-theorems exp`);
//! * [`report`] — the verify table, its JSON report, the theorem registry and the citable
//!   appendix;
//! * [`bench`](mod@bench) — `diffusion-theorems bench`: the GPU workloads timed against measured peaks.
//!
//! ## Layers
//!
//! A module uses only modules of lower layers (`tests/theorem_registry.rs::layers_point_one_way`
//! checks every `crate::` path of `src/`):
//!
//! 1. [`error`], [`rng`], [`numerics`] — leaves;
//! 2. [`linalg`] — f64 reference numerics on faer;
//! 3. [`io`](mod@io) — `.npy`, JSON and PNG files;
//! 4. [`targets`] (image data read through `io`);
//! 5. [`stats`] and [`gpu`] (the GMM, Monte Carlo and empirical posterior kernels take a
//!    target's parameters; every other wrapper takes matrices and scalars);
//! 6. [`denoisers`] (which convert themselves for the GPU: `JvpDenoiser::from`);
//! 7. [`diffusion`] (samplers take a `Denoiser`);
//! 8. [`theorems`] — one module per theorem, one table [`theorems::THEOREMS`];
//! 9. [`experiments`] and [`bench`](mod@bench);
//! 10. [`report`], then the binary.

#![deny(missing_docs)]

pub mod bench;
pub mod denoisers;
pub mod diffusion;
pub mod error;
pub mod experiments;
pub mod gpu;
pub mod io;
pub mod linalg;
pub mod numerics;
pub mod report;
pub mod rng;
pub mod stats;
pub mod targets;
pub mod theorems;

pub use error::{Error, Result};
