//! Adam (Kingma & Ba), the one optimizer of both GPU MLP trainers ([`crate::gpu::mlp`] and
//! [`crate::gpu::dense`]): the hyper-parameters [`AdamConfig`], the resident tensors it updates
//! (value, gradient and moments on the GPU), the kernel `mlp_adam` of `gpu/adam.wgsl` run on
//! host vectors ([`adam_step`]) and its f64 reference with the rounding bound
//! ([`adam_reference`]).
//!
//! One step at t ≥ 1 on gradient g: `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
//! `θ ← θ − lr·(m·c₁)/(√(v·c₂) + ε)` with the bias corrections `c_i = 1/(1 − β_iᵗ)`.

use super::gemm::GpuMat;
use super::uniforms::AdamParams;
use super::{groups_1d, shaders, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::numerics::gamma_f32;
use crate::numerics::F32_UNIT_ROUNDOFF as U;
use serde::{Deserialize, Serialize};

/// Adam hyper-parameters (Kingma & Ba).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε added to `√v̂`.
    pub eps: f64,
}

impl Default for AdamConfig {
    /// `lr = 10⁻³, β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸`.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// Refuses non-finite or out-of-range values, naming them.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr > 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps.is_finite()
            && self.eps > 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                what: "Adam".into(),
                reason: format!("need lr > 0, 0 ≤ β < 1, ε > 0, got {self:?}"),
            })
        }
    }
}

/// The Adam kernel's parameters at `step` (≥ 1) for a tensor of `count` values, as
/// [`adam_reference`] assumes them: β rounded to f32 first, so the reference can use the same
/// values (`1 − β` is then exact in f32 by Sterbenz inside the kernel); `c_i = 1/(1 − β_iᵗ)` in
/// f64, then rounded.
pub(crate) fn adam_params(adam: &AdamConfig, step: u64, count: usize) -> AdamParams {
    let b1 = f64::from(adam.beta1 as f32);
    let b2 = f64::from(adam.beta2 as f32);
    let t = i32::try_from(step).unwrap_or(i32::MAX);
    AdamParams {
        count: count as u32,
        lr: adam.lr as f32,
        beta1: b1 as f32,
        beta2: b2 as f32,
        eps: adam.eps as f32,
        c1: (1.0 / (1.0 - b1.powi(t))) as f32,
        c2: (1.0 / (1.0 - b2.powi(t))) as f32,
        ..AdamParams::default()
    }
}

/// One tensor's f32 values and Adam moments, row-major (a checkpoint's part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamTensor {
    /// θ.
    pub value: Vec<f32>,
    /// Adam's first moment m.
    pub m: Vec<f32>,
    /// Adam's second moment v.
    pub v: Vec<f32>,
}

/// A parameter tensor resident on the GPU: its value and gradient (matrices the GEMMs bind) and
/// Adam's moments (zero at creation).
pub(crate) struct Tensor {
    pub(crate) value: GpuMat,
    pub(crate) grad: GpuMat,
    m: wgpu::Buffer,
    v: wgpu::Buffer,
    pub(crate) len: usize,
}

impl Tensor {
    /// Uploads `value` (rounded to f32) with zero moments and a poisoned gradient.
    pub(crate) fn new(gpu: &Gpu, label: &str, value: &Mat) -> Result<Self> {
        let (r, c) = (value.nrows(), value.ncols());
        let zeros = vec![0.0f32; r * c];
        let m = gpu.output(label, r * c)?;
        let v = gpu.output(label, r * c)?;
        gpu.queue()
            .write_buffer(&m, 0, bytemuck::cast_slice(&zeros));
        gpu.queue()
            .write_buffer(&v, 0, bytemuck::cast_slice(&zeros));
        Ok(Self {
            value: GpuMat::upload(gpu, label, value)?,
            grad: GpuMat::poisoned(gpu, label, r, c)?,
            m,
            v,
            len: r * c,
        })
    }

