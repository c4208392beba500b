//! The resident trainer ([`GpuTrainer`]): parameters, Adam state and one batch's work matrices
//! on the GPU; a chunk of training steps recorded into one submission.

use super::*;

/// One layer on the GPU: `W_a` (out×in_main), `w_s` (out×1, σ layers), b (1×out) with their
/// Adam state, the output H and the gradient dZ (m×out), `P = s·w_sᵀ` (σ layers) and the
/// column-sum parameters of `∇b = colsum dZ`.
struct LayerState {
    w: Tensor,
    ws: Option<Tensor>,
    b: Tensor,
    activation: Activation,
    h: GpuMat,
    dz: GpuMat,
    p: Option<GpuMat>,
    sum: wgpu::Buffer,
    sum_groups: [u32; 3],
}

impl LayerState {
    /// The layer's tensors in the flat layout's order of blocks: `W_a`, `w_s`, b.
    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        std::iter::once(&self.w)
            .chain(&self.ws)
            .chain(std::iter::once(&self.b))
    }
}

/// One batch's data on the GPU: Y (m×n), s (m×1), X (m×n), the weights w (m).
struct BatchData {
    y: GpuMat,
    s: GpuMat,
    x: GpuMat,
    w: wgpu::Buffer,
}

/// The products of one step: the forward ones in order, and per layer its backward ones
/// (`∇W_a`, `∇w_s`, `dZ_{l−1}`).
struct StepProducts<'a> {
    forward: Vec<PreparedProduct<'a>>,
    backward: Vec<Vec<PreparedProduct<'a>>>,
}

/// An MLP ([`MlpLayer`]s) resident on the GPU with its Adam state and the work matrices of a
/// fixed batch size m (module doc).
pub struct GpuTrainer<'g> {
    gpu: &'g Gpu,
    dim: usize,
    batch: usize,
    adam: AdamConfig,
    step: u64,
    layers: Vec<LayerState>,
    row_sq: wgpu::Buffer,
    residual: wgpu::Buffer,
    loss_sum: wgpu::Buffer,
}

impl<'g> GpuTrainer<'g> {
    /// Uploads `layers` (checked by [`validate_layers`], rounded to f32) with zero Adam moments
    /// at step 0, for batches of `batch` rows.
    pub fn new(gpu: &'g Gpu, layers: &[MlpLayer], batch: usize, adam: AdamConfig) -> Result<Self> {
        adam.validate()?;
        let dim = validate_layers(layers)?;
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        if batch == 0 || batch > max {
            return Err(Error::InvalidArgument {
                what: "batch".into(),
                reason: format!(
                    "need 1 ≤ m ≤ {max} rows (one residual workgroup per row), got {batch}"
                ),
            });
        }
        let mut states = Vec::with_capacity(layers.len());
        for layer in layers {
            let (o, k) = (layer.weight.nrows(), layer.main_inputs());
            let w = Mat::from_fn(o, k, |q, c| layer.weight[(q, c)]);
            let ws = layer
                .sigma
                .then(|| {
                    Tensor::new(
                        gpu,
                        "mlp w_s",
                        &Mat::from_fn(o, 1, |q, _| layer.weight[(q, k)]),
                    )
                })
                .transpose()?;
            let sum_groups = groups_1d(gpu, o);
            let sum = ColumnSumParams {
                rows: batch as u32,
                cols: o as u32,
                grid_x: sum_groups[0],
                pad: 0,
            };
            states.push(LayerState {
                w: Tensor::new(gpu, "mlp W", &w)?,
                ws,
                b: Tensor::new(gpu, "mlp b", &Mat::from_fn(1, o, |_, q| layer.bias[q]))?,
                activation: layer.activation,
                h: GpuMat::poisoned(gpu, "mlp H", batch, o)?,
                dz: GpuMat::poisoned(gpu, "mlp dZ", batch, o)?,
                p: layer
                    .sigma
                    .then(|| GpuMat::poisoned(gpu, "mlp s·w_sᵀ", batch, o))
                    .transpose()?,
                sum: gpu.uniform("mlp bias gradient", &sum),
                sum_groups,
            });
        }
        let (act, slope) = layers[layers.len() - 1].activation.gpu_code();
        let residual = ResidualParams {
            rows: batch as u32,
            dim: dim as u32,
            act,
            slope: slope as f32,
            scale: (2.0 / batch as f64) as f32,
            ..ResidualParams::default()
        };
        let loss_sum = ColumnSumParams {
            rows: batch as u32,
            cols: 1,
            grid_x: 1,
            pad: 0,
        };
        Ok(Self {
            gpu,
            dim,
            batch,
            adam,
            step: 0,
            layers: states,
            row_sq: gpu.output("mlp row losses", batch)?,
            residual: gpu.uniform("mlp residual", &residual),
            loss_sum: gpu.uniform("mlp loss sum", &loss_sum),
        })
    }

