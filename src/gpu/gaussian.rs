//! The closed forms of a dense Gaussian ([`DenseGaussian`]) on the GPU in f32, for image-scale
//! d: a tiled Cholesky factorisation of `C = Σ + σ²I` and tiled triangular solves for all points,
//! every tile operation a product of the GEMM family.
//!
//! **Factorisation** (right-looking, tiles of edge b; the last row and column of tiles may be
//! narrower). For each tile column k: the diagonal tile is factored in place, `A_kk = L_kk L_kkᵀ`,
//! and inverted, `W_k = L_kk⁻¹`, in f32 on the GPU by one workgroup (`gpu/cholesky.wgsl`, b³/3
//! flops each); the panel becomes `L_ik = A_ik W_kᵀ` (i > k) and the trailing tiles
//! `A_ij ← A_ij − L_ik L_jkᵀ` (i ≥ j > k) — GEMM-family products; two submissions per step and
//! nothing read back until the end, when every `(L_kk)_ii` is read once:
//! `log det C = 2 Σ log (L_kk)_ii`, and a pivot ≤ 0 (C not positive definite in f32) is refused.
//!
//! **Solves** for the points `Δ = Y − 1μᵀ` (n×d, in column blocks `Δ_k`): the rows of
//! `Z = Δ L⁻ᵀ` by forward substitution over tiles, `Z_k = (Δ_k − Σ_{j<k} Z_j L_kjᵀ) W_kᵀ`, and
//! those of `S = Z L⁻¹ = Δ C⁻¹` by backward substitution, `S_k = (Z_k − Σ_{i>k} S_i L_ik) W_k`.
//! Then `∇ log p_σ(y) = −s`, `E[x|y] = y − σ²s` and `log p_σ(y) = −½(d log 2π + log det C + ‖z‖²)`
//! (the last two sums in f64 on the CPU).
//!
//! **Error bound** ([`f32_relative_bound`]): normwise, for the unblocked algorithm in unit
//! roundoff `u = 2⁻²⁴`, a Cholesky solve satisfies `(C + ΔC)ŝ = δ` with
//! `|ΔC| ≤ γ_{3d+1}|L̂||L̂ᵀ|` (Higham, *Accuracy and Stability*, Thm 10.4) and
//! `‖|L̂||L̂ᵀ|‖₂ ≤ d‖C‖₂`, plus the rounding of C and δ to f32 (`u|C|`, `u|δ|`); so
//! `‖ŝ − s‖/‖s‖ ≤ κε/(1 − κε)` with `ε = d·γ_{3d+1} + d·u + u`. The tiled variant applies the
//! inverses of the diagonal tiles instead of substituting; an inverse-based triangular solve
//! has its error multiplied by at most `κ(L_kk) ≤ √κ(C)` (Higham §8.3, §13.1), so the bound used
//! is `ε_tiled = ε(1 + √κ)`. That factor is an argument from those sections, not a proof for
//! this tiled algorithm: the part for the unblocked algorithm is derived, the `(1 + √κ)` is
//! calibrated by it (and the parity test's observed errors sit far inside the bound). κ is bounded without eigenvalues: `κ₂(C) ≤ (t + σ²)/σ²` with `t` the
//! largest absolute column sum of Σ (`≥ ‖Σ‖₂`). The bound is worst-case and becomes vacuous
//! (≥ 1) at large d·κ; the parity test works where it is not.

use super::gemm::{run_products, GpuMat, Product};
use super::shaders;
use super::uniforms::CholeskyParams;
use super::{chunks, Dispatch, Gpu};
use crate::error::{ensure_sigma_squared, Error, Result};
use crate::linalg::Mat;
use crate::numerics::{gamma_f32, F32_UNIT_ROUNDOFF as U};
pub use crate::targets::gaussian::column_sum_max;
use crate::targets::gaussian::DenseGaussian;
use rayon::prelude::*;
use std::collections::HashMap;

