//! Products of resident matrices: [`Product`] (one `C = epilogue(α·op(A)·op(B) + β·D)`),
//! prepared once with its uniforms and split-K workspace ([`PreparedProduct`]) and replayed
//! ([`run_products`]).

use super::*;

/// `GemmParams::epilogue` of split-K's first pass: store the raw partial sum of the slice.
const PARTIAL_EPILOGUE: u32 = 3;

/// One product `C = epilogue(α·op(A)·op(B) + β·D)` of resident matrices (`D` unread when
/// β = 0). Built with [`Product::new`] and the builder methods, or as a struct literal.
#[derive(Debug, Clone, Copy)]
pub struct Product<'a> {
    /// A.
    pub a: &'a GpuMat,
    /// Use Aᵀ.
    pub trans_a: bool,
    /// B.
    pub b: &'a GpuMat,
    /// Use Bᵀ.
    pub trans_b: bool,
    /// α.
    pub alpha: f32,
    /// β.
    pub beta: f32,
    /// D (m×n); `None` only with β = 0.
    pub d: Option<&'a GpuMat>,
    /// The output C (m×n); must not be any of the inputs.
    pub c: &'a GpuMat,
    /// What happens to `t` before it is stored.
    pub epilogue: Epilogue<&'a GpuMat>,
    /// The kernel to use instead of [`GemmKernel::choose`]'s (tests, benchmarks).
    pub kernel: Option<GemmKernel>,
    /// The number S of split-K slices to use instead of [`split_k`]'s, `1 ≤ S ≤ ⌈k/16⌉`
    /// (tests, benchmarks).
    pub splits: Option<usize>,
}

impl<'a> Product<'a> {
    /// `C = op(A)·op(B)`: α = 1, β = 0, no epilogue.
    pub fn new(
        (a, trans_a): (&'a GpuMat, bool),
        (b, trans_b): (&'a GpuMat, bool),
        c: &'a GpuMat,
    ) -> Self {
        Self {
            a,
            trans_a,
            b,
            trans_b,
            alpha: 1.0,
            beta: 0.0,
            d: None,
            c,
            epilogue: Epilogue::None,
            kernel: None,
            splits: None,
        }
    }

    /// The same product run by `kernel` (overriding [`GemmKernel::choose`]).
    pub fn with_kernel(self, kernel: GemmKernel) -> Self {
        Self {
            kernel: Some(kernel),
            ..self
        }
    }

    /// The same product split into `splits` k slices (overriding [`split_k`]; 1 = no split).
    pub fn with_splits(self, splits: usize) -> Self {
        Self {
            splits: Some(splits),
            ..self
        }
    }

    /// The same product with `α`.
    pub fn scaled(self, alpha: f32) -> Self {
        Self { alpha, ..self }
    }

    /// The same product plus `β·D`.
    pub fn plus(self, beta: f32, d: &'a GpuMat) -> Self {
        Self {
            beta,
            d: Some(d),
            ..self
        }
    }

    /// The same product with `epilogue`.
    pub fn with(self, epilogue: Epilogue<&'a GpuMat>) -> Self {
        Self { epilogue, ..self }
    }

    /// Validates and prepares it for recording ([`PreparedProduct::new`]).
    pub fn prepare(self, gpu: &Gpu) -> Result<PreparedProduct<'a>> {
        PreparedProduct::new(gpu, self)
    }
}

/// Split-K's extra state: the first pass's parameters (epilogue "partial"), the workspace of its
/// S×m×n partial sums (the shared [`Gpu::scratch`]: every partial is written by the first pass
/// before the second reads it; [`gemm_fused_planned`] poisons it first so the parity tests would
/// see a missing write) and the second pass's grid.
pub(super) struct SplitPass {
    params: wgpu::Buffer,
    pub(super) workspace: wgpu::Buffer,
    groups: [u32; 3],
}

/// A product made ready to record: its plan, parameter buffers, a stand-in for unused operands,
/// the split-K workspace when split, and its workgroup grids ([`PreparedProduct::dispatches`]).
pub struct PreparedProduct<'a> {
    product: Product<'a>,
    plan: GemmPlan,
    params: wgpu::Buffer,
    dummy: wgpu::Buffer,
    groups: [u32; 3],
    pub(super) split: Option<SplitPass>,
}