    fn upload_batch(&self, b: &Batch) -> Result<BatchData> {
        b.validate(self.dim)?;
        if b.y.nrows() != self.batch {
            return Err(Error::DimensionMismatch {
                what: "batch rows".into(),
                expected: self.batch,
                got: b.y.nrows(),
            });
        }
        let column = |v: &[f64]| Mat::from_fn(v.len(), 1, |i, _| v[i]);
        let w: Vec<f32> = b.weight.iter().map(|&w| w as f32).collect();
        Ok(BatchData {
            y: GpuMat::upload(self.gpu, "batch y", &b.y)?,
            s: GpuMat::upload(self.gpu, "batch s", &column(&b.feature))?,
            x: GpuMat::upload(self.gpu, "batch x", &b.x)?,
            w: self.gpu.input("batch w", &w)?,
        })
    }

    /// The GEMMs of one step on `data` (module doc, steps 1 and 3).
    fn products<'a>(&'a self, data: &'a BatchData) -> Result<StepProducts<'a>> {
        let gpu = self.gpu;
        let input = |l: usize| {
            if l == 0 {
                &data.y
            } else {
                &self.layers[l - 1].h
            }
        };
        let mut forward = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let mut main = Product::new((input(l), false), (&layer.w.value, true), &layer.h);
            if let (Some(ws), Some(p)) = (&layer.ws, &layer.p) {
                forward.push(Product::new((&data.s, false), (&ws.value, true), p).prepare(gpu)?);
                main = main.plus(1.0, p);
            }
            forward.push(
                main.with(Epilogue::Activation {
                    bias: Bias::PerColumn(&layer.b.value),
                    activation: layer.activation,
                })
                .prepare(gpu)?,
            );
        }
        let mut backward = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let mut own = vec![
                Product::new((&layer.dz, true), (input(l), false), &layer.w.grad).prepare(gpu)?,
            ];
            if let Some(ws) = &layer.ws {
                own.push(Product::new((&layer.dz, true), (&data.s, false), &ws.grad).prepare(gpu)?);
            }
            if l > 0 {
                let prev = &self.layers[l - 1];
                own.push(
                    Product::new((&layer.dz, false), (&layer.w.value, false), &prev.dz)
                        .with(Epilogue::DerivativeMask {
                            activation: prev.activation,
                            output: &prev.h,
                        })
                        .prepare(gpu)?,
                );
            }
            backward.push(own);
        }
        Ok(StepProducts { forward, backward })
    }

    /// The dispatches of one step without the update: forward, residual, backward and the loss
    /// sum into `loss_out`.
    fn step_dispatches<'a>(
        &'a self,
        data: &'a BatchData,
        products: &'a StepProducts<'a>,
        loss_out: &'a wgpu::Buffer,
    ) -> Vec<Dispatch<'a>> {
        let mut specs: Vec<Dispatch> = products
            .forward
            .iter()
            .flat_map(|p| p.dispatches())
            .collect();
        let last = &self.layers[self.layers.len() - 1];
        specs.push((
            &shaders::DENSE_RESIDUAL,
            vec![
                &self.residual,
                last.h.buffer(),
                data.x.buffer(),
                last.dz.buffer(),
                &self.row_sq,
                &data.w,
            ],
            [self.batch as u32, 1, 1],
        ));
        for (l, layer) in self.layers.iter().enumerate().rev() {
            specs.push((
                &shaders::DENSE_COLUMN_SUM,
                vec![&layer.sum, layer.dz.buffer(), layer.b.grad.buffer()],
                layer.sum_groups,
            ));
            specs.extend(products.backward[l].iter().flat_map(|p| p.dispatches()));
        }
        specs.push((
            &shaders::DENSE_COLUMN_SUM,
            vec![&self.loss_sum, &self.row_sq, loss_out],
            [1, 1, 1],
        ));
        specs
    }

    /// The number of parameters (the flat layout's length).
    fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .flat_map(LayerState::tensors)
            .map(|t| t.len)
            .sum()
    }

    /// Takes one Adam step per batch (forward, loss, backward, update), all recorded into one
    /// submission; returns the loss `(1/m)Σ_r w_r‖f(y_r) − x_r‖²` of each batch before its
    /// update.
    pub fn train(&mut self, batches: &[Batch]) -> Result<Vec<f64>> {
        let data: Vec<BatchData> = batches
            .iter()
            .map(|b| self.upload_batch(b))
            .collect::<Result<_>>()?;
        let loss_slots: Vec<wgpu::Buffer> = (0..batches.len())
            .map(|_| self.gpu.output("mlp loss", 1))
            .collect::<Result<_>>()?;
        let tensors: Vec<&Tensor> = self.layers.iter().flat_map(LayerState::tensors).collect();
        let adam: Vec<Vec<wgpu::Buffer>> = (0..batches.len())
            .map(|k| {
                let step = self.step + 1 + k as u64;
                tensors
                    .iter()
                    .map(|t| {
                        self.gpu
                            .uniform("adam", &adam_params(&self.adam, step, t.len))
                    })
                    .collect()
            })
            .collect();
        let products: Vec<StepProducts> = data
            .iter()
            .map(|d| self.products(d))
            .collect::<Result<_>>()?;
        let mut specs = Vec::new();
        for k in 0..batches.len() {
            specs.extend(self.step_dispatches(&data[k], &products[k], &loss_slots[k]));
            for (t, params) in tensors.iter().zip(&adam[k]) {
                specs.push(t.update(self.gpu, params));
            }
        }
        self.gpu.run_dispatches(&specs, 1)?;
        let mut out = Vec::with_capacity(batches.len());
        for slot in &loss_slots {
            out.push(f64::from(self.gpu.read::<f32>(slot, 1)?[0]) / self.batch as f64);
        }
        self.step += batches.len() as u64;
        Ok(out)
    }

    /// Forward and backward of one batch without updating: `(outputs m×n, loss, gradient in
    /// the flat layout)`.
    pub fn evaluate(&self, batch: &Batch) -> Result<(Mat, f64, Vec<f64>)> {
        let data = self.upload_batch(batch)?;
        let loss = self.gpu.output("mlp loss", 1)?;
        let products = self.products(&data)?;
        self.gpu
            .run_dispatches(&self.step_dispatches(&data, &products, &loss), 1)?;
        let out = self.layers[self.layers.len() - 1].h.download(self.gpu)?;
        let l: Vec<f32> = self.gpu.read(&loss, 1)?;
        let grad = self.flat(|t| {
            let g: Vec<f32> = self.gpu.read(t.grad.buffer(), t.len)?;
            Ok(g.iter().map(|&v| f64::from(v)).collect())
        })?;
        Ok((out, f64::from(l[0]) / self.batch as f64, grad))
    }

    /// The flat layout ([`flat_parameters`]) of a per-tensor quantity `get` (row-major values
    /// of each tensor): per layer, the rows of `[W_a | w_s]`, then b.
    fn flat(&self, get: impl Fn(&Tensor) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.parameter_count());
        for layer in &self.layers {
            let (o, k) = layer.w.value.shape();
            let w = get(&layer.w)?;
            let ws = layer.ws.as_ref().map(&get).transpose()?;
            for q in 0..o {
                out.extend(&w[q * k..(q + 1) * k]);
                if let Some(ws) = &ws {
                    out.push(ws[q]);
                }
            }
            out.extend(get(&layer.b)?);
        }
        Ok(out)
    }

    /// `(θ, Adam m, Adam v, step)` downloaded (as f64), in the flat layout.
    pub fn state(&self) -> Result<OptimizerState> {
        let wide = |x: &[f32]| -> Vec<f64> { x.iter().map(|&v| f64::from(v)).collect() };
        let part =
            |pick: fn(&AdamTensor) -> &[f32]| self.flat(|t| Ok(wide(pick(&t.state(self.gpu)?))));
        Ok(OptimizerState {
            theta: part(|s| &s.value)?,
            m: part(|s| &s.m)?,
            v: part(|s| &s.v)?,
            step: self.step,
        })
    }

    /// Restores a saved state (a checkpoint): vectors of the parameter count's length in the
    /// flat layout, finite, with `v ≥ 0`.
    pub fn set_state(&mut self, state: &OptimizerState) -> Result<()> {
        let p = self.parameter_count();
        for (what, x) in [
            ("theta", &state.theta),
            ("adam m", &state.m),
            ("adam v", &state.v),
        ] {
            crate::error::ensure_len(what, x, p)?;
            crate::error::ensure_finite(what, x)?;
        }
        let mut parts = Vec::new();
        let mut k = 0;
        // the rows × cols block at flat offset `at` with row stride `stride`
        let take = |at: usize, rows: usize, cols: usize, stride: usize| {
            let pick = |x: &[f64]| -> Vec<f32> {
                (0..rows)
                    .flat_map(|q| (0..cols).map(move |c| (q, c)))
                    .map(|(q, c)| x[at + q * stride + c] as f32)
                    .collect()
            };
            AdamTensor {
                value: pick(&state.theta),
                m: pick(&state.m),
                v: pick(&state.v),
            }
        };
        for layer in &self.layers {
            let (o, kw) = layer.w.value.shape();
            let i = kw + usize::from(layer.ws.is_some());
            parts.push(take(k, o, kw, i));
            if layer.ws.is_some() {
                parts.push(take(k + kw, o, 1, i));
            }
            k += o * i;
            parts.push(take(k, 1, o, o));
            k += o;
        }
        let tensors: Vec<&Tensor> = self.layers.iter().flat_map(LayerState::tensors).collect();
        for (t, s) in tensors.iter().zip(&parts) {
            t.check("MLP tensor", s)?;
        }
        for (t, s) in tensors.iter().zip(&parts) {
            t.write(self.gpu, s);
        }
        self.step = state.step;
        Ok(())
    }
}