    /// Value and moments downloaded.
    pub(crate) fn state(&self, gpu: &Gpu) -> Result<AdamTensor> {
        Ok(AdamTensor {
            value: gpu.read(self.value.buffer(), self.len)?,
            m: gpu.read(&self.m, self.len)?,
            v: gpu.read(&self.v, self.len)?,
        })
    }

    /// Refuses a saved state of another length, with a non-finite value or a negative v,
    /// naming the tensor `what`.
    pub(crate) fn check(&self, what: &str, s: &AdamTensor) -> Result<()> {
        for (part, x) in [("value", &s.value), ("m", &s.m), ("v", &s.v)] {
            if x.len() != self.len {
                return Err(Error::DimensionMismatch {
                    what: format!("checkpoint {what} {part}").into(),
                    expected: self.len,
                    got: x.len(),
                });
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!("checkpoint {what} {part}").into(),
                    index: i,
                    value: f64::from(x[i]),
                });
            }
        }
        if let Some(i) = s.v.iter().position(|v| *v < 0.0) {
            return Err(Error::InvalidArgument {
                what: format!("checkpoint {what} v").into(),
                reason: format!("Adam's second moment must be ≥ 0, got {} at {i}", s.v[i]),
            });
        }
        Ok(())
    }

    /// The value (`gradient = false`) or the gradient, f32 read back as f64.
    pub(crate) fn read(&self, gpu: &Gpu, gradient: bool) -> Result<Vec<f64>> {
        let buffer = if gradient {
            self.grad.buffer()
        } else {
            self.value.buffer()
        };
        let words: Vec<f32> = gpu.read(buffer, self.len)?;
        Ok(words.into_iter().map(f64::from).collect())
    }

    /// [`Tensor::read`] of every tensor.
    pub(crate) fn read_all(gpu: &Gpu, tensors: &[Tensor], gradient: bool) -> Result<Vec<Vec<f64>>> {
        tensors.iter().map(|t| t.read(gpu, gradient)).collect()
    }

    /// Writes Adam step `step`'s uniforms ([`adam_params`]) of each tensor into its buffer.
    pub(crate) fn write_steps(
        gpu: &Gpu,
        adam: &AdamConfig,
        step: u64,
        tensors: &[Tensor],
        buffers: &[wgpu::Buffer],
    ) {
        for (t, buffer) in tensors.iter().zip(buffers) {
            let u = adam_params(adam, step, t.len);
            gpu.queue().write_buffer(buffer, 0, bytemuck::bytes_of(&u));
        }
    }

    /// Writes a checked saved state (value and moments).
    pub(crate) fn write(&self, gpu: &Gpu, s: &AdamTensor) {
        let q = gpu.queue();
        q.write_buffer(self.value.buffer(), 0, bytemuck::cast_slice(&s.value));
        q.write_buffer(&self.m, 0, bytemuck::cast_slice(&s.m));
        q.write_buffer(&self.v, 0, bytemuck::cast_slice(&s.v));
    }

    /// The Adam step of this tensor with `params` ([`adam_params`] for its length).
    pub(crate) fn update<'a>(&'a self, gpu: &Gpu, params: &'a wgpu::Buffer) -> Dispatch<'a> {
        (
            &shaders::MLP_ADAM,
            vec![
                params,
                self.grad.buffer(),
                self.value.buffer(),
                &self.m,
                &self.v,
            ],
            groups_1d(gpu, self.len),
        )
    }
}