impl<'a> PreparedProduct<'a> {
    /// Validates shapes, the epilogue, that C is none of the inputs, the plan (automatic, or the
    /// product's overrides) and the workgroup limits, and builds the parameter buffers and the
    /// split-K workspace.
    pub fn new(gpu: &Gpu, product: Product<'a>) -> Result<Self> {
        let (m, k) = op_shape(product.a, product.trans_a);
        let (kb, n) = op_shape(product.b, product.trans_b);
        if kb != k {
            return Err(Error::DimensionMismatch {
                what: "GEMM inner dimension (rows of op(B))".into(),
                expected: k,
                got: kb,
            });
        }
        if product.c.shape() != (m, n) {
            return Err(Error::InvalidArgument {
                what: "GEMM output".into(),
                reason: format!("must be {m}×{n}, got {:?}", product.c.shape()),
            });
        }
        match product.d {
            Some(d) if d.shape() != (m, n) => {
                return Err(Error::InvalidArgument {
                    what: "GEMM addend D".into(),
                    reason: format!("must be {m}×{n}, got {:?}", d.shape()),
                })
            }
            None if product.beta != 0.0 => {
                return Err(Error::InvalidArgument {
                    what: "GEMM addend D".into(),
                    reason: format!("β = {} needs a D", product.beta),
                })
            }
            _ => {}
        }
        product.epilogue.validate(m, n)?;
        let (epilogue, act, bias_mode, power) = product.epilogue.codes();
        let (vector, aux) = product.epilogue.operands();
        let inputs = [Some(product.a), Some(product.b), product.d, vector, aux];
        if inputs
            .iter()
            .flatten()
            .any(|x| x.buffer == product.c.buffer)
        {
            return Err(Error::InvalidArgument {
                what: "GEMM output C".into(),
                reason: "shares its buffer with an input (A, B, D, bias, scale or H)".into(),
            });
        }
        if product.kernel == Some(GemmKernel::TensorCoresF16) && !gpu.has_tensor_cores() {
            return Err(Error::GpuLimit(format!(
                "GEMM kernel TensorCoresF16 needs cooperative 16×16×16 f16→f32 matrices, f16 and \
                 32-wide subgroups, which {} does not offer",
                gpu.backend_name()
            )));
        }
        let limits = gpu.limits();
        let plan = GemmPlan::resolve(
            limits,
            gpu.is_software(),
            (m, n, k),
            product.kernel,
            product.splits,
        )?;
        let max = limits.max_compute_workgroups_per_dimension as usize;
        let tile = plan.kernel.tile();
        let groups = [n.div_ceil(tile), m.div_ceil(tile)];
        if groups.iter().any(|&g| g > max) {
            return Err(Error::GpuLimit(format!(
                "GEMM {m}×{n} needs a {groups:?} grid of {tile}×{tile} tiles, over {max} per dimension"
            )));
        }
        let (act, slope) = act.gpu_code();
        let gemm_params = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            trans_a: u32::from(product.trans_a),
            trans_b: u32::from(product.trans_b),
            alpha: product.alpha,
            beta: product.beta,
            epilogue,
            act,
            bias_mode,
            slope: slope as f32,
            power,
            splits: plan.splits as u32,
            vec_a: u32::from(product.a.cols.is_multiple_of(4)),
            vec_b: u32::from(product.b.cols.is_multiple_of(4)),
            pad: 0,
        };
        let split = (plan.splits > 1)
            .then(|| -> Result<SplitPass> {
                let partial = GemmParams {
                    epilogue: PARTIAL_EPILOGUE,
                    ..gemm_params
                };
                let reduce_groups = (m * n).div_ceil(crate::gpu::WORKGROUP_SIZE as usize);
                Ok(SplitPass {
                    params: gpu.shared_uniform("gemm split-K partial params", &partial)?,
                    workspace: gpu.scratch(plan.splits * m * n)?,
                    groups: crate::gpu::grid_for(reduce_groups as u32, max as u32),
                })
            })
            .transpose()?;
        Ok(Self {
            product,
            plan,
            params: gpu.shared_uniform("gemm params", &gemm_params)?,
            dummy: gpu.stand_in(),
            groups: [
                groups[0].max(1) as u32,
                groups[1].max(1) as u32,
                plan.splits as u32,
            ],
            split,
        })
    }

    /// The kernel and the number of split-K slices it runs with.
    pub fn plan(&self) -> GemmPlan {
        self.plan
    }

    /// The dispatches that compute it, to be recorded in order: one (the kernel, grid
    /// ⌈n/t⌉ × ⌈m/t⌉ × 1, bindings: parameters, C, D, the bias or scale vector, H, A, B, with a
    /// 4-byte stand-in for each operand the product does not use), or with S ≥ 2 slices two —
    /// the kernel over a ⌈n/t⌉ × ⌈m/t⌉ × S grid writing partial sums into the workspace (bound
    /// as C), then [`shaders::GEMM_SPLIT_REDUCE`] (parameters, C, D, vector, H, workspace).
    pub fn dispatches(&self) -> Vec<Dispatch<'_>> {
        let p = &self.product;
        let or_dummy = |m: Option<&'a GpuMat>| m.map_or(&self.dummy, |m| &m.buffer);
        let (vector, aux) = p.epilogue.operands();
        let finish = [
            &self.params,
            &p.c.buffer,
            or_dummy(p.d),
            or_dummy(vector),
            or_dummy(aux),
        ];
        let shader = self.plan.kernel.shader();
        match &self.split {
            None => vec![(
                shader,
                [&finish[..], &[&p.a.buffer, &p.b.buffer]].concat(),
                self.groups,
            )],
            Some(split) => vec![
                (
                    shader,
                    vec![
                        &split.params,
                        &split.workspace,
                        &self.dummy,
                        &self.dummy,
                        &self.dummy,
                        &p.a.buffer,
                        &p.b.buffer,
                    ],
                    self.groups,
                ),
                (
                    &shaders::GEMM_SPLIT_REDUCE,
                    [&finish[..], &[&split.workspace]].concat(),
                    split.groups,
                ),
            ],
        }
    }
}

