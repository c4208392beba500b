//! Wrapper of `gpu/mlp.wgsl`: forward, backward and Adam of a [`BottleneckNet`] on the GPU in
//! f32, recorded once per chunk of training steps and replayed in one submission; and the f64
//! references of the same computations with first-order running error bounds, which the parity
//! tests compare against.
//!
//! Error model (u = 2⁻²⁴, γ_k = ku/(1 − ku), first order in u): inputs and weights are rounded
//! to f32 (one u each, folded into γ); a dot product of k terms plus bias errs by
//! `γ_{k+2}(|W||a| + |b|) + |W|δa`; tanh (as `1 − 2/(e^{2z}+1)`, WGSL's exp within `3 + 2|x|`
//! ulp) by `(6 + 2|z|)u`; a leaky/ReLU derivative is uncertain by `|1 − slope|` where
//! `|z| ≤ δz` (the f32 and f64 pre-activation may sit on opposite sides of the kink).

use super::uniforms::{AdamParams, LayerParams};
use super::{grid_for, shaders, Gpu, WORKGROUP_SIZE};
use crate::denoisers::bottleneck::{sigma_feature, Architecture, BottleneckNet};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::numerics::activation::Activation;
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

/// Parameters and Adam state: θ (layout of `BottleneckNet::parameters`), first and second
/// moments m, v, and the number of steps taken (the next step is `step + 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// θ.
    pub theta: Vec<f64>,
    /// Adam's m.
    pub m: Vec<f64>,
    /// Adam's v.
    pub v: Vec<f64>,
    /// Steps taken.
    pub step: u64,
}

/// One training batch: noisy inputs y (m×n), noise levels σ (m), clean targets x (m×n) and
/// per-row loss weights w (m): the loss is `(1/m)Σ_p w_p‖f(y_p, σ_p) − x_p‖²`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// y.
    pub y: Mat,
    /// σ per row.
    pub sigma: Vec<f64>,
    /// x.
    pub x: Mat,
    /// w per row (1 for the plain denoising loss).
    pub weight: Vec<f64>,
}

impl Batch {
    fn validate(&self, dim: usize) -> Result<()> {
        let m = self.y.nrows();
        if self.y.ncols() != dim || self.x.ncols() != dim || self.x.nrows() != m {
            return Err(Error::DimensionMismatch {
                what: "batch columns (y and x must be m×n)".into(),
                expected: dim,
                got: self.y.ncols().max(self.x.ncols()),
            });
        }
        if self.sigma.len() != m || self.weight.len() != m || m == 0 {
            return Err(Error::DimensionMismatch {
                what: "batch noise levels and weights (one per row, at least one row)".into(),
                expected: m.max(1),
                got: if self.sigma.len() != m {
                    self.sigma.len()
                } else {
                    self.weight.len()
                },
            });
        }
        crate::error::ensure_finite("batch weights", &self.weight)?;
        if let Some(w) = self.weight.iter().find(|w| **w < 0.0) {
            return Err(Error::InvalidArgument {
                what: "batch weights".into(),
                reason: format!("must be ≥ 0, got {w}"),
            });
        }
        for &s in &self.sigma {
            crate::error::ensure_sigma(s)?;
        }
        linalg::ensure_finite_mat("batch y", &self.y)?;
        linalg::ensure_finite_mat("batch x", &self.x)
    }
}

fn flat(m: &Mat) -> Vec<f32> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| m[(i, j)] as f32)
        .collect()
}

fn filled(gpu: &Gpu, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let b = gpu.output(label, data.len())?;
    if !data.is_empty() {
        gpu.queue().write_buffer(&b, 0, bytemuck::cast_slice(data));
    }
    Ok(b)
}

/// Workgroups of `tile × tile` threads covering an x×y grid, within the per-dimension limit.
fn groups_2d(gpu: &Gpu, x: usize, y: usize, tile: usize) -> Result<[u32; 3]> {
    let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
    let g = [x.div_ceil(tile).max(1), y.div_ceil(tile).max(1)];
    if g.iter().any(|&v| v > max) {
        return Err(Error::GpuLimit(format!(
            "MLP layer grid {g:?} of {tile}×{tile} workgroups exceeds {max} per dimension"
        )));
    }
    Ok([g[0] as u32, g[1] as u32, 1])
}

