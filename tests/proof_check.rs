//! The proof-check: every test suite of the crate in one test binary, so that `cargo test` runs
//! them side by side on all cores instead of one binary after another (each suite's long tests
//! otherwise leave the other cores idle). A suite is still its own file, cited as
//! `tests/<suite>.rs::<test>` (or `tests/<suite>/<module>.rs::<test>`), and runs alone by its
//! module path:
//!
//! ```sh
//! cargo test --test proof_check tweedie::                  # one theorem's tests
//! cargo test --test proof_check gpu_parity::gemm::         # one kernel family's parity tests
//! ```
//!
//! `Cargo.toml` sets `autotests = false`, so a file under `tests/` runs only when it is declared
//! here; `tests/theorem_registry.rs` fails when one is not.

mod common;

mod bench_workloads;
mod bottleneck_manifold;
mod entropy;
mod experiments;
mod fuzz_inputs;
mod gpu_parity;
mod image_data;
mod jacobian_geometry;
mod kl_bound;
mod linear_gaussian;
mod locality;
mod memorization;
mod miyasawa_covariance;
mod oracle_rate;
mod polynomial_moments;
mod rank_k;
mod score_matching;
mod shuffled_pixels;
mod sure;
mod targets;
mod theorem_registry;
mod tweedie;
