//! Wrapper of `gpu/rowwise.wgsl`: numerically stable row log-sum-exp and row softmax of an
//! m×n row-major matrix (max-shifted, one workgroup per row, any n; also across column blocks
//! held in separate buffers), row max-|·|, column sums, a broadcast row add and a streaming copy;
//! with the f64 references and the f32 error bounds their parity tests use.
//!
//! The row kernels read the matrix through an affine column shift ([`ColumnShift`])
//! `z_ij = scale·x_ij + shift·v_j`, so logits such as the empirical denoiser's
//! `(α/σ²)S_ij − (α²/2σ²)‖x_j‖²` are formed on the fly.
//!
//! ## Error bounds (u = 2⁻²⁴, `γ_k = k·u/(1 − k·u)`)
//! WGSL guarantees `exp(x)` within `3 + 2|x|` ULP, `log` within `2⁻²¹` absolute on
//! `[0.5, 2]` and 3 ULP elsewhere, `x/y` within 2.5 ULP; one ULP is at most `2u` relative.
//! For a row with exact logits z, `M = max z`, `d_k = z_k − M`, `p = softmax(z)`, a bound
//! `Δ_k ≥ |z̃_k − z_k|` on the kernel's logits (`Δ = γ₄(|scale·x| + |shift·v|)` for inputs
//! rounded to f32) and `δ = max_k Δ_k`:
//! * the shifted logit `fl(z̃_k − m̃)` and its `exp` carry a relative error
//!   `F_k = u·c_k + 2u(3 + 2c_k)`, `c_k = min(|d_k|, 88)` (below `e⁻⁸⁸` the result may
//!   underflow: an absolute error `< 2⁻¹²⁵` instead);
//! * the row sum `s = Σ_k exp(z̃_k − m̃)` is a per-invocation sequential sum of `⌈n_c/256⌉`
//!   terms followed by an 8-level tree, `γ_g` with `g = ⌈n_c/256⌉ + 8` for the widest block
//!   `n_c`; merging C column blocks (`s = s'e^{m'−m} + s_c e^{m_c−m}`) adds
//!   `(C − 1)(2u(3 + 2A) + 2u)`, `A = min(M − min_c m_c, 88)`; since `s ≥ 1` (the maximum
//!   contributes `e⁰`), underflowed terms add at most `n·2⁻¹²⁵` relative. Altogether
//!   `|log s̃ − log s| ≤ D = Σ_k p_k(e^{F_k} − 1) + γ_g + (C − 1)(2u(3 + 2A) + 2u) + n·2⁻¹²⁵`
//!   (the upper side by `log(1 + t) ≤ t`, the lower by Jensen);
//! * softmax: `p̃_k/p_k = e^{±E_k}` with `E_k = Δ_k + δ + F_k + 5u + D` (the shift by `m̃` cancels
//!   exactly; `LSE(z̃) − LSE(z)` is at most δ; 5u is the division), so
//!   `|p̃_k − p_k| ≤ p_k(e^{E_k} − 1)`, doubled for second-order terms, plus `2⁻¹²⁵`;
//! * log-sum-exp: `|lse~ − lse| ≤ δ + D + 2⁻²¹ + 6u·log s + u|lse|`, doubled.

use super::gemm::GpuMat;
use super::uniforms::{ColumnSumParams, RowParams};
use super::{grid_for, shaders, Gpu, Job};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::numerics::gamma_f32;
use crate::numerics::F32_UNIT_ROUNDOFF;

/// Invocations per workgroup of every kernel in `gpu/rowwise.wgsl`.
pub const ROW_WORKGROUP: u32 = 256;

/// `2⁻¹²⁵`: bounds the absolute error of an `exp` that underflows f32 (`e^x < 2⁻¹²⁶` may be
/// flushed to zero) plus the value it stood for when `x < −88`.
pub const UNDERFLOW: f64 = 2.350_988_701_644_575e-38;

/// The affine column shift a row kernel applies before reducing: `z_ij = scale·x_ij + shift·v_j`
/// with `v` a vector of the matrix's column count (any shape with that many entries; read
/// only when `shift ≠ 0`).
#[derive(Debug, Clone, Copy)]
pub struct ColumnShift<'a> {
    /// The factor on every entry.
    pub scale: f64,
    /// The factor on `v`.
    pub shift: f64,
    /// The per-column vector; required when `shift ≠ 0`.
    pub v: Option<&'a GpuMat>,
}

