//! The resident trainer ([`DenseTrainer`]): data, network, Adam state and one batch's work
//! buffers on the GPU; an epoch recorded into one submission.

use super::reference::batch_range;
use super::*;

/// Draws one batch of noisy inputs with the gather kernel of `gpu/dense.wgsl`: row r of
/// `clean` (rows × dim) is row `permutation[start + r]` of the resident `data`, and row r of
/// `noisy` is `α·clean_r + σ·ε_r` with ε from Philox (`seed`, `stream`), counter block
/// `(batch, r, ·)` — the draw the trainer makes per batch, for callers outside it (the image
/// experiments). `params.grid_x` must be `groups[0]`.
pub(crate) fn gather_noisy(
    gpu: &Gpu,
    params: &GatherParams,
    permutation: &wgpu::Buffer,
    data: &wgpu::Buffer,
    clean: &wgpu::Buffer,
    noisy: &wgpu::Buffer,
    groups: [u32; 3],
) -> Result<()> {
    let uniform = gpu.uniform("dense gather", params);
    gpu.dispatch(
        &shaders::DENSE_GATHER,
        &[&uniform, permutation, data, clean, noisy],
        groups,
    )
}

/// One batch slot's gather uniforms, as [`write_epoch_gathers`] fills them: its rows, its first
/// position in the epoch's permutation, its grid's x extent and its uniform buffer.
pub(crate) struct GatherSlot<'b> {
    pub(crate) rows: usize,
    pub(crate) start: usize,
    pub(crate) grid_x: u32,
    pub(crate) buffer: &'b wgpu::Buffer,
}

/// Checks the N training images of a convolutional trainer (`what`: its name in messages):
/// rows of `dim` entries, N ≥ 1, the batch `batch` ≤ N, every entry finite and within f32's
/// range (naming the first that is not).
pub(crate) fn check_training_images(
    what: &str,
    images: &Mat,
    (shape, dim): (&dyn std::fmt::Display, usize),
    batch: usize,
) -> Result<()> {
    let (n, d) = (images.nrows(), images.ncols());
    if d != dim {
        return Err(Error::DimensionMismatch {
            what: format!("{what} image length for shape {shape}").into(),
            expected: dim,
            got: d,
        });
    }
    if n == 0 {
        return Err(Error::InvalidArgument {
            what: format!("{what} training images").into(),
            reason: "need N ≥ 1 images, got 0".into(),
        });
    }
    if batch > n {
        return Err(Error::InvalidArgument {
            what: format!("{what} batch size").into(),
            reason: format!("{batch} exceeds the N = {n} images"),
        });
    }
    let flat: Vec<f64> = (0..n)
        .flat_map(|i| (0..d).map(move |j| images[(i, j)]))
        .collect();
    crate::gpu::conv::ensure_operand(&format!("{what} training images"), &flat, n * d)
}

/// Reads back what one evaluated batch left: `(X_b, Y_b, ‖x̂_r − x_r‖² per image)` of the
/// batch's `rows` images of `dim` entries starting at row `start` of the squared errors.
pub(crate) fn read_batch(
    gpu: &Gpu,
    (clean, noisy, row_sq): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    (start, rows, dim): (usize, usize, usize),
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let wide = |v: Vec<f32>| -> Vec<f64> { v.into_iter().map(f64::from).collect() };
    let sq = wide(gpu.read(row_sq, start + rows)?);
    Ok((
        wide(gpu.read(clean, rows * dim)?),
        wide(gpu.read(noisy, rows * dim)?),
        sq[start..].to_vec(),
    ))
}

