//! The f64 reference of one training batch (gather, forward, loss, backward) with first-order
//! running bounds on the f32 kernels' error.

use super::*;

/// The inputs of one batch as the gather kernel builds them, in f64.
#[derive(Debug, Clone)]
pub struct BatchInputs {
    /// `X_b`: the data rows of the epoch's permutation.
    pub x: Mat,
    /// `Y_b = α·X_b + σ·ε` with the CPU's ε.
    pub y: Mat,
    /// Elementwise bound on the kernel's `|Ŷ − Y|`:
    /// `γ₃(|αx| + |σ|(|ε| + Δε)) + |σ|Δε`, Δε = [`NORMAL_ABS_ERROR_F32`] (α, σ rounded to f32,
    /// two products and a sum, and the normal's own error).
    pub y_bound: Mat,
}

/// The reference of the gather: batch `batch` (of size `batch_size`, the last one shorter) of
/// epoch `epoch` for `data` (N×d, values as the GPU holds them, i.e. f32-representable).
pub fn batch_inputs_reference(
    data: &Mat,
    seed: u64,
    epoch: u64,
    (batch_size, batch): (usize, usize),
    alpha: f64,
    sigma: f64,
) -> Result<BatchInputs> {
    let (n, d) = (data.nrows(), data.ncols());
    let (start, rows) = batch_range(n, batch_size, batch)?;
    let perm = epoch_permutation(seed, epoch, n)?;
    let eps = batch_noise(seed, epoch, batch as u32, rows, d)?;
    let g3 = gamma_f32(3);
    let x = Mat::from_fn(rows, d, |r, j| data[(perm[start + r] as usize, j)]);
    let y = Mat::from_fn(rows, d, |r, j| alpha * x[(r, j)] + sigma * eps[r * d + j]);
    let y_bound = Mat::from_fn(rows, d, |r, j| {
        let e = eps[r * d + j].abs();
        g3 * ((alpha * x[(r, j)]).abs() + sigma.abs() * (e + NORMAL_ABS_ERROR_F32))
            + sigma.abs() * NORMAL_ABS_ERROR_F32
    });
    Ok(BatchInputs { x, y, y_bound })
}

/// `(start, rows)` of batch `batch` among N samples in batches of B, or an error naming it.
pub(crate) fn batch_range(n: usize, batch_size: usize, batch: usize) -> Result<(usize, usize)> {
    let count = n.div_ceil(batch_size.max(1));
    if batch_size == 0 || batch >= count {
        return Err(Error::InvalidArgument {
            what: "batch index".into(),
            reason: format!("{batch} with batch size {batch_size} and N = {n} ({count} batches)"),
        });
    }
    let start = batch * batch_size;
    Ok((start, batch_size.min(n - start)))
}

/// The f64 reference of one batch's forward and backward pass with elementwise bounds on the
/// GPU's f32 error ([`batch_reference`]).
#[derive(Debug, Clone)]
pub struct BatchReference {
    /// `X̂`.
    pub x_hat: Mat,
    /// Bound on `|X̂_gpu − X̂|`.
    pub x_hat_bound: Mat,
    /// `‖x̂_r − x_r‖²` per row.
    pub row_sq: Vec<f64>,
    /// Bound on the GPU's error in each.
    pub row_sq_bound: Vec<f64>,
    /// The gradient of `(1/B)Σ_r‖x̂_r − x_r‖²`.
    pub gradient: DenseParams,
    /// Elementwise bounds on the GPU's gradient error.
    pub gradient_bound: DenseParams,
}