impl ColumnShift<'_> {
    /// `z = x` (scale 1, no shift).
    pub fn identity() -> Self {
        Self {
            scale: 1.0,
            shift: 0.0,
            v: None,
        }
    }
}

/// `value` as an f32, refusing a non-finite value or one outside the f32 range.
fn to_f32(what: &'static str, value: f64) -> Result<f32> {
    if !value.is_finite() || value.abs() > f64::from(f32::MAX) {
        return Err(Error::InvalidArgument {
            what: what.into(),
            reason: format!("must be finite in f32 (|·| ≤ 3.4e38), got {value}"),
        });
    }
    Ok(value as f32)
}

fn to_u32(what: &str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::GpuLimit(format!("{what} = {value} exceeds u32")))
}

/// A parameter buffer and the grid of one kernel launch.
struct Launch {
    params: wgpu::Buffer,
    groups: [u32; 3],
}

/// Parameters and grid of one launch over `rows × cols` with `workgroups` workgroups (`rows`
/// for the row kernels, one per row; `⌈elements/256⌉` for the others), folded into a 2-D grid
/// within the per-dimension limit.
fn launch(
    gpu: &Gpu,
    (rows, cols): (usize, usize),
    workgroups: usize,
    accumulate: bool,
    (scale, shift): (f32, f32),
) -> Result<Launch> {
    let groups = grid_for(
        to_u32("workgroups", workgroups)?,
        gpu.limits().max_compute_workgroups_per_dimension,
    );
    let params = gpu.uniform(
        "rowwise params",
        &RowParams {
            rows: to_u32("rows", rows)?,
            cols: to_u32("columns", cols)?,
            grid_x: groups[0],
            accumulate: u32::from(accumulate),
            scale,
            shift,
            pad0: 0,
            pad1: 0,
        },
    );
    Ok(Launch { params, groups })
}

/// Checks a shift against a matrix of `cols` columns; returns (scale, shift) in f32 and the
/// buffer to bind for v (a one-word stand-in when there is no shift).
fn check_shift<'a>(
    shift: &ColumnShift<'a>,
    cols: usize,
    stand_in: &'a wgpu::Buffer,
) -> Result<(f32, f32, &'a wgpu::Buffer)> {
    let scale = to_f32("column-shift scale", shift.scale)?;
    let factor = to_f32("column-shift factor on v", shift.shift)?;
    let v = match shift.v {
        Some(v) => {
            let (r, c) = v.shape();
            if r * c != cols {
                return Err(Error::DimensionMismatch {
                    what: "column-shift vector v (entries)".into(),
                    expected: cols,
                    got: r * c,
                });
            }
            v.buffer()
        }
        None if factor != 0.0 => {
            return Err(Error::InvalidArgument {
                what: "column-shift vector v".into(),
                reason: format!("shift = {} needs a v", shift.shift),
            })
        }
        None => stand_in,
    };
    Ok((scale, factor, v))
}

fn ensure_columns(what: &'static str, cols: usize) -> Result<()> {
    if cols == 0 {
        return Err(Error::InvalidArgument {
            what: what.into(),
            reason: "a row reduction needs at least one column, got 0".into(),
        });
    }
    Ok(())
}

/// One row kernel (`row_logsumexp` or `row_softmax`) on `x` into a fresh poisoned output of
/// `out_cols` columns.
fn row_kernel(
    gpu: &Gpu,
    shader: &shaders::Shader,
    x: &GpuMat,
    shift: &ColumnShift,
    out_cols: usize,
) -> Result<GpuMat> {
    let (rows, cols) = x.shape();
    ensure_columns(shader.entry_point, cols)?;
    let stand_in = gpu.input("rowwise unused v", &[0.0f32])?;
    let (scale, factor, v) = check_shift(shift, cols, &stand_in)?;
    let out = GpuMat::poisoned(gpu, shader.entry_point, rows, out_cols)?;
    let l = launch(gpu, (rows, cols), rows, false, (scale, factor))?;
    gpu.dispatch(shader, &[&l.params, x.buffer(), v, out.buffer()], l.groups)?;
    Ok(out)
}

/// `lse_i = log Σ_j exp(z_ij)` for every row (rows × 1), max-shifted:
/// `m_i + log Σ_j exp(z_ij − m_i)`, `m_i = max_j z_ij`.
pub fn row_logsumexp(gpu: &Gpu, x: &GpuMat, shift: ColumnShift) -> Result<GpuMat> {
    row_kernel(gpu, &shaders::ROW_LOGSUMEXP, x, &shift, 1)
}