/// Writes epoch `epoch`'s permutation of the `samples` training rows into `permutation` and
/// each batch slot's gather uniforms (slot k draws `α·x + σ·ε` with ε from the epoch's Philox
/// stream, counter block k): the per-epoch uniforms every resident trainer rewrites before
/// replaying its recorded epoch. Errors: an epoch past the last one with its own streams.
pub(crate) fn write_epoch_gathers<'b>(
    gpu: &Gpu,
    permutation: &wgpu::Buffer,
    (seed, samples, epoch): (u64, usize, u64),
    (dim, alpha, sigma): (usize, f64, f64),
    slots: impl Iterator<Item = GatherSlot<'b>>,
) -> Result<()> {
    let perm = epoch_permutation(seed, epoch, samples)?;
    let q = gpu.queue();
    q.write_buffer(permutation, 0, bytemuck::cast_slice(&perm));
    let stream = noise_stream(seed, epoch)?;
    for (k, slot) in slots.enumerate() {
        let u = GatherParams {
            rows: slot.rows as u32,
            dim: dim as u32,
            start: slot.start as u32,
            batch: k as u32,
            stream: stream.stream,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            grid_x: slot.grid_x,
            alpha: alpha as f32,
            sigma: sigma as f32,
            ..GatherParams::default()
        };
        q.write_buffer(slot.buffer, 0, bytemuck::bytes_of(&u));
    }
    Ok(())
}

/// Replays a resident trainer's recorded epoch `epochs` times: before each, `prepare(epoch,
/// step)` rewrites its uniforms (`step` the Adam step of its first batch, `batches` steps an
/// epoch); then the batches' dispatches `specs` and the loss sum (the column-sum kernel with
/// `sum_params` over the per-image squared errors `row_sq` into `loss`) run as one submission,
/// and the summed squared error is reported as the mean over `samples` to `on_epoch(epoch,
/// loss)`. `epoch` and `step` advance by the epochs that completed, also when a later one
/// failed. Returns the losses.
#[allow(clippy::too_many_arguments)]
pub(crate) fn replay_epochs<'b>(
    gpu: &Gpu,
    mut specs: Vec<Dispatch<'b>>,
    (sum_params, row_sq, loss): (&'b wgpu::Buffer, &'b wgpu::Buffer, &'b wgpu::Buffer),
    (samples, batches): (usize, usize),
    (epoch, step): (&mut u64, &mut u64),
    epochs: usize,
    prepare: &mut dyn FnMut(u64, u64) -> Result<()>,
    on_epoch: &mut dyn FnMut(usize, f64),
) -> Result<Vec<f64>> {
    specs.push((
        &shaders::DENSE_COLUMN_SUM,
        vec![sum_params, row_sq, loss],
        [1, 1, 1],
    ));
    let mut losses = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        prepare(*epoch, *step + 1)?;
        gpu.run_dispatches(&specs, 1)?;
        let total: Vec<f32> = gpu.read(loss, 1)?;
        let mean = f64::from(total[0]) / samples as f64;
        on_epoch(*epoch as usize, mean);
        *step += batches as u64;
        *epoch += 1;
        losses.push(mean);
    }
    Ok(losses)
}

/// The work matrices of one batch shape.
struct Work {
    x: GpuMat,
    y: GpuMat,
    h: GpuMat,
    x_hat: GpuMat,
    g: GpuMat,
    dz: GpuMat,
}

impl Work {
    fn new(gpu: &Gpu, rows: usize, d: usize, h: usize) -> Result<Self> {
        Ok(Self {
            x: GpuMat::poisoned(gpu, "dense X_b", rows, d)?,
            y: GpuMat::poisoned(gpu, "dense Y_b", rows, d)?,
            h: GpuMat::poisoned(gpu, "dense H", rows, h)?,
            x_hat: GpuMat::poisoned(gpu, "dense X̂", rows, d)?,
            g: GpuMat::poisoned(gpu, "dense G", rows, d)?,
            dz: GpuMat::poisoned(gpu, "dense dZ", rows, h)?,
        })
    }

    /// The same buffers viewed with `rows` rows.
    fn leading(&self, rows: usize) -> Result<Self> {
        Ok(Self {
            x: self.x.leading_rows(rows)?,
            y: self.y.leading_rows(rows)?,
            h: self.h.leading_rows(rows)?,
            x_hat: self.x_hat.leading_rows(rows)?,
            g: self.g.leading_rows(rows)?,
            dz: self.dz.leading_rows(rows)?,
        })
    }
}