/// The default tile edge b of [`GpuNoisyGaussian::factor`]: 1024² f32 tiles (4 MiB) are far
/// inside every adapter's binding limit and long enough in k for the register-blocked GEMMs.
pub const DEFAULT_TILE: usize = 1024;

/// `κε/(1 − κε)` with `ε = (d·γ_{3d+1} + d·u + u)(1 + √κ)`, `κ = (t + σ²)/σ²`: the normwise
/// relative error bound of the f32 tiled route's `s = C⁻¹δ` (module documentation);
/// `f64::INFINITY` where `κε ≥ 1` (no bound).
pub fn f32_relative_bound(d: usize, column_sum_max: f64, sigma: f64) -> f64 {
    let s2 = sigma * sigma;
    let kappa = (column_sum_max + s2) / s2;
    let eps = (d as f64 * gamma_f32(3 * d + 1) + d as f64 * U + U) * (1.0 + kappa.sqrt());
    let ke = kappa * eps;
    if ke >= 1.0 {
        f64::INFINITY
    } else {
        ke / (1.0 - ke)
    }
}

/// Index of the lower tile (i, j), i ≥ j, in row-by-row order.
fn lower_index(i: usize, j: usize) -> usize {
    i * (i + 1) / 2 + j
}

/// Spare GPU matrices by shape: every product here writes all of its output, so a matrix no
/// longer needed (an overwritten tile, a used partial sum) serves as the next output of its
/// shape instead of a fresh buffer (a fresh one starts poisoned, as everywhere in the crate).
struct Pool<'g> {
    gpu: &'g Gpu,
    spare: HashMap<(usize, usize), Vec<GpuMat>>,
}

impl<'g> Pool<'g> {
    fn new(gpu: &'g Gpu) -> Self {
        Self {
            gpu,
            spare: HashMap::new(),
        }
    }

    /// A rows×cols matrix to be written in full.
    fn take(&mut self, label: &str, rows: usize, cols: usize) -> Result<GpuMat> {
        match self.spare.get_mut(&(rows, cols)).and_then(Vec::pop) {
            Some(m) => Ok(m),
            None => GpuMat::poisoned(self.gpu, label, rows, cols),
        }
    }

    /// Returns a matrix no longer needed.
    fn give(&mut self, m: GpuMat) {
        self.spare.entry(m.shape()).or_default().push(m);
    }
}

/// A [`DenseGaussian`] at one σ with `C = Σ + σ²I = LLᵀ` factored on the GPU in f32 tiles
/// (module documentation).
pub struct GpuNoisyGaussian<'g> {
    gpu: &'g Gpu,
    /// `(start, len)` of each block of rows and columns.
    blocks: Vec<(usize, usize)>,
    /// The tiles `L_ij`, i > j, at [`lower_index`] (the diagonal positions keep the last update
    /// of `A_kk`; the solves use `W_k` instead).
    lower: Vec<GpuMat>,
    /// `W_k = L_kk⁻¹` for every diagonal tile.
    diagonal_inverses: Vec<GpuMat>,
    log_det: f64,
    s2: f64,
    mean: Vec<f64>,
    /// Wall seconds of the factorisation's two phases: converting and uploading the tiles of C,
    /// then the tile steps (each ending in a wait for the GPU).
    factor_seconds: FactorSeconds,
    /// Where the point evaluations' wall time went so far.
    solve_seconds: std::sync::Mutex<SolveSeconds>,
}

/// Where the point evaluations' wall time went, summed over calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct SolveSeconds {
    /// Centring the points, converting them to f32 and writing them to the GPU.
    pub upload: f64,
    /// The forward and backward substitutions (preparing, submitting, waiting).
    pub solves: f64,
    /// Reading the results back and converting them to f64.
    pub read_back: f64,
}

