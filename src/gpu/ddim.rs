//! Wrapper of `gpu/ddim.wgsl`: DDIM (book eq.3.2.84 / 3.2.87) with an affine denoiser
//! `f(y; s) = W(s) y + b(s)` (e.g. [`OptimalAffine`]), all L steps on the GPU in f32, with the
//! f64 reference and the f32 error bound its parity test uses.

use super::gmm::F32_UNIT_ROUNDOFF;
use super::{grid_for, shaders, Gpu, POISON, WORKGROUP_SIZE};
use crate::denoisers::linear::OptimalAffine;
use crate::denoisers::Denoiser;
use crate::diffusion::samplers::step_coefficients;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_rows: u32,
    dim: u32,
    groups_x: u32,
    pad: u32,
    k: f32,
    a: f32,
    inv_alpha: f32,
    pad2: f32,
}

fn check(denoiser: &OptimalAffine, noise: &Mat) -> Result<()> {
    if noise.ncols() != denoiser.dim() {
        return Err(Error::DimensionMismatch {
            what: "initial noise (columns)".into(),
            expected: denoiser.dim(),
            got: noise.ncols(),
        });
    }
    linalg::ensure_finite_mat("initial noise", noise)
}

/// Runs DDIM on the GPU from `x_L = initial_scale·noise` (rows = samples). Each step re-poisons
/// its output buffer, so an element the kernel skipped reads back as NaN.
pub fn ddim_affine(
    gpu: &Gpu,
    schedule: &Schedule,
    denoiser: &OptimalAffine,
    noise: &Mat,
) -> Result<Mat> {
    check(denoiser, noise)?;
    let (n, d) = (noise.nrows(), noise.ncols());
    let words = n * d;
    let mut flat = Vec::with_capacity(words);
    for p in 0..n {
        flat.extend((0..d).map(|j| (schedule.initial_scale() * noise[(p, j)]) as f32));
    }
    let mut cur = gpu.output("ddim state A", words)?;
    let mut next = gpu.output("ddim state B", words)?;
    gpu.queue()
        .write_buffer(&cur, 0, bytemuck::cast_slice(&flat));
    let groups = grid_for(
        (words as u32).div_ceil(WORKGROUP_SIZE),
        gpu.limits().max_compute_workgroups_per_dimension,
    );
    for l in (1..=schedule.steps()).rev() {
        let s = schedule.denoiser_noise(l);
        let w = denoiser.weight(s)?;
        let b: Vec<f32> = denoiser.bias(s)?.iter().map(|&v| v as f32).collect();
        let wf: Vec<f32> = (0..d * d).map(|e| w[(e / d, e % d)] as f32).collect();
        let (k, a, _) = step_coefficients(schedule, l, false);
        let params = gpu.uniform(
            "ddim params",
            &Params {
                n_rows: n as u32,
                dim: d as u32,
                groups_x: groups[0],
                pad: 0,
                k: k as f32,
                a: a as f32,
                inv_alpha: (1.0 / schedule.alpha(l)) as f32,
                pad2: 0.0,
            },
        );
        let wb = gpu.input("ddim weight", &wf)?;
        let bb = gpu.input("ddim bias", &b)?;
        gpu.queue()
            .write_buffer(&next, 0, bytemuck::cast_slice(&vec![POISON; words.max(1)]));
        gpu.dispatch(
            &shaders::DDIM_AFFINE_STEP,
            &[&params, &cur, &wb, &bb, &next],
            groups,
        )?;
        std::mem::swap(&mut cur, &mut next);
    }
    let out = gpu.read::<f32>(&cur, words)?;
    Ok(Mat::from_fn(n, d, |p, j| f64::from(out[p * d + j])))
}

/// The f64 reference of [`ddim_affine`] (the same recursion, in f64) and an elementwise bound
/// on the kernel's f32 error, propagated step by step along the reference run (u = 2⁻²⁴,
/// `γ_m = mu/(1 − mu)`):
/// * initial state rounded to f32: `|Δx_L| ≤ u|x_L|`;
/// * W, b, k, a, 1/α rounded to f32 (relative u each) and the d-term f32 dot product:
///   `|Δf_i| ≤ γ_{d+3}(|b_i| + |1/α|Σ_j|W_ij||x_j|) + |1/α|Σ_j|W_ij||Δx_j|`;
/// * `x' = kx + af`: `|Δx'| ≤ γ_4(|k||x| + |a||f|) + |k||Δx| + |a||Δf|`;
///
/// and the final bound doubled to cover second-order terms.
pub fn ddim_affine_reference(
    schedule: &Schedule,
    denoiser: &OptimalAffine,
    noise: &Mat,
) -> Result<(Mat, Mat)> {
    check(denoiser, noise)?;
    let u = F32_UNIT_ROUNDOFF;
    let gamma = |m: usize| m as f64 * u / (1.0 - m as f64 * u);
    let (n, d) = (noise.nrows(), noise.ncols());
    let mut x = Mat::from_fn(n, d, |p, j| schedule.initial_scale() * noise[(p, j)]);
    let mut dx = Mat::from_fn(n, d, |p, j| u * x[(p, j)].abs());
    for l in (1..=schedule.steps()).rev() {
        let s = schedule.denoiser_noise(l);
        let w = denoiser.weight(s)?;
        let b = denoiser.bias(s)?;
        let (k, a, _) = step_coefficients(schedule, l, false);
        let inv_alpha = 1.0 / schedule.alpha(l);
        let mut nx = Mat::zeros(n, d);
        let mut ndx = Mat::zeros(n, d);
        for p in 0..n {
            for i in 0..d {
                let acc: f64 = (0..d).map(|j| w[(i, j)] * x[(p, j)]).sum();
                let abs_acc: f64 = (0..d).map(|j| (w[(i, j)] * x[(p, j)]).abs()).sum();
                let prop: f64 = (0..d).map(|j| w[(i, j)].abs() * dx[(p, j)]).sum();
                let f = b[i] + inv_alpha * acc;
                let df = gamma(d + 3) * (b[i].abs() + inv_alpha * abs_acc) + inv_alpha * prop;
                nx[(p, i)] = k * x[(p, i)] + a * f;
                ndx[(p, i)] = gamma(4) * (k.abs() * x[(p, i)].abs() + a.abs() * f.abs())
                    + k.abs() * dx[(p, i)]
                    + a.abs() * df;
            }
        }
        x = nx;
        dx = ndx;
    }
    let bound = Mat::from_fn(n, d, |p, j| 2.0 * dx[(p, j)]);
    Ok((x, bound))
}