/// `(θ', m', v', bound θ', bound m', bound v')`: one Adam step and its bounds.
pub type AdamReference = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// One Adam step in f64 from f32-rounded inputs and hyper-parameters (what the kernel sees),
/// with elementwise bounds on the kernel's f32 error: `m' = β₁m + (1 − β₁)g` errs by
/// `γ₃(|β₁m| + |(1 − β₁)g|)` (two products and a sum; `1 − β₁` exact by Sterbenz) and
/// `v' = β₂v + (1 − β₂)g²` by `γ₄(β₂v + (1 − β₂)g²)` (the square adds one); the update
/// `δ = lr·(m'c₁)/(√(v'c₂) + ε)` has relative error at most `γ₈ + δm'/|m'| + δv'/(2v')` (its
/// ≤ 8 roundings, and m', v' entering linearly and under the square root), and `θ' = θ − δ`
/// adds `u|θ'|` for the subtraction, `u|θ|` for θ's own rounding and `γ₁|δ|`:
/// `|θ̂' − θ'| ≤ u(|θ'| + |θ|) + (γ₈ + δm'/|m'| + δv'/(2v'))|δ| + γ₁|δ|`.
pub fn adam_reference(
    adam: &AdamConfig,
    step: u64,
    theta: &[f64],
    grad: &[f64],
    m: &[f64],
    v: &[f64],
) -> AdamReference {
    let r = |x: f64| f64::from(x as f32);
    let (b1, b2) = (r(adam.beta1), r(adam.beta2));
    let c1 = r(1.0 / (1.0 - b1.powi(step as i32)));
    let c2 = r(1.0 / (1.0 - b2.powi(step as i32)));
    let (lr, eps) = (r(adam.lr), r(adam.eps));
    let mut out = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for k in 0..theta.len() {
        let (t, g, mk, vk) = (r(theta[k]), r(grad[k]), r(m[k]), r(v[k]));
        let m2 = b1 * mk + (1.0 - b1) * g;
        let v2 = b2 * vk + (1.0 - b2) * g * g;
        let em = gamma_f32(3) * ((b1 * mk).abs() + ((1.0 - b1) * g).abs());
        let ev = gamma_f32(4) * (b2 * vk + (1.0 - b2) * g * g);
        let upd = lr * (m2 * c1) / ((v2 * c2).sqrt() + eps);
        let rel = gamma_f32(8)
            + if m2 != 0.0 { em / m2.abs() } else { 0.0 }
            + if v2 > 0.0 { ev / (2.0 * v2) } else { 0.0 };
        let t2 = t - upd;
        out.0.push(t2);
        out.1.push(m2);
        out.2.push(v2);
        out.3
            .push(U * (t2.abs() + t.abs()) + rel * upd.abs() + gamma_f32(1) * upd.abs());
        out.4.push(em);
        out.5.push(ev);
    }
    out
}

/// One Adam step of the kernel on host vectors (upload θ, g, m, v; run `mlp_adam`; download):
/// `(θ', m', v')`, for the parity test against [`adam_reference`].
pub fn adam_step(
    gpu: &Gpu,
    adam: &AdamConfig,
    step: u64,
    theta: &[f64],
    grad: &[f64],
    m: &[f64],
    v: &[f64],
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    adam.validate()?;
    let p = theta.len();
    for (what, x) in [("gradient", grad), ("adam m", m), ("adam v", v)] {
        crate::error::ensure_len(what, x, p)?;
    }
    if step == 0 {
        return Err(Error::InvalidArgument {
            what: "Adam step".into(),
            reason: "steps count from 1, got 0".into(),
        });
    }
    let row = |x: &[f64]| Mat::from_fn(1, p, |_, j| x[j]);
    let tensor = Tensor::new(gpu, "adam theta", &row(theta))?;
    let f = |x: &[f64]| -> Vec<f32> { x.iter().map(|&v| v as f32).collect() };
    let q = gpu.queue();
    if p > 0 {
        q.write_buffer(tensor.grad.buffer(), 0, bytemuck::cast_slice(&f(grad)));
        q.write_buffer(&tensor.m, 0, bytemuck::cast_slice(&f(m)));
        q.write_buffer(&tensor.v, 0, bytemuck::cast_slice(&f(v)));
    }
    let params = gpu.uniform("adam", &adam_params(adam, step, p));
    gpu.run_dispatches(&[tensor.update(gpu, &params)], 1)?;
    let s = tensor.state(gpu)?;
    let wide = |x: &[f32]| -> Vec<f64> { x.iter().map(|&v| f64::from(v)).collect() };
    Ok((wide(&s.value), wide(&s.m), wide(&s.v)))
}
