//! Products of host matrices ([`HostProduct`]): uploaded, run and read back whole
//! ([`gemm_fused`], [`gemm`]) or tiled into blocks that fit the binding limit
//! ([`GemmTiling`], [`gemm_fused_tiled`]).

use super::*;

/// A product of host matrices, `C = epilogue(α·op(A)·op(B) + β·D)`: the input of
/// [`gemm_fused`] (upload, run, download) and of its f64 reference [`gemm_fused_reference`].
#[derive(Debug, Clone, Copy)]
pub struct HostProduct<'a> {
    /// A.
    pub a: &'a Mat,
    /// Use Aᵀ.
    pub trans_a: bool,
    /// B.
    pub b: &'a Mat,
    /// Use Bᵀ.
    pub trans_b: bool,
    /// α.
    pub alpha: f64,
    /// β.
    pub beta: f64,
    /// D (m×n); `None` only with β = 0.
    pub d: Option<&'a Mat>,
    /// The epilogue, its operands on the host.
    pub epilogue: Epilogue<&'a Mat>,
}

impl<'a> HostProduct<'a> {
    /// `C = op(A)·op(B)`: α = 1, β = 0, no D, no epilogue (struct update syntax sets the rest).
    pub fn new((a, trans_a): (&'a Mat, bool), (b, trans_b): (&'a Mat, bool)) -> Self {
        Self {
            a,
            trans_a,
            b,
            trans_b,
            alpha: 1.0,
            beta: 0.0,
            d: None,
            epilogue: Epilogue::None,
        }
    }
}

/// Runs one [`HostProduct`] on the GPU: uploads the operands (rounded to f32), runs the
/// automatic [`GemmPlan`] into a poisoned C and downloads C; a product whose operands exceed
/// the adapter's storage binding or grid limits is cut into blocks that fit
/// ([`GemmTiling::choose`], run by [`gemm_fused_tiled`]) rather than refused.
pub fn gemm_fused(gpu: &Gpu, p: &HostProduct) -> Result<Mat> {
    let shape = check_host_product(p)?;
    let tiling = GemmTiling::choose(
        usize::try_from(gpu.max_binding_bytes() / 4).unwrap_or(usize::MAX),
        gpu.limits().max_compute_workgroups_per_dimension as usize,
        shape,
    )?;
    gemm_fused_tiled(gpu, p, tiling)
}

/// How [`gemm_fused_tiled`] cuts an m×n×k product of host matrices: C into blocks of `rows` ×
/// `cols`, the inner dimension into slices of `depth`. Block (I, J) of C is
/// `epilogue(α·Σ_L op(A)_{IL}·op(B)_{LJ} + β·D_{IJ})`, accumulated on the GPU slice by slice in
/// one submission: the first slice's product adds `β·D_{IJ}`, each later one adds the partial
/// result of the previous (β = 1, alternating between two buffers), and only the last applies
/// the epilogue, with its bias, scale or H cut to the block.
///
/// The f32 bounds of [`gemm_fused_reference`] still hold. With J slices of `k_1, …, k_J ≥ 1`
/// terms, a term of slice L meets two input roundings, its product, at most `k_L − 1` additions
/// inside its slice, α, the addition of `β·D` or of the previous partial, and one addition per
/// later slice: `k_L + 4 + J − L ≤ k + 4` roundings, since each of the other `J − 1` slices holds
/// at least one term (`k_L + J − 1 ≤ k`); D meets its rounding, β and `J + 1` additions, at most
/// `k + 5` as well. Higham's bound for any summation order in which no term passes through
/// more than n roundings gives `γ_{k+5}(|α||op(A)||op(B)| + |β||D|)` again, and the epilogue then
/// acts on `t` exactly as in one pass. Split-K inside a slice keeps the slice's count (module
/// doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmTiling {
    /// Rows of op(A) and of C per block (≥ 1).
    pub rows: usize,
    /// Columns of op(B) and of C per block (≥ 1).
    pub cols: usize,
    /// Length of an inner-dimension slice (≥ 1).
    pub depth: usize,
}

/// The fewest rows and columns [`GemmTiling::choose`] keeps per block before it slices k.
const MIN_TILING_BLOCK: usize = 16;