/// Where [`GpuNoisyGaussian::factor`]'s wall time went.
#[derive(Clone, Copy, Debug)]
pub struct FactorSeconds {
    /// Converting C's lower tiles to f32 on the host and writing them to the GPU.
    pub upload: f64,
    /// The tile steps, all on the GPU: diagonal factors and inverses, panels, trailing updates.
    pub tiles: f64,
    /// Of `tiles`: preparing the products (plans, parameters).
    pub prepare: f64,
    /// Of `tiles`: recording, submitting and waiting for the kernels.
    pub run: f64,
    /// Of `tiles`: reading every diagonal tile's `L_ii` back at the end (for log det C and the
    /// positive-definiteness check).
    pub read_back: f64,
}

impl<'g> GpuNoisyGaussian<'g> {
    /// Uploads the lower tiles of `C = Σ + σ²I` (edge `tile`) and factors them (module
    /// documentation). A diagonal tile that is not positive definite in f32 is a `Numerical`
    /// error naming the tile (C too ill-conditioned for f32).
    pub fn factor(gpu: &'g Gpu, target: &DenseGaussian, sigma: f64, tile: usize) -> Result<Self> {
        ensure_sigma_squared(sigma)?;
        if tile == 0 {
            return Err(Error::InvalidArgument {
                what: "tile".into(),
                reason: "the tile edge must be at least 1, got 0".into(),
            });
        }
        let s2 = sigma * sigma;
        let clock = std::time::Instant::now();
        let cov = target.covariance();
        let blocks = chunks(target.dim(), tile);
        let nt = blocks.len();
        // tile (i, j) row-major is read down the columns of Σ: C_ij[r][c] = Σ(rj + c, ri + r)
        // by symmetry, so every row of the tile is a contiguous piece of column ri + r
        let pairs: Vec<(usize, usize)> =
            (0..nt).flat_map(|i| (0..=i).map(move |j| (i, j))).collect();
        let host: Vec<Vec<f32>> = pairs
            .par_iter()
            .map(|&(i, j)| {
                let ((ri, ni), (rj, nj)) = (blocks[i], blocks[j]);
                let mut data = Vec::with_capacity(ni * nj);
                for r in 0..ni {
                    let column = cov.col(ri + r);
                    data.extend((0..nj).map(|c| {
                        let v = column[rj + c] + if ri + r == rj + c { s2 } else { 0.0 };
                        v as f32
                    }));
                }
                data
            })
            .collect();
        let mut tiles = pairs
            .iter()
            .zip(&host)
            .map(|(&(i, j), data)| {
                GpuMat::from_f32_rows(gpu, "C tile", (blocks[i].1, blocks[j].1), data)
            })
            .collect::<Result<Vec<_>>>()?;
        drop(host);
        gpu.finish("the upload of C's tiles")?;
        let upload = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let mut pool = Pool::new(gpu);
        let mut diagonals = Vec::with_capacity(nt);
        let mut diagonal_inverses = Vec::with_capacity(nt);
        let (mut prepare, mut run) = (0.0, 0.0);
        let lap = |clock: &mut std::time::Instant, total: &mut f64| {
            *total += clock.elapsed().as_secs_f64();
            *clock = std::time::Instant::now();
        };
        let mut step_clock = std::time::Instant::now();
        for k in 0..nt {
            // the diagonal tile: A_kk = L_kk L_kkᵀ in place and W_k = L_kk⁻¹, on the GPU
            let side = blocks[k].1;
            let params = gpu.shared_uniform(
                "cholesky params",
                &CholeskyParams {
                    n: side as u32,
                    ..CholeskyParams::default()
                },
            )?;
            let w_k = GpuMat::poisoned(gpu, "inverse of a diagonal tile", side, side)?;
            let diagonal = gpu.output("diagonal of a factored tile", side)?;
            let factor: Vec<Dispatch> = [&shaders::CHOLESKY_TILE, &shaders::INVERT_LOWER_TILE]
                .into_iter()
                .map(|shader| -> Dispatch {
                    (
                        shader,
                        vec![
                            &params,
                            tiles[lower_index(k, k)].buffer(),
                            w_k.buffer(),
                            &diagonal,
                        ],
                        [1, 1, 1],
                    )
                })
                .collect();
            // the panel: L_ik = A_ik W_kᵀ
            let panel: Vec<GpuMat> = (k + 1..nt)
                .map(|i| pool.take("L panel tile", blocks[i].1, blocks[k].1))
                .collect::<Result<_>>()?;
            {
                let products = (k + 1..nt)
                    .zip(&panel)
                    .map(|(i, out)| {
                        Product::new((&tiles[lower_index(i, k)], false), (&w_k, true), out)
                            .prepare(gpu)
                    })
                    .collect::<Result<Vec<_>>>()?;
                lap(&mut step_clock, &mut prepare);
                let mut dispatches = factor;
                for p in &products {
                    dispatches.extend(p.dispatches());
                }
                gpu.run_dispatches(&dispatches, 1)?;
                lap(&mut step_clock, &mut run);
            }
            for (i, out) in (k + 1..nt).zip(panel) {
                pool.give(std::mem::replace(&mut tiles[lower_index(i, k)], out));
            }
            // the trailing tiles: A_ij ← A_ij − L_ik L_jkᵀ
            let trailing: Vec<(usize, usize)> = (k + 1..nt)
                .flat_map(|i| (k + 1..=i).map(move |j| (i, j)))
                .collect();
            let updated: Vec<GpuMat> = trailing
                .iter()
                .map(|&(i, j)| pool.take("C tile", blocks[i].1, blocks[j].1))
                .collect::<Result<_>>()?;
            {
                let products = trailing
                    .iter()
                    .zip(&updated)
                    .map(|(&(i, j), out)| {
                        Product::new(
                            (&tiles[lower_index(i, k)], false),
                            (&tiles[lower_index(j, k)], true),
                            out,
                        )
                        .scaled(-1.0)
                        .plus(1.0, &tiles[lower_index(i, j)])
                        .prepare(gpu)
                    })
                    .collect::<Result<Vec<_>>>()?;
                lap(&mut step_clock, &mut prepare);
                run_products(gpu, &products, 1)?;
                lap(&mut step_clock, &mut run);
            }
            for (&(i, j), out) in trailing.iter().zip(updated) {
                pool.give(std::mem::replace(&mut tiles[lower_index(i, j)], out));
            }
            diagonals.push(diagonal);
            diagonal_inverses.push(w_k);
        }
        // every tile's L_ii (or its failed pivot), read once at the end
        let sides: Vec<(&wgpu::Buffer, usize)> = diagonals
            .iter()
            .zip(&blocks)
            .map(|(b, &(_, n))| (b, n))
            .collect();
        let read = gpu.read_all::<f32>(&sides)?;
        let mut log_det = 0.0;
        for (k, values) in read.iter().enumerate() {
            if let Some(&bad) = values.iter().find(|v| !(**v > 0.0 && v.is_finite())) {
                return Err(Error::Numerical(format!(
                    "the f32 tiled Cholesky of Σ + σ²I (σ = {sigma}) broke down in diagonal tile \
                     {k} (pivot {bad}): C is too ill-conditioned for the f32 route"
                )));
            }
            log_det += values.iter().map(|&l| 2.0 * f64::from(l).ln()).sum::<f64>();
        }
        let read_back = step_clock.elapsed().as_secs_f64();
        gpu.finish("the tiled Cholesky factorisation")?;
        Ok(Self {
            gpu,
            blocks,
            lower: tiles,
            diagonal_inverses,
            log_det,
            s2,
            mean: target.mean().to_vec(),
            factor_seconds: FactorSeconds {
                upload,
                tiles: clock.elapsed().as_secs_f64(),
                prepare,
                run,
                read_back,
            },
            solve_seconds: std::sync::Mutex::default(),
        })
    }