/// Per-batch uniforms: gather and Adam (rewritten every epoch), residual and column sums.
struct Slot {
    start: usize,
    rows: usize,
    gather: wgpu::Buffer,
    gather_groups: [u32; 3],
    residual: wgpu::Buffer,
    sum_d: wgpu::Buffer,
    sum_h: wgpu::Buffer,
    adam: [wgpu::Buffer; 4],
}

/// The one-hidden-layer dense trainer (module doc), holding the data, the network, Adam's state
/// and the work buffers of one batch on the GPU.
pub struct DenseTrainer<'g> {
    gpu: &'g Gpu,
    config: DenseConfig,
    dim: usize,
    samples: usize,
    data: GpuMat,
    /// W₁ (h×d), b₁ (1×h), W₂ (d×h), b₂ (1×d).
    tensors: [Tensor; 4],
    full: Work,
    short: Option<Work>,
    slots: Vec<Slot>,
    perm: wgpu::Buffer,
    row_sq: wgpu::Buffer,
    /// The residual's per-row loss weights: all 1.
    ones: wgpu::Buffer,
    loss: wgpu::Buffer,
    sum_params: wgpu::Buffer,
    sum_d_groups: [u32; 3],
    sum_h_groups: [u32; 3],
    seed: u64,
    step: u64,
    epoch: u64,
}

fn check_alpha_sigma(alpha: f64, sigma: f64) -> Result<()> {
    if !alpha.is_finite() {
        return Err(Error::InvalidArgument {
            what: "alpha".into(),
            reason: format!("must be finite, got {alpha}"),
        });
    }
    crate::error::ensure_sigma(sigma)
}

