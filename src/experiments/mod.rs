//! Experiments behind `diffusion-theorems exp <name>`: runs that reproduce a paper's figure
//! (training on the GPU where needed, sampling, statistics with stated error rates), writing PNG
//! plots and a JSON summary — too heavy or too visual for `cargo test`.
//!
//! * [`bottleneck_2d`] — Levine–Weiss Fig. 4: samples of a trained h = 1 bottleneck network lie
//!   on a curve;
//! * [`polynomial_2d`] — Levine–Weiss Fig. 3: DDIM with the optimal polynomial denoisers of
//!   degree 1, 3, 5.

pub mod bottleneck_2d;
pub mod polynomial_2d;