fn groups_1d(gpu: &Gpu, n: usize) -> [u32; 3] {
    grid_for(
        (n as u32).div_ceil(WORKGROUP_SIZE),
        gpu.limits().max_compute_workgroups_per_dimension,
    )
}

/// The per-step data buffers of a batch.
struct BatchBuffers {
    y: wgpu::Buffer,
    s: wgpu::Buffer,
    x: wgpu::Buffer,
    w: wgpu::Buffer,
}

/// A bottleneck network resident on the GPU with its Adam state and the work buffers of a
/// fixed batch size m.
pub struct GpuTrainer<'g> {
    gpu: &'g Gpu,
    arch: Architecture,
    shapes: Vec<(usize, usize)>,
    offsets: Vec<usize>,
    batch: usize,
    adam: AdamConfig,
    step: u64,
    theta: wgpu::Buffer,
    grad: wgpu::Buffer,
    m: wgpu::Buffer,
    v: wgpu::Buffer,
    /// z_l and a_{l+1} per layer, δz per layer.
    z: Vec<wgpu::Buffer>,
    a: Vec<wgpu::Buffer>,
    dz: Vec<wgpu::Buffer>,
    sq: wgpu::Buffer,
    layer_params: Vec<wgpu::Buffer>,
    input_params: Vec<wgpu::Buffer>,
    loss_params: wgpu::Buffer,
    sum_params: wgpu::Buffer,
}

impl<'g> GpuTrainer<'g> {
    /// Uploads `net` (rounded to f32) with zero Adam moments at step 0, for batches of `batch`
    /// rows.
    pub fn new(gpu: &'g Gpu, net: &BottleneckNet, batch: usize, adam: AdamConfig) -> Result<Self> {
        adam.validate()?;
        if batch == 0 {
            return Err(Error::InvalidArgument {
                what: "batch".into(),
                reason: "need at least one row, got 0".into(),
            });
        }
        let arch = net.architecture().clone();
        let shapes = arch.layer_shapes();
        let offsets: Vec<usize> = shapes
            .iter()
            .scan(0, |k, &(o, i)| {
                let s = *k;
                *k += o * (i + 1);
                Some(s)
            })
            .collect();
        let p = arch.parameter_count();
        let theta32: Vec<f32> = net.parameters().iter().map(|&v| v as f32).collect();
        let theta = filled(gpu, "mlp theta", &theta32)?;
        let grad = gpu.output("mlp grad", p)?;
        let m = filled(gpu, "adam m", &vec![0.0; p])?;
        let v = filled(gpu, "adam v", &vec![0.0; p])?;
        let mut z = vec![];
        let mut a = vec![];
        let mut dz = vec![];
        let mut layer_params = vec![];
        let mut input_params = vec![];
        for (l, &(o, i)) in shapes.iter().enumerate() {
            z.push(gpu.output("mlp z", batch * o)?);
            a.push(gpu.output("mlp a", batch * o)?);
            dz.push(gpu.output("mlp dz", batch * o)?);
            let k_main = if arch.takes_sigma(l) { i - 1 } else { i };
            let (act, slope) = arch.activation(l).gpu_code();
            let params = |act: u32, slope: f64| LayerParams {
                m: batch as u32,
                n_out: o as u32,
                k: i as u32,
                k_main: k_main as u32,
                act,
                w_offset: offsets[l] as u32,
                slope: slope as f32,
                scale: 0.0,
            };
            layer_params.push(gpu.uniform("mlp layer", &params(act, slope)));
            let (pact, pslope) = if l > 0 {
                arch.activation(l - 1).gpu_code()
            } else {
                (0, 0.0)
            };
            input_params.push(gpu.uniform("mlp input grad", &params(pact, pslope)));
        }
        let (act, slope) = arch.output.gpu_code();
        let loss_params = gpu.uniform(
            "mlp loss",
            &LayerParams {
                m: batch as u32,
                n_out: arch.dim as u32,
                k: 0,
                k_main: 0,
                act,
                w_offset: 0,
                slope: slope as f32,
                scale: (2.0 / batch as f64) as f32,
            },
        );
        let sum_params = gpu.uniform(
            "mlp sum",
            &LayerParams {
                m: (batch * arch.dim) as u32,
                n_out: 0,
                k: 0,
                k_main: 0,
                act: 0,
                w_offset: 0,
                slope: 0.0,
                scale: 0.0,
            },
        );
        Ok(Self {
            gpu,
            sq: gpu.output("mlp squared residuals", batch * arch.dim)?,
            arch,
            shapes,
            offsets,
            batch,
            adam,
            step: 0,
            theta,
            grad,
            m,
            v,
            z,
            a,
            dz,
            layer_params,
            input_params,
            loss_params,
            sum_params,
        })
    }