impl<'g> DenseTrainer<'g> {
    /// A network for the N×d clean images `data` (resident; shared, not copied), initialised as
    /// PyTorch's `nn.Linear`: every weight and bias of a layer with fan-in f drawn from
    /// `U(−1/√f, 1/√f)` (W₁, b₁, W₂, b₂ in that order from stream 0 of the seed), then rounded
    /// to f32; Adam's moments zero, step and epoch 0.
    pub fn new(gpu: &'g Gpu, data: &GpuMat, config: DenseConfig) -> Result<Self> {
        config.validate()?;
        let (n, d) = data.shape();
        let (h, b) = (config.hidden, config.batch);
        if n == 0 || d == 0 {
            return Err(Error::InvalidArgument {
                what: "training data".into(),
                reason: format!("need N ≥ 1 rows of d ≥ 1 pixels, got {n}×{d}"),
            });
        }
        if b > n {
            return Err(Error::InvalidArgument {
                what: "batch size".into(),
                reason: format!("{b} exceeds the N = {n} samples"),
            });
        }
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        if b > max
            || n.checked_mul(d.max(h))
                .is_none_or(|v| v > u32::MAX as usize)
        {
            return Err(Error::GpuLimit(format!(
                "dense trainer: batch {b} (one workgroup per row, ≤ {max}) or N·max(d, h) = \
                 {n}·{} (u32 indices)",
                d.max(h)
            )));
        }
        let mut rng = Rng::new(config.seed, INIT_STREAM);
        let mut row_major = |rows: usize, cols: usize, fan_in: usize| {
            let s = 1.0 / (fan_in as f64).sqrt();
            let v: Vec<f64> = (0..rows * cols)
                .map(|_| s * (2.0 * rng.uniform() - 1.0))
                .collect();
            Mat::from_fn(rows, cols, |i, j| v[i * cols + j])
        };
        let w1 = row_major(h, d, d);
        let b1 = row_major(1, h, d);
        let w2 = row_major(d, h, h);
        let b2 = row_major(1, d, h);
        let tensors = [
            Tensor::new(gpu, "dense W1", &w1)?,
            Tensor::new(gpu, "dense b1", &b1)?,
            Tensor::new(gpu, "dense W2", &w2)?,
            Tensor::new(gpu, "dense b2", &b2)?,
        ];
        let full = Work::new(gpu, b, d, h)?;
        let short = match n % b {
            0 => None,
            r => Some(full.leading(r)?),
        };
        let sum_d_groups = groups_1d(gpu, d);
        let sum_h_groups = groups_1d(gpu, h);
        let mut slots = Vec::new();
        for k in 0..n.div_ceil(b) {
            let (start, rows) = batch_range(n, b, k)?;
            let gather_groups = groups_1d(gpu, (rows * d).div_ceil(4));
            let residual = ResidualParams {
                rows: rows as u32,
                dim: d as u32,
                offset: start as u32,
                scale: (2.0 / rows as f64) as f32,
                ..ResidualParams::default()
            };
            let sum = |cols: usize, groups: [u32; 3]| ColumnSumParams {
                rows: rows as u32,
                cols: cols as u32,
                grid_x: groups[0],
                pad: 0,
            };
            slots.push(Slot {
                start,
                rows,
                gather: gpu.uniform("dense gather", &GatherParams::default()),
                gather_groups,
                residual: gpu.uniform("dense residual", &residual),
                sum_d: gpu.uniform("dense column sum", &sum(d, sum_d_groups)),
                sum_h: gpu.uniform("dense column sum", &sum(h, sum_h_groups)),
                adam: std::array::from_fn(|_| gpu.uniform("dense adam", &AdamParams::default())),
            });
        }
        // The epoch loss: the one column of the N row losses, summed sequentially.
        let sum_params = ColumnSumParams {
            rows: n as u32,
            cols: 1,
            grid_x: 1,
            pad: 0,
        };
        Ok(Self {
            gpu,
            config,
            dim: d,
            samples: n,
            data: data.leading_rows(n)?,
            tensors,
            full,
            short,
            slots,
            perm: gpu.output("dense permutation", n)?,
            row_sq: gpu.output("dense row squared errors", n)?,
            ones: gpu.input("dense loss weights", &vec![1.0f32; b])?,
            loss: gpu.output("dense epoch loss", 1)?,
            sum_params: gpu.uniform("dense loss sum", &sum_params),
            sum_d_groups,
            sum_h_groups,
            seed: config.seed,
            step: 0,
            epoch: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DenseConfig {
        &self.config
    }

    /// Adam steps taken.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// Batches per epoch, `⌈N/B⌉`.
    pub fn batches_per_epoch(&self) -> usize {
        self.slots.len()
    }

    fn work(&self, slot: usize) -> &Work {
        match &self.short {
            Some(short) if self.slots[slot].rows < self.config.batch => short,
            _ => &self.full,
        }
    }

    /// Uploads epoch `epoch`'s permutation and writes every batch's gather parameters.
    fn write_epoch(&self, epoch: u64, alpha: f64, sigma: f64) -> Result<()> {
        let slots = self.slots.iter().map(|slot| GatherSlot {
            rows: slot.rows,
            start: slot.start,
            grid_x: slot.gather_groups[0],
            buffer: &slot.gather,
        });
        write_epoch_gathers(
            self.gpu,
            &self.perm,
            (self.seed, self.samples, epoch),
            (self.dim, alpha, sigma),
            slots,
        )
    }

    /// Writes batch `slot`'s Adam parameters for step `step`.
    fn write_adam(&self, slot: usize, step: u64) {
        for (t, buffer) in self.tensors.iter().zip(&self.slots[slot].adam) {
            let u = adam_params(&self.config.adam, step, t.len);
            self.gpu
                .queue()
                .write_buffer(buffer, 0, bytemuck::bytes_of(&u));
        }
    }

    /// The five GEMMs of a batch: forward `H`, `X̂`; backward `∇W₂`, `dZ`, `∇W₁`.
    fn products(&self, slot: usize) -> Result<Vec<PreparedProduct<'_>>> {
        let w = self.work(slot);
        let [w1, b1, w2, b2] = &self.tensors;
        let act = self.config.activation;
        [
            Product::new((&w.y, false), (&w1.value, true), &w.h).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b1.value),
                activation: act,
            }),
            Product::new((&w.h, false), (&w2.value, true), &w.x_hat).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b2.value),
                activation: Activation::Identity,
            }),
            Product::new((&w.g, true), (&w.h, false), &w2.grad),
            Product::new((&w.g, false), (&w2.value, false), &w.dz).with(Epilogue::DerivativeMask {
                activation: act,
                output: &w.h,
            }),
            Product::new((&w.dz, true), (&w.y, false), &w1.grad),
        ]
        .into_iter()
        .map(|p| p.prepare(self.gpu))
        .collect()
    }

    /// The dispatches of batch `slot` (gather, forward, loss, backward, and Adam if `update`).
    fn batch_specs<'s>(
        &'s self,
        slot: usize,
        products: &'s [PreparedProduct<'s>],
        update: bool,
    ) -> Vec<Dispatch<'s>> {
        let s = &self.slots[slot];
        let w = self.work(slot);
        let [_, b1, _, b2] = &self.tensors;
        // a product is one dispatch, or two when split along k
        let gemm = |i: usize| -> Vec<Dispatch<'s>> { products[i].dispatches() };
        let mut specs = [
            vec![(
                &shaders::DENSE_GATHER,
                vec![
                    &s.gather,
                    &self.perm,
                    self.data.buffer(),
                    w.x.buffer(),
                    w.y.buffer(),
                ],
                s.gather_groups,
            )],
            gemm(0),
            gemm(1),
            vec![
                (
                    &shaders::DENSE_RESIDUAL,
                    vec![
                        &s.residual,
                        w.x_hat.buffer(),
                        w.x.buffer(),
                        w.g.buffer(),
                        &self.row_sq,
                        &self.ones,
                    ],
                    [s.rows as u32, 1, 1],
                ),
                (
                    &shaders::DENSE_COLUMN_SUM,
                    vec![&s.sum_d, w.g.buffer(), b2.grad.buffer()],
                    self.sum_d_groups,
                ),
            ],
            gemm(2),
            gemm(3),
            vec![(
                &shaders::DENSE_COLUMN_SUM,
                vec![&s.sum_h, w.dz.buffer(), b1.grad.buffer()],
                self.sum_h_groups,
            )],
            gemm(4),
        ]
        .concat();
        if update {
            for (t, params) in self.tensors.iter().zip(&s.adam) {
                specs.push(t.update(self.gpu, params));
            }
        }
        specs
    }

    fn check_batch(&self, epoch: u64, batch: usize) -> Result<()> {
        stream_id(epoch, 2)?;
        batch_range(self.samples, self.config.batch, batch).map(|_| ())
    }

    /// Trains `epochs` epochs (each one submission: every batch's gather, forward, backward and
    /// Adam step, then the loss sum) on `y = α·x + σ·ε`, calling `on_epoch(epoch index, loss)`
    /// after each, and returns the losses: the mean over the epoch's N samples of `‖x̂ − x‖²`,
    /// each batch evaluated before its own update. The epoch index (which keys the permutation
    /// and the noise) continues from the number of epochs already done (kept in the checkpointed state).
    pub fn train_epochs(
        &mut self,
        alpha: f64,
        sigma: f64,
        epochs: usize,
        on_epoch: &mut dyn FnMut(usize, f64),
    ) -> Result<Vec<f64>> {
        check_alpha_sigma(alpha, sigma)?;
        // The products and dispatches depend only on the batch slots' buffers: prepared once,
        // replayed every epoch after the permutation, gather and Adam uniforms are rewritten.
        let products: Vec<Vec<PreparedProduct>> = (0..self.slots.len())
            .map(|slot| self.products(slot))
            .collect::<Result<_>>()?;
        let mut specs: Vec<Dispatch> = Vec::new();
        for (slot, p) in products.iter().enumerate() {
            specs.extend(self.batch_specs(slot, p, true));
        }
        let (mut epoch, mut step) = (self.epoch, self.step);
        let outcome = replay_epochs(
            self.gpu,
            specs,
            (&self.sum_params, &self.row_sq, &self.loss),
            (self.samples, self.slots.len()),
            (&mut epoch, &mut step),
            epochs,
            &mut |epoch, first_step| {
                stream_id(epoch, 2)?;
                self.write_epoch(epoch, alpha, sigma)?;
                for slot in 0..self.slots.len() {
                    self.write_adam(slot, first_step + slot as u64);
                }
                Ok(())
            },
            on_epoch,
        );
        drop(products);
        // Counts advance by the epochs that completed, also when a later one failed.
        self.epoch = epoch;
        self.step = step;
        outcome
    }

    /// One Adam step on batch `batch` of epoch `epoch`'s permutation and noise — the step
    /// [`DenseTrainer::train_epochs`] takes there — returning the batch's loss
    /// `(1/B)Σ_r‖x̂_r − x_r‖²` before the update. Advances the step count, not the epoch count.
    pub fn train_batch(&mut self, alpha: f64, sigma: f64, epoch: u64, batch: usize) -> Result<f64> {
        check_alpha_sigma(alpha, sigma)?;
        self.check_batch(epoch, batch)?;
        self.write_epoch(epoch, alpha, sigma)?;
        self.write_adam(batch, self.step + 1);
        let products = self.products(batch)?;
        self.gpu
            .run_dispatches(&self.batch_specs(batch, &products, true), 1)?;
        self.step += 1;
        let s = &self.slots[batch];
        let sq: Vec<f32> = self.gpu.read(&self.row_sq, s.start + s.rows)?;
        Ok(sq[s.start..].iter().map(|&v| f64::from(v)).sum::<f64>() / s.rows as f64)
    }

    /// Gather, forward and backward of batch `batch` of epoch `epoch` without updating: the
    /// GPU's inputs, outputs, per-row squared errors and gradient, for the parity tests.
    pub fn evaluate_batch(
        &self,
        alpha: f64,
        sigma: f64,
        epoch: u64,
        batch: usize,
    ) -> Result<BatchEvaluation> {
        check_alpha_sigma(alpha, sigma)?;
        self.check_batch(epoch, batch)?;
        self.write_epoch(epoch, alpha, sigma)?;
        let products = self.products(batch)?;
        self.gpu
            .run_dispatches(&self.batch_specs(batch, &products, false), 1)?;
        let w = self.work(batch);
        let s = &self.slots[batch];
        let sq: Vec<f32> = self.gpu.read(&self.row_sq, s.start + s.rows)?;
        Ok(BatchEvaluation {
            x: w.x.download(self.gpu)?,
            y: w.y.download(self.gpu)?,
            x_hat: w.x_hat.download(self.gpu)?,
            row_sq: sq[s.start..].iter().map(|&v| f64::from(v)).collect(),
            gradient: self.download(|t| &t.grad)?,
        })
    }

    fn download(&self, pick: impl Fn(&Tensor) -> &GpuMat) -> Result<DenseParams> {
        let row = |m: Mat| (0..m.ncols()).map(|j| m[(0, j)]).collect::<Vec<f64>>();
        let [w1, b1, w2, b2] = &self.tensors;
        Ok(DenseParams {
            w1: pick(w1).download(self.gpu)?,
            b1: row(pick(b1).download(self.gpu)?),
            w2: pick(w2).download(self.gpu)?,
            b2: row(pick(b2).download(self.gpu)?),
        })
    }

    /// `x̂ = W₂·φ(W₁·y + b₁) + b₂` for every row of `y` (R×d, any R) into `out` (R×d; it may be
    /// `y` itself, which is read before it is overwritten).
    pub fn predict(&self, y: &GpuMat, out: &GpuMat) -> Result<()> {
        let (r, d) = y.shape();
        if d != self.dim || out.shape() != (r, d) {
            return Err(Error::InvalidArgument {
                what: "dense predict".into(),
                reason: format!(
                    "need y and out R×{}, got y {r}×{d} and out {:?}",
                    self.dim,
                    out.shape()
                ),
            });
        }
        if r == 0 {
            return Ok(());
        }
        let hidden = GpuMat::poisoned(self.gpu, "dense predict H", r, self.config.hidden)?;
        let [w1, b1, w2, b2] = &self.tensors;
        let products = [
            Product::new((y, false), (&w1.value, true), &hidden).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b1.value),
                activation: self.config.activation,
            }),
            Product::new((&hidden, false), (&w2.value, true), out).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b2.value),
                activation: Activation::Identity,
            }),
        ]
        .into_iter()
        .map(|p| p.prepare(self.gpu))
        .collect::<Result<Vec<_>>>()?;
        crate::gpu::gemm::run_products(self.gpu, &products, 1)
    }

    /// W₁, b₁, W₂, b₂ downloaded (f32 values as f64).
    pub fn parameters(&self) -> Result<DenseParams> {
        self.download(|t| &t.value)
    }

    /// A checkpoint: parameters, Adam moments, step and epoch counts, seed.
    pub fn state(&self) -> Result<DenseState> {
        let [w1, b1, w2, b2] = &self.tensors;
        Ok(DenseState {
            dim: self.dim,
            hidden: self.config.hidden,
            activation: self.config.activation,
            seed: self.seed,
            step: self.step,
            epoch: self.epoch,
            w1: w1.state(self.gpu)?,
            b1: b1.state(self.gpu)?,
            w2: w2.state(self.gpu)?,
            b2: b2.state(self.gpu)?,
        })
    }

    /// Restores a checkpoint of a network of the same d, h and φ (its seed, step and epoch
    /// counts replace this trainer's, so training continues as the saved run would have).
    pub fn set_state(&mut self, state: &DenseState) -> Result<()> {
        if (state.dim, state.hidden) != (self.dim, self.config.hidden)
            || state.activation != self.config.activation
        {
            return Err(Error::InvalidArgument {
                what: "checkpoint".into(),
                reason: format!(
                    "is d = {}, h = {}, φ = {:?}; this trainer is d = {}, h = {}, φ = {:?}",
                    state.dim,
                    state.hidden,
                    state.activation,
                    self.dim,
                    self.config.hidden,
                    self.config.activation
                ),
            });
        }
        let parts = [&state.w1, &state.b1, &state.w2, &state.b2];
        for (name, (t, s)) in ["W1", "b1", "W2", "b2"]
            .iter()
            .zip(self.tensors.iter().zip(parts))
        {
            t.check(name, s)?;
        }
        stream_id(state.epoch, 2)?;
        for (t, s) in self.tensors.iter().zip(parts) {
            t.write(self.gpu, s);
        }
        self.seed = state.seed;
        self.step = state.step;
        self.epoch = state.epoch;
        Ok(())
    }

    /// Floating-point operations of one epoch: the GEMMs `10·N·d·h` — forward `H` and `X̂`
    /// (`2·N·d·h` each) and backward `∇W₂`, `dZ`, `∇W₁` (`2·N·d·h` each; the input gradient
    /// `∂L/∂y` is never formed, so this is 5/6 of the `3×forward` rule's `12·N·d·h`) — plus
    /// the elementwise work, one flop per arithmetic operation or function: per sample
    /// `9d` (gather `αx + σε` 3, output bias 1, residual, scale, square and sum 4, `∇b₂` 1) and
    /// `6h` (bias and φ 2, mask 3, `∇b₁` 1), and per Adam step `12` per parameter.
    pub fn flops_per_epoch(&self) -> f64 {
        let (n, d, h) = (
            self.samples as f64,
            self.dim as f64,
            self.config.hidden as f64,
        );
        let params = 2.0 * d * h + d + h;
        10.0 * n * d * h + n * (9.0 * d + 6.0 * h) + 12.0 * params * self.slots.len() as f64
    }
}
