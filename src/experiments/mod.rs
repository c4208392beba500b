//! Paper-scale experiments run by `diffusion-theorems exp <name>`: training on the GPU,
//! sampling, and statistics with stated error rates, writing plots and JSON reports.
//!
//! * [`bottleneck_2d`] — Levine–Weiss Fig. 4: samples of a trained h = 1 bottleneck network lie
//!   on a curve.

pub mod bottleneck_2d;