impl<M> Epilogue<M> {
    /// The same epilogue with every operand replaced by `f(operand)`, or the first error.
    pub(crate) fn try_map<N>(self, mut f: impl FnMut(M) -> Result<N>) -> Result<Epilogue<N>> {
        Ok(match self {
            Self::None => Epilogue::None,
            Self::Activation { bias, activation } => Epilogue::Activation {
                bias: match bias {
                    Bias::None => Bias::None,
                    Bias::PerRow(v) => Bias::PerRow(f(v)?),
                    Bias::PerColumn(v) => Bias::PerColumn(f(v)?),
                },
                activation,
            },
            Self::DerivativeMask { activation, output } => Epilogue::DerivativeMask {
                activation,
                output: f(output)?,
            },
            Self::Power { scale, power } => Epilogue::Power {
                scale: f(scale)?,
                power,
            },
        })
    }

    /// The same epilogue borrowing its operands.
    pub fn as_ref(&self) -> Epilogue<&M> {
        match self {
            Self::None => Epilogue::None,
            Self::Activation { bias, activation } => Epilogue::Activation {
                bias: match bias {
                    Bias::None => Bias::None,
                    Bias::PerRow(v) => Bias::PerRow(v),
                    Bias::PerColumn(v) => Bias::PerColumn(v),
                },
                activation: *activation,
            },
            Self::DerivativeMask { activation, output } => Epilogue::DerivativeMask {
                activation: *activation,
                output,
            },
            Self::Power { scale, power } => Epilogue::Power {
                scale,
                power: *power,
            },
        }
    }
}

/// `C = α·op(A)·op(B) + β·D` prepared for recording (no epilogue; see [`Product`] for one).
pub fn product<'a>(
    gpu: &Gpu,
    (a, trans_a): (&'a GpuMat, bool),
    (b, trans_b): (&'a GpuMat, bool),
    alpha: f32,
    beta: f32,
    d: Option<&'a GpuMat>,
    c: &'a GpuMat,
) -> Result<PreparedProduct<'a>> {
    PreparedProduct::new(
        gpu,
        Product {
            a,
            trans_a,
            b,
            trans_b,
            alpha,
            beta,
            d,
            c,
            epilogue: Epilogue::None,
            kernel: None,
            splits: None,
        },
    )
}

/// Runs `products` in order, `repeat` times over, in one submission (each sees the writes of
/// the previous ones; a split product's two passes run back to back).
pub(crate) fn run_products(gpu: &Gpu, products: &[PreparedProduct], repeat: usize) -> Result<()> {
    let dispatches: Vec<Dispatch> = products.iter().flat_map(|p| p.dispatches()).collect();
    gpu.run_dispatches(&dispatches, repeat)
}