    fn upload_batch(&self, b: &Batch) -> Result<BatchBuffers> {
        b.validate(self.arch.dim)?;
        if b.y.nrows() != self.batch {
            return Err(Error::DimensionMismatch {
                what: "batch rows".into(),
                expected: self.batch,
                got: b.y.nrows(),
            });
        }
        let s: Vec<f32> = b.sigma.iter().map(|&v| sigma_feature(v) as f32).collect();
        Ok(BatchBuffers {
            y: filled(self.gpu, "batch y", &flat(&b.y))?,
            s: filled(self.gpu, "batch s", &s)?,
            x: filled(self.gpu, "batch x", &flat(&b.x))?,
            w: filled(
                self.gpu,
                "batch w",
                &b.weight.iter().map(|&w| w as f32).collect::<Vec<_>>(),
            )?,
        })
    }

    /// The jobs of forward, loss, backward and loss reduction for one batch.
    #[allow(clippy::type_complexity)]
    fn step_jobs<'a>(
        &'a self,
        data: &'a BatchBuffers,
        loss_out: &'a wgpu::Buffer,
    ) -> Result<Vec<(&'static shaders::Shader, Vec<&'a wgpu::Buffer>, [u32; 3])>> {
        let gpu = self.gpu;
        let n_layers = self.shapes.len();
        let mut jobs = Vec::new();
        for l in 0..n_layers {
            let input = if l == 0 { &data.y } else { &self.a[l - 1] };
            jobs.push((
                &shaders::MLP_FORWARD,
                vec![
                    &self.layer_params[l],
                    input,
                    &data.s,
                    &self.theta,
                    &self.z[l],
                    &self.a[l],
                ],
                groups_2d(gpu, self.shapes[l].0, self.batch, 16)?,
            ));
        }
        let last = n_layers - 1;
        jobs.push((
            &shaders::MLP_LOSS_GRAD,
            vec![
                &self.loss_params,
                &self.a[last],
                &self.z[last],
                &data.x,
                &self.dz[last],
                &self.sq,
                &data.w,
            ],
            groups_1d(gpu, self.batch * self.arch.dim),
        ));
        for l in (0..n_layers).rev() {
            let (o, i) = self.shapes[l];
            let input = if l == 0 { &data.y } else { &self.a[l - 1] };
            jobs.push((
                &shaders::MLP_WEIGHT_GRAD,
                vec![
                    &self.layer_params[l],
                    &self.dz[l],
                    input,
                    &data.s,
                    &self.grad,
                ],
                groups_2d(gpu, i + 1, o, 8)?,
            ));
            if l > 0 {
                jobs.push((
                    &shaders::MLP_INPUT_GRAD,
                    vec![
                        &self.input_params[l],
                        &self.dz[l],
                        &self.theta,
                        &self.z[l - 1],
                        &self.dz[l - 1],
                    ],
                    groups_2d(gpu, self.shapes[l - 1].0, self.batch, 8)?,
                ));
            }
        }
        jobs.push((
            &shaders::MLP_SUM,
            vec![&self.sum_params, &self.sq, loss_out],
            [1, 1, 1],
        ));
        Ok(jobs)
    }

    /// Takes one Adam step per batch (forward, loss, backward, update), all recorded into one
    /// submission; returns the loss `(1/m)Σ‖f(y) − x‖²` of each batch before its update.
    pub fn train(&mut self, batches: &[Batch]) -> Result<Vec<f64>> {
        let data: Vec<BatchBuffers> = batches
            .iter()
            .map(|b| self.upload_batch(b))
            .collect::<Result<_>>()?;
        let loss_slots: Vec<wgpu::Buffer> = (0..batches.len())
            .map(|_| self.gpu.output("mlp loss", 1))
            .collect::<Result<_>>()?;
        let adam: Vec<wgpu::Buffer> = (0..batches.len())
            .map(|k| {
                self.gpu.uniform(
                    "adam",
                    &adam_params(
                        &self.adam,
                        self.step + 1 + k as u64,
                        self.arch.parameter_count(),
                    ),
                )
            })
            .collect();
        let p = self.arch.parameter_count();
        let mut specs = Vec::new();
        for k in 0..batches.len() {
            specs.extend(self.step_jobs(&data[k], &loss_slots[k])?);
            specs.push((
                &shaders::MLP_ADAM,
                vec![&adam[k], &self.grad, &self.theta, &self.m, &self.v],
                groups_1d(self.gpu, p),
            ));
        }
        self.gpu.run_dispatches(&specs, 1)?;
        let mut out = Vec::with_capacity(batches.len());
        for slot in &loss_slots {
            out.push(f64::from(self.gpu.read::<f32>(slot, 1)?[0]) / self.batch as f64);
        }
        self.step += batches.len() as u64;
        Ok(out)
    }

    /// Forward and backward of one batch without updating: `(outputs m×n, loss, gradient)`.
    pub fn evaluate(&self, batch: &Batch) -> Result<(Mat, f64, Vec<f64>)> {
        let data = self.upload_batch(batch)?;
        let loss = self.gpu.output("mlp loss", 1)?;
        let specs = self.step_jobs(&data, &loss)?;
        self.gpu.run_dispatches(&specs, 1)?;
        let n = self.arch.dim;
        let out: Vec<f32> = self
            .gpu
            .read(&self.a[self.shapes.len() - 1], self.batch * n)?;
        let grad: Vec<f32> = self.gpu.read(&self.grad, self.arch.parameter_count())?;
        let l: Vec<f32> = self.gpu.read(&loss, 1)?;
        Ok((
            Mat::from_fn(self.batch, n, |i, j| f64::from(out[i * n + j])),
            f64::from(l[0]) / self.batch as f64,
            grad.iter().map(|&g| f64::from(g)).collect(),
        ))
    }

    /// `(θ, Adam m, Adam v, step)` downloaded (as f64).
    pub fn state(&self) -> Result<OptimizerState> {
        let p = self.arch.parameter_count();
        let read = |b: &wgpu::Buffer| -> Result<Vec<f64>> {
            Ok(self
                .gpu
                .read::<f32>(b, p)?
                .iter()
                .map(|&v| f64::from(v))
                .collect())
        };
        Ok(OptimizerState {
            theta: read(&self.theta)?,
            m: read(&self.m)?,
            v: read(&self.v)?,
            step: self.step,
        })
    }

    /// Restores a saved state (a checkpoint); vectors of the parameter count's length.
    pub fn set_state(&mut self, state: &OptimizerState) -> Result<()> {
        let p = self.arch.parameter_count();
        for (what, x) in [
            ("theta", &state.theta),
            ("adam m", &state.m),
            ("adam v", &state.v),
        ] {
            crate::error::ensure_len(what, x, p)?;
            crate::error::ensure_finite(what, x)?;
            let f: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let buffer = match what {
                "theta" => &self.theta,
                "adam m" => &self.m,
                _ => &self.v,
            };
            self.gpu
                .queue()
                .write_buffer(buffer, 0, bytemuck::cast_slice(&f));
        }
        self.step = state.step;
        Ok(())
    }

    /// The layer offsets into the flat parameter vector.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }
}