    /// Where the factorisation's wall time went (upload, tile steps).
    pub fn factor_seconds(&self) -> FactorSeconds {
        self.factor_seconds
    }

    /// Where the point evaluations' wall time went so far (summed over calls).
    pub fn solve_seconds(&self) -> SolveSeconds {
        self.solve_seconds
            .lock()
            .map_or_else(|poisoned| *poisoned.into_inner(), |s| *s)
    }

    /// Adds the seconds since `*clock` to the part of [`SolveSeconds`] that `part` picks, and
    /// restarts the clock.
    fn lap(&self, clock: &mut std::time::Instant, part: fn(&mut SolveSeconds) -> &mut f64) {
        let mut seconds = self
            .solve_seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *part(&mut seconds) += clock.elapsed().as_secs_f64();
        *clock = std::time::Instant::now();
    }

    /// `log det C` from the diagonal tiles' factors.
    pub fn log_det(&self) -> f64 {
        self.log_det
    }

    /// Checks row-major points (`n·d` values, finite) and uploads the column blocks of
    /// `Δ = Y − 1μᵀ` (each n×b, row-major: contiguous pieces of the points' rows).
    fn centred_blocks(&self, points: &[f64], n: usize) -> Result<Vec<GpuMat>> {
        let d = self.mean.len();
        if points.len() != n * d {
            return Err(Error::DimensionMismatch {
                what: "query points (n·d values, row-major)".into(),
                expected: n * d,
                got: points.len(),
            });
        }
        crate::error::ensure_finite("query points", points)?;
        let host: Vec<Vec<f32>> = self
            .blocks
            .par_iter()
            .map(|&(start, len)| {
                let mut data = Vec::with_capacity(n * len);
                for row in points.chunks(d) {
                    data.extend(
                        row[start..start + len]
                            .iter()
                            .zip(&self.mean[start..start + len])
                            .map(|(y, m)| (y - m) as f32),
                    );
                }
                data
            })
            .collect();
        self.blocks
            .iter()
            .zip(&host)
            .map(|(&(_, len), data)| {
                GpuMat::from_f32_rows(self.gpu, "centred points", (n, len), data)
            })
            .collect()
    }