/// `p_ij = exp(z_ij − m_i)/Σ_k exp(z_ik − m_i)` (rows × cols), one kernel.
pub fn row_softmax(gpu: &Gpu, x: &GpuMat, shift: ColumnShift) -> Result<GpuMat> {
    let cols = x.shape().1;
    row_kernel(gpu, &shaders::ROW_SOFTMAX, x, &shift, cols)
}

/// Row softmax of a matrix stored as column blocks in separate buffers — block c holds columns
/// `n_0 + … + n_{c−1}` onwards, each with its own shift — written in place: one pass per block
/// for the running `(max, Σexp)` pair of every row, merged as
/// `m = max(m', m_c)`, `s = s'e^{m'−m} + s_c e^{m_c−m}`, then one pass per block writing
/// `exp(z_ij − m_i)/s_i`. All 2C passes go in one submission.
pub fn row_softmax_blocks(gpu: &Gpu, blocks: &[(&GpuMat, ColumnShift)]) -> Result<()> {
    let Some((first, _)) = blocks.first() else {
        return Err(Error::InvalidArgument {
            what: "softmax column blocks".into(),
            reason: "need at least one block, got 0".into(),
        });
    };
    let rows = first.shape().0;
    let stand_in = gpu.input("rowwise unused v", &[0.0f32])?;
    let stats = gpu.output("softmax row stats", 2 * rows)?;
    // (stats launch, apply launch, v) per block
    let mut prepared = Vec::with_capacity(blocks.len());
    for (c, (x, shift)) in blocks.iter().enumerate() {
        let (r, cols) = x.shape();
        if r != rows {
            return Err(Error::DimensionMismatch {
                what: format!("rows of softmax column block {c}").into(),
                expected: rows,
                got: r,
            });
        }
        ensure_columns("softmax column block", cols)?;
        let (scale, factor, v) = check_shift(shift, cols, &stand_in)?;
        let stats_pass = launch(gpu, (rows, cols), rows, c > 0, (scale, factor))?;
        let apply_pass = launch(gpu, (rows, cols), rows, false, (scale, factor))?;
        prepared.push((stats_pass, apply_pass, v));
    }
    let stats_bindings: Vec<[&wgpu::Buffer; 4]> = blocks
        .iter()
        .zip(&prepared)
        .map(|((x, _), (l, _, v))| [&l.params, x.buffer(), *v, &stats])
        .collect();
    let apply_bindings: Vec<[&wgpu::Buffer; 4]> = blocks
        .iter()
        .zip(&prepared)
        .map(|((x, _), (_, l, v))| [&l.params, x.buffer(), *v, &stats])
        .collect();
    let jobs: Vec<Job> = stats_bindings
        .iter()
        .zip(&prepared)
        .map(|(b, (l, _, _))| Job {
            shader: &shaders::ROW_SOFTMAX_STATS,
            bindings: b,
            groups: l.groups,
        })
        .chain(
            apply_bindings
                .iter()
                .zip(&prepared)
                .map(|(b, (_, l, _))| Job {
                    shader: &shaders::ROW_SOFTMAX_APPLY,
                    bindings: b,
                    groups: l.groups,
                }),
        )
        .collect();
    gpu.dispatch_sequence(&jobs, 1)
}

/// `max_j |x_ij|` for every row (rows × 1).
pub fn row_max_abs(gpu: &Gpu, x: &GpuMat) -> Result<GpuMat> {
    let (rows, cols) = x.shape();
    ensure_columns("row_max_abs", cols)?;
    let out = GpuMat::poisoned(gpu, "row max abs", rows, 1)?;
    let l = launch(gpu, (rows, cols), rows, false, (1.0, 0.0))?;
    gpu.dispatch(
        &shaders::ROW_MAX_ABS,
        &[&l.params, x.buffer(), out.buffer()],
        l.groups,
    )?;
    Ok(out)
}

/// `Σ_i x_ij` for every column (1 × cols), one invocation per column summing sequentially
/// (the column-sum kernel of `gpu/dense.wgsl`, which the MLP trainers' bias gradients use).
pub fn col_sums(gpu: &Gpu, x: &GpuMat) -> Result<GpuMat> {
    let (rows, cols) = x.shape();
    let out = GpuMat::poisoned(gpu, "column sums", 1, cols)?;
    let groups = super::groups_1d(gpu, cols);
    let params = gpu.uniform(
        "column sums",
        &ColumnSumParams {
            rows: to_u32("rows", rows)?,
            cols: to_u32("columns", cols)?,
            grid_x: groups[0],
            pad: 0,
        },
    );
    gpu.dispatch(
        &shaders::DENSE_COLUMN_SUM,
        &[&params, x.buffer(), out.buffer()],
        groups,
    )?;
    Ok(out)
}