/// The Adam kernel's parameters at `step` (≥ 1), as [`adam_reference`] assumes them: β rounded
/// to f32 first, so the reference can use the same values (`1 − β` is then exact in f32 by
/// Sterbenz inside the kernel); `c_i = 1/(1 − β_iᵗ)` in f64, then rounded. Shared by this
/// trainer and [`crate::gpu::dense`].
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

/// Bound on `|φ(ẑ) − φ(z)|` beyond `Lip·δz`: the kernel's own rounding of φ.
fn act_rounding(act: Activation, z: f64, a: f64) -> f64 {
    match act {
        Activation::Identity => 0.0,
        Activation::Tanh => (6.0 + 2.0 * z.abs().min(15.0)) * U,
        _ => U * a.abs(),
    }
}

/// `(φ'(z), bound on |φ'(ẑ) − φ'(z)|)` for `|ẑ − z| ≤ δz`.
fn derivative_with_bound(act: Activation, z: f64, dz: f64) -> (f64, f64) {
    let d = act.derivative(z);
    let e = match act {
        Activation::Identity => 0.0,
        Activation::Tanh => 2.0 * (dz + (6.0 + 2.0 * z.abs().min(15.0)) * U) + 3.0 * U,
        Activation::Relu => f64::from(u8::from(z.abs() <= dz)),
        Activation::LeakyRelu { slope } => {
            if z.abs() <= dz {
                (1.0 - slope).abs()
            } else {
                0.0
            }
        }
    };
    (d, e)
}