impl GemmTiling {
    /// The tiling of an m×n×k product on an adapter whose storage bindings hold at most
    /// `binding_words` f32 and whose grids have at most `max_groups` workgroups per dimension:
    /// * depth: all of k when `r = min(max(m, n), 16)` rows of op(A) and columns of op(B) of
    ///   length k fit one binding (`rk ≤ W`), else the largest multiple of 16 with
    ///   `r·depth ≤ W` (at least 16, as `W ≥ 256`);
    /// * rows and columns: as many as fit, `rows·depth ≤ W` and `depth·cols ≤ W` (op(A)'s and
    ///   op(B)'s blocks) and at most `16·max_groups` (the grid of the smallest kernel tile);
    ///   then, if C's block `rows·cols` (also D's and H's) exceeds W, the larger side shrinks
    ///   to `⌊W / other side⌋`.
    ///
    /// A product that fits the adapter is one block, as without tiling. Errors when
    /// `binding_words < 256` (no 16×16 block fits: not a real adapter).
    pub fn choose(
        binding_words: usize,
        max_groups: usize,
        (m, n, k): (usize, usize, usize),
    ) -> Result<Self> {
        let w = binding_words;
        if w < MIN_TILING_BLOCK * MIN_TILING_BLOCK || max_groups == 0 {
            return Err(Error::GpuLimit(format!(
                "a storage binding of {w} f32 words and grids of {max_groups} workgroups per \
                 dimension cannot hold one 16×16 GEMM block"
            )));
        }
        let least = m.max(n).clamp(1, MIN_TILING_BLOCK);
        let depth = if k.max(1) * least <= w {
            k.max(1)
        } else {
            w / least / MIN_TILING_BLOCK * MIN_TILING_BLOCK
        };
        let cap = (w / depth).min(MIN_TILING_BLOCK.saturating_mul(max_groups));
        let (mut rows, mut cols) = (m.clamp(1, cap), n.clamp(1, cap));
        if rows * cols > w {
            if rows >= cols {
                rows = w / cols;
            } else {
                cols = w / rows;
            }
        }
        Ok(Self { rows, cols, depth })
    }
}

/// [`gemm_fused`] with the cut given ([`GemmTiling`]): tests force small blocks to run the cut
/// products on matrices that fit any adapter. Blocks of C run one submission each (every
/// slice of the inner dimension recorded in order), are downloaded and placed in C. Errors
/// on a zero block size or a block that still exceeds a binding, naming it.
pub fn gemm_fused_tiled(gpu: &Gpu, p: &HostProduct, tiling: GemmTiling) -> Result<Mat> {
    let (m, n, k) = check_host_product(p)?;
    for (what, size) in [
        ("rows", tiling.rows),
        ("cols", tiling.cols),
        ("depth", tiling.depth),
    ] {
        if size == 0 {
            return Err(Error::InvalidArgument {
                what: format!("GEMM tiling {what}").into(),
                reason: "must be at least 1, got 0".into(),
            });
        }
    }
    linalg::ensure_finite_mat("gemm A", p.a)?;
    linalg::ensure_finite_mat("gemm B", p.b)?;
    if let Some(d) = p.d {
        linalg::ensure_finite_mat("gemm D", d)?;
    }
    p.epilogue
        .try_map(|x| linalg::ensure_finite_mat("gemm epilogue operand", x))?;
    // k = 0 still needs one (empty) slice: C = epilogue(β·D).
    let slices: Vec<(usize, usize)> = if k == 0 {
        vec![(0, 0)]
    } else {
        chunks(k, tiling.depth)
    };
    let mut c = Mat::zeros(m, n);
    for rows in chunks(m, tiling.rows) {
        for cols in chunks(n, tiling.cols) {
            let block = gemm_block(gpu, p, rows, cols, &slices)?;
            c.as_mut()
                .submatrix_mut(rows.0, cols.0, rows.1, cols.1)
                .copy_from(&block);
        }
    }
    Ok(c)
}

