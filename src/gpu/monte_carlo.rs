//! Wrapper of `gpu/mc_posterior.wgsl`: the self-normalised importance-sampling estimate of
//! `E[x|y]` with the prior as proposal,
//! `x̂(y) = Σ_j w_j x_j / Σ_j w_j`, `x_j ~ p`, `w_j = exp(−‖y − x_j‖²/2σ²)`,
//! and its delta-method standard error
//! `SE_i² = Σ_j w_j² (x_ji − x̂_i)² / (Σ_j w_j)²` (consistent as the sample grows;
//! Owen, *Monte Carlo theory, methods and examples*, §9.2).
//!
//! The estimate never touches the closed forms, so comparing it with
//! [`crate::targets::ClosedForm::posterior_mean`] is an independent check of Bayes' rule.

use super::uniforms::McParams;
use super::{shaders, Gpu};
use crate::error::{ensure_sigma, Error, Result};
use crate::linalg::{self, Mat};
use crate::rng::{word_to_uniform, PhiloxStream};
use crate::targets::{GaussianMixture, Target};

/// Largest dimension the kernel handles.
pub const MAX_DIM: usize = 16;

/// One query's estimate.
#[derive(Debug, Clone)]
pub struct McEstimate {
    /// `x̂(y)`.
    pub mean: Vec<f64>,
    /// Delta-method standard error of each coordinate of `x̂(y)`.
    pub std_error: Vec<f64>,
    /// Kish's effective sample size `(Σw)²/Σw²`.
    pub effective_sample_size: f64,
}

/// Samples one workgroup draws (64 threads × 256): bounded loops per invocation, and many
/// workgroups per query so a real GPU is filled.
pub const SAMPLES_PER_GROUP: u32 = 64 * 256;

/// Turns the raw sums `(S0, T0, S1, T1, T2)` into an estimate.
fn finish(s0: f64, t0: f64, s1: &[f64], t1: &[f64], t2: &[f64]) -> McEstimate {
    let mean: Vec<f64> = s1.iter().map(|v| v / s0).collect();
    let std_error = (0..mean.len())
        .map(|i| {
            let m = mean[i];
            ((t2[i] - 2.0 * m * t1[i] + m * m * t0).max(0.0)).sqrt() / s0
        })
        .collect();
    McEstimate {
        mean,
        std_error,
        effective_sample_size: s0 * s0 / t0,
    }
}