/// The f64 reference of [`GpuTrainer::evaluate`] with elementwise bounds on the kernels' f32
/// error: `(outputs, output bounds, loss, loss bound, gradient, gradient bounds)`. Rows of the
/// batch are independent; the bounds are first-order running error bounds (module doc).
#[allow(clippy::type_complexity)]
pub fn reference_with_bounds(
    net: &BottleneckNet,
    batch: &Batch,
) -> Result<(Mat, Mat, f64, f64, Vec<f64>, Vec<f64>)> {
    let arch = net.architecture();
    batch.validate(arch.dim)?;
    let shapes = arch.layer_shapes();
    let (m, n) = (batch.y.nrows(), arch.dim);
    let mut out = Mat::zeros(m, n);
    let mut out_b = Mat::zeros(m, n);
    let p = arch.parameter_count();
    let mut grad = vec![0.0; p];
    let mut grad_mag = vec![0.0; p];
    let mut grad_prop = vec![0.0; p];
    let mut loss = 0.0;
    let mut loss_mag = 0.0;
    let mut loss_prop = 0.0;
    let offsets: Vec<usize> = shapes
        .iter()
        .scan(0, |k, &(o, i)| {
            let s = *k;
            *k += o * (i + 1);
            Some(s)
        })
        .collect();
    let scale = 2.0 / m as f64;
    for r in 0..m {
        let y = linalg::row(&batch.y, r);
        let s = sigma_feature(batch.sigma[r]);
        // forward with running bounds
        let mut inputs: Vec<Vec<f64>> = vec![];
        let mut input_err: Vec<Vec<f64>> = vec![];
        let mut pre: Vec<Vec<f64>> = vec![];
        let mut pre_err: Vec<Vec<f64>> = vec![];
        let mut a = y.clone();
        let mut ea: Vec<f64> = y.iter().map(|v| U * v.abs()).collect();
        for (l, layer) in net.layers().iter().enumerate() {
            if arch.takes_sigma(l) {
                a.push(s);
                // ln σ in f64 then rounded to f32.
                ea.push(U * s.abs() + f64::EPSILON * s.abs());
            }
            let act = arch.activation(l);
            let (o, i) = shapes[l];
            let mut z = vec![0.0; o];
            let mut ez = vec![0.0; o];
            for q in 0..o {
                let mut v = layer.bias[q];
                let mut mag = layer.bias[q].abs();
                let mut prop = 0.0;
                for c in 0..i {
                    let w = layer.weight[(q, c)];
                    v += w * a[c];
                    mag += w.abs() * (a[c].abs() + ea[c]);
                    prop += w.abs() * ea[c];
                }
                z[q] = v;
                ez[q] = gamma_f32(i + 2) * mag + prop;
            }
            let next: Vec<f64> = z.iter().map(|&v| act.apply(v)).collect();
            let enext: Vec<f64> = (0..o)
                .map(|q| act.lipschitz() * ez[q] + act_rounding(act, z[q], next[q]))
                .collect();
            inputs.push(a);
            input_err.push(ea);
            pre.push(z);
            pre_err.push(ez);
            a = next;
            ea = enext;
        }
        for j in 0..n {
            out[(r, j)] = a[j];
            out_b[(r, j)] = ea[j];
        }
        // loss and output δz
        let last = shapes.len() - 1;
        let mut dz = vec![0.0; n];
        let mut edz = vec![0.0; n];
        // w is rounded to f32 (relative u), so each weighted term carries one more u.
        let w = batch.weight[r];
        for j in 0..n {
            let res = a[j] - batch.x[(r, j)];
            let eres = ea[j] + U * batch.x[(r, j)].abs() + U * res.abs();
            loss += w * res * res;
            loss_mag += w * res * res;
            loss_prop += w * (2.0 * res.abs() * eres + eres * eres + U * res * res);
            let (d, ed) = derivative_with_bound(arch.output, pre[last][j], pre_err[last][j]);
            dz[j] = d * scale * w * res;
            edz[j] = scale * w * (d.abs() * (eres + 5.0 * U * res.abs()) + ed * (res.abs() + eres));
        }
        // backward
        for l in (0..shapes.len()).rev() {
            let (o, i) = shapes[l];
            let base = offsets[l];
            for q in 0..o {
                for c in 0..=i {
                    let (av, ae) = if c < i {
                        (inputs[l][c], input_err[l][c])
                    } else {
                        (1.0, 0.0)
                    };
                    let idx = if c < i {
                        base + q * i + c
                    } else {
                        base + o * i + q
                    };
                    grad[idx] += dz[q] * av;
                    grad_mag[idx] += (dz[q].abs() + edz[q]) * (av.abs() + ae);
                    grad_prop[idx] += av.abs() * edz[q] + dz[q].abs() * ae;
                }
            }
            if l == 0 {
                break;
            }
            let keep = shapes[l - 1].0;
            let prev_act = arch.activation(l - 1);
            let w = &net.layers()[l].weight;
            let mut ndz = vec![0.0; keep];
            let mut nedz = vec![0.0; keep];
            for c in 0..keep {
                let (mut acc, mut mag, mut prop) = (0.0, 0.0, 0.0);
                for q in 0..o {
                    acc += dz[q] * w[(q, c)];
                    mag += (dz[q].abs() + edz[q]) * w[(q, c)].abs();
                    prop += w[(q, c)].abs() * edz[q];
                }
                let eacc = gamma_f32(o + 2) * mag + prop;
                let (d, ed) = derivative_with_bound(prev_act, pre[l - 1][c], pre_err[l - 1][c]);
                ndz[c] = d * acc;
                nedz[c] = d.abs() * (eacc + U * acc.abs()) + ed * (acc.abs() + eacc);
            }
            dz = ndz;
            edz = nedz;
        }
    }
    let grad_bound: Vec<f64> = (0..p)
        .map(|k| gamma_f32(m + 2) * grad_mag[k] + grad_prop[k])
        .collect();
    // The loss sum: m·n squares (one rounding each) summed by 64 strided partial sums of at
    // most ⌈mn/64⌉ terms and a 6-level tree, then divided by m.
    let terms = (m * n).div_ceil(64) + 6 + 2;
    let loss_bound = (gamma_f32(terms) * loss_mag + loss_prop) / m as f64 + U * loss / m as f64;
    Ok((out, out_b, loss / m as f64, loss_bound, grad, grad_bound))
}