/// Block `rows × cols` (each `(start, length)`) of a tiled product, accumulated over `slices`
/// of the inner dimension ([`GemmTiling`]).
fn gemm_block(
    gpu: &Gpu,
    p: &HostProduct,
    (i0, mb): (usize, usize),
    (j0, nb): (usize, usize),
    slices: &[(usize, usize)],
) -> Result<Mat> {
    let (m, n) = (
        if p.trans_a { p.a.ncols() } else { p.a.nrows() },
        if p.trans_b { p.b.nrows() } else { p.b.ncols() },
    );
    // An m-row (n-column) operand is cut to the block's rows (columns); the other side of a
    // bias or scale vector (its 1) is kept whole.
    let cut = |x: &Mat| -> Mat {
        let (r0, nr) = if x.nrows() == m {
            (i0, mb)
        } else {
            (0, x.nrows())
        };
        let (c0, nc) = if x.ncols() == n {
            (j0, nb)
        } else {
            (0, x.ncols())
        };
        x.as_ref().submatrix(r0, c0, nr, nc).to_owned()
    };
    let operands = slices
        .iter()
        .map(|&(l0, kl)| {
            let a = if p.trans_a {
                p.a.as_ref().submatrix(l0, i0, kl, mb)
            } else {
                p.a.as_ref().submatrix(i0, l0, mb, kl)
            };
            let b = if p.trans_b {
                p.b.as_ref().submatrix(j0, l0, nb, kl)
            } else {
                p.b.as_ref().submatrix(l0, j0, kl, nb)
            };
            Ok((
                GpuMat::upload_view(gpu, "gemm A block", a)?,
                GpuMat::upload_view(gpu, "gemm B block", b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let d =
        p.d.map(|d| GpuMat::upload_view(gpu, "gemm D block", cut(d).as_ref()))
            .transpose()?;
    let epilogue = p
        .epilogue
        .try_map(|x| GpuMat::upload_view(gpu, "gemm epilogue operand block", cut(x).as_ref()))?;
    let partials = (0..slices.len().min(2))
        .map(|_| GpuMat::poisoned(gpu, "gemm C block", mb, nb))
        .collect::<Result<Vec<_>>>()?;
    let last = slices.len() - 1;
    let products = operands
        .iter()
        .enumerate()
        .map(|(s, (a, b))| {
            let product = Product::new((a, p.trans_a), (b, p.trans_b), &partials[s % 2])
                .scaled(p.alpha as f32);
            let product = match (s, &d) {
                (0, Some(d)) => product.plus(p.beta as f32, d),
                (0, None) => product,
                _ => product.plus(1.0, &partials[(s - 1) % 2]),
            };
            let product = if s == last {
                product.with(epilogue.as_ref())
            } else {
                product
            };
            product.prepare(gpu)
        })
        .collect::<Result<Vec<_>>>()?;
    for split in products.iter().filter_map(|p| p.split.as_ref()) {
        // Stale partial sums of earlier products would hide one this product fails to write.
        gpu.poison(&split.workspace);
    }
    run_products(gpu, &products, 1)?;
    partials[last % 2].download(gpu)
}

/// Checks a host product's shapes (inner dimension, D, the epilogue's operands) and returns
/// `(m, n, k)`.
pub(super) fn check_host_product(p: &HostProduct) -> Result<(usize, usize, usize)> {
    let (m, k) = if p.trans_a {
        (p.a.ncols(), p.a.nrows())
    } else {
        (p.a.nrows(), p.a.ncols())
    };
    let (kb, n) = if p.trans_b {
        (p.b.ncols(), p.b.nrows())
    } else {
        (p.b.nrows(), p.b.ncols())
    };
    if kb != k {
        return Err(Error::DimensionMismatch {
            what: "GEMM inner dimension (rows of op(B))".into(),
            expected: k,
            got: kb,
        });
    }
    match p.d {
        Some(d) if (d.nrows(), d.ncols()) != (m, n) => {
            return Err(Error::InvalidArgument {
                what: "GEMM addend D".into(),
                reason: format!("must be {m}×{n}, got {}×{}", d.nrows(), d.ncols()),
            })
        }
        None if p.beta != 0.0 => {
            return Err(Error::InvalidArgument {
                what: "GEMM addend D".into(),
                reason: format!("β = {} needs a D", p.beta),
            })
        }
        _ => {}
    }
    p.epilogue.validate(m, n)?;
    Ok((m, n, k))
}

/// [`gemm_fused`] with the kernel and the number of split-K slices forced where given
/// ([`Product::kernel`], [`Product::splits`]); returns C and the plan that ran. A split
/// product's workspace is poisoned (NaN) before the run, like C.
pub fn gemm_fused_planned(
    gpu: &Gpu,
    p: &HostProduct,
    kernel: Option<GemmKernel>,
    splits: Option<usize>,
) -> Result<(Mat, GemmPlan)> {
    let ga = GpuMat::upload(gpu, "gemm A", p.a)?;
    let gb = GpuMat::upload(gpu, "gemm B", p.b)?;
    let gd = p.d.map(|d| GpuMat::upload(gpu, "gemm D", d)).transpose()?;
    let operands = p
        .epilogue
        .try_map(|m| GpuMat::upload(gpu, "gemm epilogue operand", m))?;
    let (m, _) = op_shape(&ga, p.trans_a);
    let (_, n) = op_shape(&gb, p.trans_b);
    let gc = GpuMat::poisoned(gpu, "gemm C", m, n)?;
    let product = PreparedProduct::new(
        gpu,
        Product {
            a: &ga,
            trans_a: p.trans_a,
            b: &gb,
            trans_b: p.trans_b,
            alpha: p.alpha as f32,
            beta: p.beta as f32,
            d: gd.as_ref(),
            c: &gc,
            epilogue: operands.as_ref(),
            kernel,
            splits,
        },
    )?;
    let plan = product.plan();
    if let Some(split) = &product.split {
        // Stale partial sums of earlier products would hide one this product fails to write.
        gpu.poison(&split.workspace);
    }
    run_products(gpu, &[product], 1)?;
    Ok((gc.download(gpu)?, plan))
}

/// `α·op(A)·op(B) + β·D` on the GPU for host matrices (upload, one product, download).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    gpu: &Gpu,
    a: &Mat,
    trans_a: bool,
    b: &Mat,
    trans_b: bool,
    alpha: f64,
    beta: f64,
    d: Option<&Mat>,
) -> Result<Mat> {
    gemm_fused(
        gpu,
        &HostProduct {
            alpha,
            beta,
            d,
            ..HostProduct::new((a, trans_a), (b, trans_b))
        },
    )
}
