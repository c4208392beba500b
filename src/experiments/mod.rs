//! Experiments behind `diffusion-theorems exp <name>`: runs that reproduce a paper's figure
//! (training on the GPU where needed, sampling, statistics with stated error rates), writing PNG
//! plots and a JSON summary — too heavy or too visual for `cargo test`.
//!
//! * [`bottleneck_2d`] — Levine–Weiss Fig. 4: samples of a trained h = 1 bottleneck network lie
//!   on a curve;
//! * [`images`] — the paper-scale image experiments (Levine–Weiss Fig. 5–9, Kadkhodaie et al.
//!   Fig. 2, book §3.3 memorization) on CelebA or the embedded C^α and disk datasets;
//! * [`polynomial_2d`] — Levine–Weiss Fig. 3: DDIM with the optimal polynomial denoisers of
//!   degree 1, 3, 5;
//! * [`memory`] — the guard that refuses a run too large for the machine before it allocates.

pub mod bottleneck_2d;
pub mod images;
pub mod memory;
pub mod polynomial_2d;