/// One Adam step in f64 from f32-rounded inputs and hyper-parameters (what the kernel sees),
/// with the bound `2u|θ'| + γ₁₂|lr·m̂/(√v̂ + ε)|` on θ' (each of the ≤ 12 operations of the
/// update rounds once, relative) and `γ₄(|β m| + |(1−β)g|)`-type bounds on m', v'.
/// Returns `(θ', m', v', bound θ', bound m', bound v')`.
#[allow(clippy::type_complexity)]
pub fn adam_reference(
    adam: &AdamConfig,
    step: u64,
    theta: &[f64],
    grad: &[f64],
    m: &[f64],
    v: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
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
        // relative errors of m2, v2 enter the update as (em/|m2|) and (ev/2v2)
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
    let f = |x: &[f64]| -> Vec<f32> { x.iter().map(|&v| v as f32).collect() };
    let bt = filled(gpu, "adam theta", &f(theta))?;
    let bg = filled(gpu, "adam grad", &f(grad))?;
    let bm = filled(gpu, "adam m", &f(m))?;
    let bv = filled(gpu, "adam v", &f(v))?;
    let params = gpu.uniform("adam", &adam_params(adam, step, p));
    gpu.dispatch(
        &shaders::MLP_ADAM,
        &[&params, &bg, &bt, &bm, &bv],
        groups_1d(gpu, p),
    )?;
    let read = |b: &wgpu::Buffer| -> Result<Vec<f64>> {
        Ok(gpu
            .read::<f32>(b, p)?
            .iter()
            .map(|&v| f64::from(v))
            .collect())
    };
    Ok((read(&bt)?, read(&bm)?, read(&bv)?))
}