/// `x_ij ← x_ij + c·v_j` in place (v with as many entries as x has columns).
pub fn add_row_vector(gpu: &Gpu, x: &GpuMat, c: f64, v: &GpuMat) -> Result<()> {
    let (rows, cols) = x.shape();
    let (vr, vc) = v.shape();
    if vr * vc != cols {
        return Err(Error::DimensionMismatch {
            what: "row vector v (entries)".into(),
            expected: cols,
            got: vr * vc,
        });
    }
    let c = to_f32("row-vector factor c", c)?;
    let l = launch(
        gpu,
        (rows, cols),
        (rows * cols).div_ceil(ROW_WORKGROUP as usize),
        false,
        (1.0, c),
    )?;
    gpu.dispatch(
        &shaders::ADD_ROW_VECTOR,
        &[&l.params, v.buffer(), x.buffer()],
        l.groups,
    )
}

/// `dst ← src` with 16-byte loads and stores: the bandwidth probe of `diffusion-theorems bench`.
/// Both must have the same shape and a multiple of 4 entries.
pub fn copy(gpu: &Gpu, src: &GpuMat, dst: &GpuMat) -> Result<()> {
    if src.shape() != dst.shape() {
        return Err(Error::InvalidArgument {
            what: "copy destination".into(),
            reason: format!(
                "must be {:?} like the source, got {:?}",
                src.shape(),
                dst.shape()
            ),
        });
    }
    let (rows, cols) = src.shape();
    let words = rows * cols;
    if words % 4 != 0 {
        return Err(Error::InvalidArgument {
            what: "copy length".into(),
            reason: format!("the vec4 copy moves multiples of 4 words, got {words}"),
        });
    }
    let l = launch(
        gpu,
        (words / 4, 1),
        (words / 4).div_ceil(ROW_WORKGROUP as usize),
        false,
        (1.0, 0.0),
    )?;
    gpu.dispatch(
        &shaders::COPY_VEC4,
        &[&l.params, src.buffer(), dst.buffer()],
        l.groups,
    )
}

/// The f64 logits `z_ij = scale·x_ij + shift·v_j` of a row and the bound `γ₄(|scale·x_ij| +
/// |shift·v_j|)` on the kernel's (inputs rounded to f32, two products, one sum).
fn logits_with_bound(x: &Mat, i: usize, scale: f64, shift: f64, v: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let g4 = gamma_f32(4);
    (0..x.ncols())
        .map(|j| {
            let sv = if shift == 0.0 { 0.0 } else { shift * v[j] };
            let sx = scale * x[(i, j)];
            (sx + sv, g4 * (sx.abs() + sv.abs()))
        })
        .unzip()
}

fn check_reference_shift(x: &Mat, shift: f64, v: &[f64]) -> Result<()> {
    ensure_columns("row reduction reference", x.ncols())?;
    if shift != 0.0 {
        crate::error::ensure_len("column-shift vector v", v, x.ncols())?;
    }
    Ok(())
}