fn check(target: &GaussianMixture, queries: &Mat, sigma: f64, n_samples: u32) -> Result<()> {
    ensure_sigma(sigma)?;
    let d = target.dim();
    if d > MAX_DIM {
        return Err(Error::InvalidArgument {
            what: "dimension".into(),
            reason: format!("the Monte Carlo kernel handles d ≤ {MAX_DIM}, got {d}"),
        });
    }
    if queries.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "queries (columns)".into(),
            expected: d,
            got: queries.ncols(),
        });
    }
    if n_samples == 0 {
        return Err(Error::InvalidArgument {
            what: "n_samples".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    // The kernel numbers a sample's Philox blocks `j·b, …, j·b + b − 1` (b blocks per sample)
    // in u32: past 2³² they would wrap onto earlier samples' blocks and silently reuse them.
    let blocks = u64::from(n_samples) * blocks_per_sample(d);
    if blocks > 1 << 32 {
        return Err(Error::InvalidArgument {
            what: "n_samples".into(),
            reason: format!(
                "{n_samples} samples of dimension {d} need {blocks} Philox blocks per query, over \
                 the kernel's 2³² block counter"
            ),
        });
    }
    linalg::ensure_finite_mat("queries", queries)
}

/// Blocks of the stream per sample: one for the component pick, then `⌈d/4⌉` of normals.
fn blocks_per_sample(d: usize) -> u64 {
    1 + d.div_ceil(4) as u64
}

/// Sample j of the stream, as the kernel draws it (in f64).
fn draw(
    target: &GaussianMixture,
    factors: &[Mat],
    cumulative: &[f64],
    stream: PhiloxStream,
    j: u64,
) -> Vec<f64> {
    let d = target.dim();
    let first = j * blocks_per_sample(d);
    let pick = word_to_uniform(stream.block(first)[0]);
    let k = cumulative
        .iter()
        .position(|&c| pick < c)
        .unwrap_or(cumulative.len() - 1);
    let mut z = Vec::with_capacity(d);
    for b in 0..d.div_ceil(4) as u64 {
        z.extend(stream.normals(first + 1 + b));
    }
    let c = &target.components()[k];
    let f = &factors[k];
    (0..d)
        .map(|i| c.mean[i] + (0..f.ncols()).map(|l| f[(i, l)] * z[l]).sum::<f64>())
        .collect()
}

fn cumulative_weights(target: &GaussianMixture) -> Vec<f64> {
    let mut acc = 0.0;
    let mut out: Vec<f64> = target
        .components()
        .iter()
        .map(|c| {
            acc += c.weight;
            acc
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = 1.0;
    }
    out
}

/// The same estimator in f64 on the CPU, drawing the same samples from the same stream.
pub fn mc_posterior_mean_reference(
    target: &GaussianMixture,
    queries: &Mat,
    sigma: f64,
    n_samples: u32,
    stream: PhiloxStream,
) -> Result<Vec<McEstimate>> {
    check(target, queries, sigma, n_samples)?;
    let d = target.dim();
    let factors: Vec<Mat> = target
        .components()
        .iter()
        .map(|c| c.factor.scaled_basis())
        .collect();
    let cumulative = cumulative_weights(target);
    let samples: Vec<Vec<f64>> = (0..u64::from(n_samples))
        .map(|j| draw(target, &factors, &cumulative, stream, j))
        .collect();
    Ok((0..queries.nrows())
        .map(|q| {
            let y = linalg::row(queries, q);
            let logw: Vec<f64> = samples
                .iter()
                .map(|x| {
                    -x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
                        / (2.0 * sigma * sigma)
                })
                .collect();
            let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let (mut s0, mut t0) = (0.0, 0.0);
            let (mut s1, mut t1, mut t2) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
            for (x, lw) in samples.iter().zip(&logw) {
                let w = (lw - m).exp();
                s0 += w;
                t0 += w * w;
                for i in 0..d {
                    s1[i] += w * x[i];
                    t1[i] += w * w * x[i];
                    t2[i] += w * w * x[i] * x[i];
                }
            }
            finish(s0, t0, &s1, &t1, &t2)
        })
        .collect())
}

/// The estimate for every row of `queries` (Q×d, d ≤ 16) from `n_samples` prior draws of
/// `stream`, on the GPU: workgroup (c, q) draws samples `[c·G, (c+1)·G)` for query q
/// (G = [`SAMPLES_PER_GROUP`]); the groups' partial sums are merged here in f64; queries are
/// tiled over the dispatch and binding limits. A typed error when the draws need more than
/// 2³² Philox blocks per query (`n_samples·(1 + ⌈d/4⌉)`: the kernel's block counter is u32).
pub fn mc_posterior_mean(
    gpu: &Gpu,
    target: &GaussianMixture,
    queries: &Mat,
    sigma: f64,
    n_samples: u32,
    stream: PhiloxStream,
) -> Result<Vec<McEstimate>> {
    check(target, queries, sigma, n_samples)?;
    let d = target.dim();
    let kk = target.components().len();
    let mut means = Vec::with_capacity(kk * d);
    let mut factors = Vec::with_capacity(kk * d * d);
    for c in target.components() {
        means.extend(c.mean.iter().map(|&v| v as f32));
        let f = c.factor.scaled_basis();
        for i in 0..d {
            for l in 0..d {
                factors.push(if l < f.ncols() { f[(i, l)] as f32 } else { 0.0 });
            }
        }
    }
    let cumulative: Vec<f32> = cumulative_weights(target)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let means = gpu.input("mc means", &means)?;
    let factors = gpu.input("mc factors", &factors)?;
    let cumulative = gpu.input("mc cumulative weights", &cumulative)?;
    let stride = 3 + 3 * d;
    let groups_per_query = n_samples.div_ceil(SAMPLES_PER_GROUP);
    let max_dim = gpu.limits().max_compute_workgroups_per_dimension;
    if groups_per_query > max_dim {
        return Err(Error::GpuLimit(format!(
            "n_samples = {n_samples} needs {groups_per_query} workgroups per query, over {max_dim}"
        )));
    }
    let g = groups_per_query as usize;
    let max_q =
        (max_dim as usize).min(((gpu.max_binding_bytes() / 4) as usize / (g * stride)).max(1));
    let key = stream.key();
    let mut out = Vec::with_capacity(queries.nrows());
    for start in (0..queries.nrows()).step_by(max_q) {
        let q = max_q.min(queries.nrows() - start);
        let mut flat = Vec::with_capacity(q * d);
        for p in start..start + q {
            flat.extend((0..d).map(|j| queries[(p, j)] as f32));
        }
        let params = gpu.uniform(
            "mc params",
            &McParams {
                n_queries: q as u32,
                dim: d as u32,
                n_components: kk as u32,
                n_samples,
                seed_lo: key[0],
                seed_hi: key[1],
                stream: stream.stream,
                inv_two_sigma2: (1.0 / (2.0 * sigma * sigma)) as f32,
                samples_per_group: SAMPLES_PER_GROUP,
                groups_per_query,
                pad0: 0,
                pad1: 0,
            },
        );
        let qbuf = gpu.input("mc queries", &flat)?;
        let sums = gpu.output("mc sums", q * g * stride)?;
        gpu.dispatch(
            &shaders::MC_POSTERIOR,
            &[&params, &qbuf, &means, &factors, &cumulative, &sums],
            [groups_per_query, q as u32, 1],
        )?;
        let raw: Vec<f32> = gpu.read(&sums, q * g * stride)?;
        for per_query in raw.chunks_exact(g * stride) {
            // Merge the groups: rescale each group's sums from its shift M_c to the largest.
            let records: Vec<Vec<f64>> = per_query
                .chunks_exact(stride)
                .map(|r| r.iter().map(|&x| f64::from(x)).collect())
                .collect();
            let m = records
                .iter()
                .map(|r| r[0])
                .fold(f64::NEG_INFINITY, f64::max);
            let (mut s0, mut t0) = (0.0, 0.0);
            let (mut s1, mut t1, mut t2) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
            for r in &records {
                let a = (r[0] - m).exp();
                let a2 = a * a;
                s0 += a * r[1];
                t0 += a2 * r[2];
                for i in 0..d {
                    s1[i] += a * r[3 + i];
                    t1[i] += a2 * r[3 + d + i];
                    t2[i] += a2 * r[3 + 2 * d + i];
                }
            }
            out.push(finish(s0, t0, &s1, &t1, &t2));
        }
    }
    Ok(out)
}