    /// One block of a tiled substitution, in one submission: `t ← start`, then
    /// `t ← t − X_i·op(L_i)` for each `(X_i, L_i)` of `terms`, then `start`'s block of the
    /// answer `t·op(W)` — the partial sums alternating between two pooled matrices (C is
    /// never D). `transposed` is op for the L tiles and W alike.
    fn substitute(
        &self,
        start: &GpuMat,
        terms: &[(&GpuMat, &GpuMat)],
        inverse: &GpuMat,
        transposed: bool,
        pool: &mut Pool,
    ) -> Result<GpuMat> {
        let (n, len) = start.shape();
        let partial = [pool.take("partial", n, len)?, pool.take("partial", n, len)?];
        let out = pool.take("substituted block", n, len)?;
        {
            let mut products = Vec::with_capacity(terms.len() + 1);
            let mut t = start;
            for (step, (x, l)) in terms.iter().enumerate() {
                let next = &partial[step % 2];
                products.push(
                    Product::new((x, false), (l, transposed), next)
                        .scaled(-1.0)
                        .plus(1.0, t)
                        .prepare(self.gpu)?,
                );
                t = next;
            }
            products.push(Product::new((t, false), (inverse, transposed), &out).prepare(self.gpu)?);
            run_products(self.gpu, &products, 1)?;
        }
        let [a, b] = partial;
        pool.give(a);
        pool.give(b);
        Ok(out)
    }