/// The f64 forward and backward pass of one batch — clean rows `x`, noisy inputs `y` known to
/// within `y_bound` (from [`batch_inputs_reference`]), parameters as the GPU holds them — with
/// first-order running error bounds on the kernels' f32 results (u = 2⁻²⁴, γ_n = nu/(1 − nu)):
/// * a GEMM entry `Σ_l a_l b_l (+ bias)` over k terms: `γ_{k+1}Σ(|a| + δa)(|b| + δb) +
///   Σ(δa|b| + |a|δb)` (k products and additions, the bias addition);
/// * `H = φ(Z)`: `Lip(φ)·δZ + ρ_φ` ([`activation_rounding`]);
/// * residual `X̂ − X` (u), `G = fl(2/B)·res` (γ₂); the row sums of squares pass through
///   `⌈d/64⌉` strided additions and a 6-level tree: `γ_{⌈d/64⌉+7}Σ(|res| + δres)²` on top of
///   `Σ(2|res|δres + δres²)`;
/// * the mask `φ'` from H: [`derivative_from_output_error`] (tanh `1 − H²` errs by
///   `(2|H| + δH)δH + u(|H| + δH)² + u(|φ'| + (2|H| + δH)δH)`; a (leaky) ReLU mask is exact
///   unless `|Z| ≤ δZ`, where the f32 Z may sit across the kink, `|1 − slope|`, plus the slope's
///   rounding); `dZ = dH·φ'` adds one rounding;
/// * bias gradients are sequential column sums over the B rows (`γ_B`).
pub fn batch_reference(
    params: &DenseParams,
    activation: Activation,
    x: &Mat,
    y: &Mat,
    y_bound: &Mat,
) -> Result<BatchReference> {
    let (rows, d) = (x.nrows(), x.ncols());
    let h = params.b1.len();
    let shapes_ok = (y.nrows(), y.ncols()) == (rows, d)
        && (y_bound.nrows(), y_bound.ncols()) == (rows, d)
        && (params.w1.nrows(), params.w1.ncols()) == (h, d)
        && (params.w2.nrows(), params.w2.ncols()) == (d, h)
        && params.b2.len() == d;
    if !shapes_ok || rows == 0 {
        return Err(Error::InvalidArgument {
            what: "dense batch reference".into(),
            reason: format!(
                "need x, y, y_bound B×d (B ≥ 1), W₁ h×d, b₁ h, W₂ d×h, b₂ d; got x {rows}×{d}, \
                 y {}×{}, W₁ {}×{}, b₁ {h}, W₂ {}×{}, b₂ {}",
                y.nrows(),
                y.ncols(),
                params.w1.nrows(),
                params.w1.ncols(),
                params.w2.nrows(),
                params.w2.ncols(),
                params.b2.len()
            ),
        });
    }
    let (w1, w2) = (&params.w1, &params.w2);
    // forward: Z, H
    let mut z = Mat::zeros(rows, h);
    let mut ez = Mat::zeros(rows, h);
    let mut hh = Mat::zeros(rows, h);
    let mut eh = Mat::zeros(rows, h);
    for r in 0..rows {
        for q in 0..h {
            let mut acc = DotBound::new(params.b1[q]);
            for j in 0..d {
                acc.add((y[(r, j)], y_bound[(r, j)]), (w1[(q, j)], 0.0));
            }
            let (v, e) = acc.finish(1);
            z[(r, q)] = v;
            ez[(r, q)] = e;
            hh[(r, q)] = activation.apply(v);
            eh[(r, q)] = activation.lipschitz() * e + activation_rounding(activation, v);
        }
    }
    // X̂, residual, G, row sums of squares
    let scale = 2.0 / rows as f64;
    let mut x_hat = Mat::zeros(rows, d);
    let mut x_hat_bound = Mat::zeros(rows, d);
    let mut g = Mat::zeros(rows, d);
    let mut eg = Mat::zeros(rows, d);
    let mut row_sq = vec![0.0; rows];
    let mut row_sq_bound = vec![0.0; rows];
    let sum_rounding = gamma_f32(d.div_ceil(64) + 7);
    for r in 0..rows {
        let (mut mag, mut prop) = (0.0, 0.0);
        for j in 0..d {
            let mut acc = DotBound::new(params.b2[j]);
            for q in 0..h {
                acc.add((hh[(r, q)], eh[(r, q)]), (w2[(j, q)], 0.0));
            }
            let (v, e) = acc.finish(1);
            x_hat[(r, j)] = v;
            x_hat_bound[(r, j)] = e;
            let res = v - x[(r, j)];
            let eres = e + U * (res.abs() + e);
            g[(r, j)] = scale * res;
            eg[(r, j)] = scale * (eres + gamma_f32(2) * (res.abs() + eres));
            row_sq[r] += res * res;
            prop += 2.0 * res.abs() * eres + eres * eres;
            mag += (res.abs() + eres).powi(2);
        }
        row_sq_bound[r] = sum_rounding * mag + prop;
    }
    // ∇W₂ = Gᵀ·H, ∇b₂ = colsum G
    let mut dw2 = Mat::zeros(d, h);
    let mut edw2 = Mat::zeros(d, h);
    let mut db2 = vec![0.0; d];
    let mut edb2 = vec![0.0; d];
    for j in 0..d {
        for q in 0..h {
            let mut acc = DotBound::new(0.0);
            for r in 0..rows {
                acc.add((g[(r, j)], eg[(r, j)]), (hh[(r, q)], eh[(r, q)]));
            }
            (dw2[(j, q)], edw2[(j, q)]) = acc.finish(1);
        }
        let mut acc = DotBound::new(0.0);
        for r in 0..rows {
            acc.add((g[(r, j)], eg[(r, j)]), (1.0, 0.0));
        }
        (db2[j], edb2[j]) = acc.finish(0);
    }
    // dZ = (G·W₂) ⊙ φ'(H)
    let mut dz = Mat::zeros(rows, h);
    let mut edz = Mat::zeros(rows, h);
    for r in 0..rows {
        for q in 0..h {
            let mut acc = DotBound::new(0.0);
            for j in 0..d {
                acc.add((g[(r, j)], eg[(r, j)]), (w2[(j, q)], 0.0));
            }
            let (dh, edh) = acc.finish(1);
            let (hv, he) = (hh[(r, q)], eh[(r, q)]);
            let m = derivative_from_output(activation, hv);
            let em = derivative_from_output_error(activation, (z[(r, q)], ez[(r, q)]), (hv, he));
            dz[(r, q)] = dh * m;
            edz[(r, q)] =
                m.abs() * edh + em * (dh.abs() + edh) + U * (dh.abs() + edh) * (m.abs() + em);
        }
    }
    // ∇W₁ = dZᵀ·Y, ∇b₁ = colsum dZ
    let mut dw1 = Mat::zeros(h, d);
    let mut edw1 = Mat::zeros(h, d);
    let mut db1 = vec![0.0; h];
    let mut edb1 = vec![0.0; h];
    for q in 0..h {
        for j in 0..d {
            let mut acc = DotBound::new(0.0);
            for r in 0..rows {
                acc.add((dz[(r, q)], edz[(r, q)]), (y[(r, j)], y_bound[(r, j)]));
            }
            (dw1[(q, j)], edw1[(q, j)]) = acc.finish(1);
        }
        let mut acc = DotBound::new(0.0);
        for r in 0..rows {
            acc.add((dz[(r, q)], edz[(r, q)]), (1.0, 0.0));
        }
        (db1[q], edb1[q]) = acc.finish(0);
    }
    Ok(BatchReference {
        x_hat,
        x_hat_bound,
        row_sq,
        row_sq_bound,
        gradient: DenseParams {
            w1: dw1,
            b1: db1,
            w2: dw2,
            b2: db2,
        },
        gradient_bound: DenseParams {
            w1: edw1,
            b1: edb1,
            w2: edw2,
            b2: edb2,
        },
    })
}