/// Error analysis of one row softmax (module docs): exact logits `z`, bounds `dz` on the
/// kernel's computed logits, and the widths of the column blocks the row is split into (one
/// block for [`row_softmax`] and [`row_logsumexp`]). Returns `(p, bound on |p̃ − p|, lse,
/// bound on |lse~ − lse|)`.
pub fn softmax_row_error(
    z: &[f64],
    dz: &[f64],
    block_cols: &[usize],
) -> Result<(Vec<f64>, Vec<f64>, f64, f64)> {
    let total: usize = block_cols.iter().sum();
    if total != z.len() || dz.len() != z.len() || z.is_empty() {
        return Err(Error::DimensionMismatch {
            what: "softmax row (logits, their bounds, block widths)".into(),
            expected: z.len(),
            got: if dz.len() != z.len() { dz.len() } else { total },
        });
    }
    let u = F32_UNIT_ROUNDOFF;
    let n = z.len();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
    let lse = m + s.ln();
    let p: Vec<f64> = z.iter().map(|v| (v - lse).exp()).collect();
    let f: Vec<f64> = z
        .iter()
        .map(|v| {
            let c = (m - v).min(88.0);
            u * c + 2.0 * u * (3.0 + 2.0 * c)
        })
        .collect();
    let widest = block_cols.iter().copied().max().unwrap_or(0);
    let sum_depth = widest.div_ceil(ROW_WORKGROUP as usize) + 8;
    let mut start = 0;
    let mut lowest_block_max = m;
    for &w in block_cols {
        if w > 0 {
            let bm = z[start..start + w]
                .iter()
                .cloned()
                .fold(f64::NEG_INFINITY, f64::max);
            lowest_block_max = lowest_block_max.min(bm);
        }
        start += w;
    }
    let a = (m - lowest_block_max).min(88.0);
    let merges = block_cols.len().saturating_sub(1) as f64;
    let denominator = p
        .iter()
        .zip(&f)
        .map(|(pk, fk)| pk * fk.exp_m1())
        .sum::<f64>()
        + gamma_f32(sum_depth)
        + merges * (2.0 * u * (3.0 + 2.0 * a) + 2.0 * u)
        + n as f64 * UNDERFLOW;
    let delta = dz.iter().cloned().fold(0.0, f64::max);
    let bound: Vec<f64> = (0..n)
        .map(|k| {
            let e = dz[k] + delta + f[k] + 5.0 * u + denominator;
            2.0 * p[k] * e.exp_m1() + UNDERFLOW
        })
        .collect();
    let lse_bound = 2.0 * (delta + denominator + 2f64.powi(-21) + 6.0 * u * s.ln() + u * lse.abs());
    Ok((p, bound, lse, lse_bound))
}

/// The f64 reference of [`row_logsumexp`] on a host matrix (the kernel's input is `x` rounded
/// to f32) and the bound of the module docs on the kernel's error: `(lse, bound)` per row.
pub fn row_logsumexp_reference(
    x: &Mat,
    scale: f64,
    shift: f64,
    v: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    check_reference_shift(x, shift, v)?;
    (0..x.nrows())
        .map(|i| {
            let (z, dz) = logits_with_bound(x, i, scale, shift, v);
            let (_, _, lse, bound) = softmax_row_error(&z, &dz, &[x.ncols()])?;
            Ok((lse, bound))
        })
        .collect::<Result<Vec<_>>>()
        .map(|pairs| pairs.into_iter().unzip())
}

/// The f64 reference of [`row_softmax`] (`block_cols = [cols]`) or of [`row_softmax_blocks`]
/// on the concatenation of its blocks (`block_cols` = their widths), with the elementwise bound
/// of the module docs: `(p, bound)`.
pub fn row_softmax_reference(
    x: &Mat,
    scale: f64,
    shift: f64,
    v: &[f64],
    block_cols: &[usize],
) -> Result<(Mat, Mat)> {
    check_reference_shift(x, shift, v)?;
    let (rows, cols) = (x.nrows(), x.ncols());
    let mut p = Mat::zeros(rows, cols);
    let mut bound = Mat::zeros(rows, cols);
    for i in 0..rows {
        let (z, dz) = logits_with_bound(x, i, scale, shift, v);
        let (pi, bi, _, _) = softmax_row_error(&z, &dz, block_cols)?;
        for j in 0..cols {
            p[(i, j)] = pi[j];
            bound[(i, j)] = bi[j];
        }
    }
    Ok((p, bound))
}

/// The f64 reference of [`row_max_abs`] and its bound `u·max_j|x_ij|` (the input's rounding
/// to f32; max and |·| are exact): `(value, bound)` per row.
pub fn row_max_abs_reference(x: &Mat) -> (Vec<f64>, Vec<f64>) {
    (0..x.nrows())
        .map(|i| {
            let m = (0..x.ncols()).map(|j| x[(i, j)].abs()).fold(0.0, f64::max);
            (m, F32_UNIT_ROUNDOFF * m)
        })
        .unzip()
}

/// The f64 reference of [`col_sums`] and its bound `γ_m Σ_i|x_ij|` (m inputs rounded to f32,
/// m − 1 sequential additions; Higham Lemma 3.1): `(value, bound)` per column.
pub fn col_sums_reference(x: &Mat) -> (Vec<f64>, Vec<f64>) {
    let g = gamma_f32(x.nrows());
    (0..x.ncols())
        .map(|j| {
            let s: f64 = (0..x.nrows()).map(|i| x[(i, j)]).sum();
            let a: f64 = (0..x.nrows()).map(|i| x[(i, j)].abs()).sum();
            (s, g * a)
        })
        .unzip()
}