    /// `Z = Δ L⁻ᵀ` by forward substitution over the tiles:
    /// `Z_k = (Δ_k − Σ_{j<k} Z_j L_kjᵀ) W_kᵀ`.
    fn forward(&self, delta: Vec<GpuMat>, pool: &mut Pool) -> Result<Vec<GpuMat>> {
        let mut z: Vec<GpuMat> = Vec::with_capacity(delta.len());
        for (k, delta_k) in delta.into_iter().enumerate() {
            let terms: Vec<(&GpuMat, &GpuMat)> = (0..k)
                .map(|j| (&z[j], &self.lower[lower_index(k, j)]))
                .collect();
            let z_k = self.substitute(&delta_k, &terms, &self.diagonal_inverses[k], true, pool)?;
            pool.give(delta_k);
            z.push(z_k);
        }
        Ok(z)
    }

    /// `S = Z L⁻¹` by backward substitution over the tiles:
    /// `S_k = (Z_k − Σ_{i>k} S_i L_ik) W_k`.
    fn backward(&self, z: Vec<GpuMat>, pool: &mut Pool) -> Result<Vec<GpuMat>> {
        let nt = self.blocks.len();
        // the blocks S_{nt−1}, …, S_0 in the order they are found
        let mut found: Vec<GpuMat> = Vec::with_capacity(nt);
        for (k, z_k) in z.into_iter().enumerate().rev() {
            // found[m] is S_{nt−1−m}, so S_i (i > k) is found[nt − 1 − i]
            let terms: Vec<(&GpuMat, &GpuMat)> = (k + 1..nt)
                .map(|i| (&found[nt - 1 - i], &self.lower[lower_index(i, k)]))
                .collect();
            let s_k = self.substitute(&z_k, &terms, &self.diagonal_inverses[k], false, pool)?;
            pool.give(z_k);
            found.push(s_k);
        }
        found.reverse();
        Ok(found)
    }

    /// Downloads column blocks (each n×b) into the row-major n×d values.
    fn gather(&self, blocks: &[GpuMat], n: usize) -> Result<Vec<f64>> {
        let d = self.mean.len();
        let mut out = vec![0.0; n * d];
        let words = GpuMat::download_all_f32_rows(self.gpu, blocks)?;
        for (&(start, len), b) in self.blocks.iter().zip(words) {
            for (row, piece) in out.chunks_mut(d).zip(b.chunks(len.max(1))) {
                for (o, v) in row[start..start + len].iter_mut().zip(piece) {
                    *o = f64::from(*v);
                }
            }
        }
        Ok(out)
    }

    /// Rows of points per chunk, so every n×b block stays inside the adapter's binding limit.
    fn rows_per_chunk(&self) -> usize {
        let widest = self.blocks.iter().map(|b| b.1).max().unwrap_or(1).max(1);
        ((self.gpu.max_binding_bytes() / 4) as usize / widest).max(1)
    }

    /// `s = C⁻¹(y − μ)` at every point of the row-major `points` (n·d values), row-major.
    pub fn solved_rows(&self, points: &[f64], n: usize) -> Result<Vec<f64>> {
        let d = self.mean.len();
        let mut pool = Pool::new(self.gpu);
        let mut out = Vec::with_capacity(n * d);
        for (start, len) in chunks(n, self.rows_per_chunk()) {
            let chunk = points.get(start * d..(start + len) * d).ok_or_else(|| {
                Error::DimensionMismatch {
                    what: "query points (n·d values, row-major)".into(),
                    expected: n * d,
                    got: points.len(),
                }
            })?;
            let mut clock = std::time::Instant::now();
            let delta = self.centred_blocks(chunk, len)?;
            self.lap(&mut clock, |s| &mut s.upload);
            let solved = self.backward(self.forward(delta, &mut pool)?, &mut pool)?;
            self.lap(&mut clock, |s| &mut s.solves);
            out.extend(self.gather(&solved, len)?);
            self.lap(&mut clock, |s| &mut s.read_back);
        }
        Ok(out)
    }

