//! The divergence `tr ∇f(y)` of a denoiser: exact (d Jacobian-vector products) for small d, and
//! Hutchinson's estimator `E_z[zᵀ∇f(y)z]` with Rademacher probes z for large d.
