//! Diffusion: noise schedules `x_t = α_t x + σ_t g` ([`schedule`]) and samplers that turn a
//! denoiser and initial noise into samples ([`samplers`]): DDIM (book eq.3.2.84 / 3.2.87), the
//! stochastic ancestral sampler, and Kadkhodaie–Simoncelli's ascent (Sugolov Algorithm 1); and
//! DDIM with an affine denoiser in the form the GPU kernels take ([`affine`]).
//!
//! Every sampler is a pure function of (denoiser, initial noise, schedule, steps) — plus an
//! explicit Philox seed for the ones that inject noise — so two denoisers can be compared on
//! identical noise.

pub mod affine;
pub mod samplers;
pub mod schedule;

pub use samplers::{Ancestral, Ddim, KadkhodaieSimoncelli, Sampler};
pub use schedule::Schedule;