    /// `‖L⁻¹(y − μ)‖²` at every point of the row-major `points` (n·d values).
    pub fn quadratic_forms_rows(&self, points: &[f64], n: usize) -> Result<Vec<f64>> {
        let d = self.mean.len();
        let mut pool = Pool::new(self.gpu);
        let mut out = Vec::with_capacity(n);
        for (start, len) in chunks(n, self.rows_per_chunk()) {
            let chunk = points.get(start * d..(start + len) * d).ok_or_else(|| {
                Error::DimensionMismatch {
                    what: "query points (n·d values, row-major)".into(),
                    expected: n * d,
                    got: points.len(),
                }
            })?;
            let mut clock = std::time::Instant::now();
            let delta = self.centred_blocks(chunk, len)?;
            self.lap(&mut clock, |s| &mut s.upload);
            let solved = self.forward(delta, &mut pool)?;
            self.lap(&mut clock, |s| &mut s.solves);
            let z = self.gather(&solved, len)?;
            self.lap(&mut clock, |s| &mut s.read_back);
            out.extend(
                z.chunks(d)
                    .map(|row| row.iter().map(|v| v * v).sum::<f64>()),
            );
        }
        Ok(out)
    }

    /// `∇_y log p_σ(y) = −C⁻¹(y − μ)` at every point of the row-major `points`, row-major.
    pub fn score_rows(&self, points: &[f64], n: usize) -> Result<Vec<f64>> {
        Ok(self
            .solved_rows(points, n)?
            .into_iter()
            .map(|v| -v)
            .collect())
    }

    /// `E[x | y] = y − σ²C⁻¹(y − μ)` at every point of the row-major `points`, row-major.
    pub fn posterior_mean_rows(&self, points: &[f64], n: usize) -> Result<Vec<f64>> {
        let s = self.solved_rows(points, n)?;
        Ok(points.iter().zip(s).map(|(y, v)| y - self.s2 * v).collect())
    }

    /// `log p_σ(y) = −½(d log 2π + log det C + ‖L⁻¹(y − μ)‖²)` at every point of the
    /// row-major `points`.
    pub fn log_density_rows(&self, points: &[f64], n: usize) -> Result<Vec<f64>> {
        let d = self.mean.len() as f64;
        Ok(self
            .quadratic_forms_rows(points, n)?
            .into_iter()
            .map(|q| -0.5 * (d * crate::targets::gmm::LN_2PI + self.log_det + q))
            .collect())
    }

    /// [`GpuNoisyGaussian::score_rows`] at the rows of `points` (n×d).
    pub fn score_batch(&self, points: &Mat) -> Result<Mat> {
        rows_to_mat(
            self.score_rows(&mat_to_rows(points), points.nrows())?,
            points,
        )
    }

    /// [`GpuNoisyGaussian::posterior_mean_rows`] at the rows of `points` (n×d).
    pub fn posterior_mean_batch(&self, points: &Mat) -> Result<Mat> {
        rows_to_mat(
            self.posterior_mean_rows(&mat_to_rows(points), points.nrows())?,
            points,
        )
    }

    /// [`GpuNoisyGaussian::log_density_rows`] at the rows of `points` (n×d).
    pub fn log_density_batch(&self, points: &Mat) -> Result<Vec<f64>> {
        self.log_density_rows(&mat_to_rows(points), points.nrows())
    }
}

/// The row-major values of an n×d matrix.
fn mat_to_rows(m: &Mat) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect()
}

/// Row-major values back into a matrix shaped like `like`.
fn rows_to_mat(values: Vec<f64>, like: &Mat) -> Result<Mat> {
    let (n, d) = (like.nrows(), like.ncols());
    if values.len() != n * d {
        return Err(Error::DimensionMismatch {
            what: "row-major values".into(),
            expected: n * d,
            got: values.len(),
        });
    }
    Ok(Mat::from_fn(n, d, |i, j| values[i * d + j]))
}
