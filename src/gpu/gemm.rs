//! Wrapper of `gpu/gemm.wgsl`: `C = α·op(A)·op(B) + β·D` on matrices resident on the GPU
//! ([`GpuMat`]), single products or whole iterations recorded once and replayed
//! ([`Gpu::dispatch_sequence`]); the f64 reference with the f32 error bound of its parity test.
//!
//! Error bound: every input is rounded to f32 (relative u = 2⁻²⁴), each entry is a sequential
//! f32 sum of k products, then scaled and added: by Higham's Lemma 3.5,
//! `|C_gpu − C| ≤ γ_{k+5}(|α|·(|op(A)||op(B)|) + |β|·|D|)` elementwise, `γ_n = nu/(1 − nu)`.

use super::gmm::F32_UNIT_ROUNDOFF;
use super::{shaders, Gpu, Job};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};

/// A row-major f32 matrix in a GPU storage buffer (readable, writable, downloadable).
#[derive(Debug)]
pub struct GpuMat {
    buffer: wgpu::Buffer,
    rows: usize,
    cols: usize,
}

impl GpuMat {
    /// Uploads `m` (rounded to f32).
    pub fn upload(gpu: &Gpu, label: &str, m: &Mat) -> Result<Self> {
        linalg::ensure_finite_mat(label, m)?;
        let out = Self::poisoned(gpu, label, m.nrows(), m.ncols())?;
        let flat: Vec<f32> = (0..m.nrows())
            .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
            .map(|(i, j)| m[(i, j)] as f32)
            .collect();
        if !flat.is_empty() {
            gpu.queue()
                .write_buffer(&out.buffer, 0, bytemuck::cast_slice(&flat));
        }
        Ok(out)
    }

    /// A rows×cols matrix whose every word is [`super::POISON`] (NaN), to be written by a kernel.
    pub fn poisoned(gpu: &Gpu, label: &str, rows: usize, cols: usize) -> Result<Self> {
        Ok(Self {
            buffer: gpu.output(label, rows * cols)?,
            rows,
            cols,
        })
    }

    /// Copies the matrix back (as f64).
    pub fn download(&self, gpu: &Gpu) -> Result<Mat> {
        let flat: Vec<f32> = gpu.read(&self.buffer, self.rows * self.cols)?;
        Ok(Mat::from_fn(self.rows, self.cols, |i, j| {
            f64::from(flat[i * self.cols + j])
        }))
    }

    /// The storage buffer (row-major f32), for other kernels' bindings.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

/// One product `C = α·op(A)·op(B) + β·D` of resident matrices (`D` unread when β = 0).
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
    /// The output C (m×n); must not be any of A, B, D.
    pub c: &'a GpuMat,
}

/// The kernel's uniform parameters (layout of `GemmParams` in `gpu/gemm.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    pad: u32,
}

fn op_shape(m: &GpuMat, trans: bool) -> (usize, usize) {
    if trans {
        (m.cols, m.rows)
    } else {
        (m.rows, m.cols)
    }
}

/// A product made ready to record: its parameter buffer, a stand-in D when none is given, and
/// its workgroup grid.
pub struct PreparedProduct<'a> {
    product: Product<'a>,
    params: wgpu::Buffer,
    dummy: Option<wgpu::Buffer>,
    groups: [u32; 3],
    blocked: bool,
}

/// Products with both output dimensions at least this large use the register-blocked kernel
/// (64×64 blocks); smaller ones the 16×16-tiled kernel, which wastes less on padding.
pub const BLOCKED_MIN_DIM: usize = 64;

impl<'a> PreparedProduct<'a> {
    /// Validates shapes and the workgroup limits, and builds the parameter buffer.
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
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        let blocked = m >= BLOCKED_MIN_DIM && n >= BLOCKED_MIN_DIM;
        let tile = if blocked { 64 } else { 16 };
        let groups = [n.div_ceil(tile), m.div_ceil(tile)];
        if groups.iter().any(|&g| g > max) {
            return Err(Error::GpuLimit(format!(
                "GEMM {m}×{n} needs a {groups:?} grid of {tile}×{tile} tiles, over {max} per dimension"
            )));
        }
        let params = gpu.uniform(
            "gemm params",
            &GemmParams {
                m: m as u32,
                n: n as u32,
                k: k as u32,
                trans_a: u32::from(product.trans_a),
                trans_b: u32::from(product.trans_b),
                alpha: product.alpha,
                beta: product.beta,
                pad: 0,
            },
        );
        let dummy = match product.d {
            Some(_) => None,
            None => Some(gpu.input("gemm unused addend", &[0.0f32])?),
        };
        Ok(Self {
            product,
            params,
            dummy,
            groups: [groups[0].max(1) as u32, groups[1].max(1) as u32, 1],
            blocked,
        })
    }

    fn bindings(&self) -> [&wgpu::Buffer; 5] {
        let d = match (&self.dummy, self.product.d) {
            (Some(dummy), _) => dummy,
            (None, Some(d)) => &d.buffer,
            (None, None) => unreachable!("a product without D always has a stand-in"),
        };
        [
            &self.params,
            &self.product.a.buffer,
            &self.product.b.buffer,
            d,
            &self.product.c.buffer,
        ]
    }
}

/// `C = α·op(A)·op(B) + β·D` prepared for recording.
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
        },
    )
}

/// Runs `products` in order, `repeat` times over, in one submission (each sees the writes of
/// the previous ones).
pub fn run_products(gpu: &Gpu, products: &[PreparedProduct], repeat: usize) -> Result<()> {
    let bindings: Vec<[&wgpu::Buffer; 5]> = products.iter().map(|p| p.bindings()).collect();
    let jobs: Vec<Job> = products
        .iter()
        .zip(&bindings)
        .map(|(p, b)| Job {
            shader: if p.blocked {
                &shaders::GEMM_BLOCKED
            } else {
                &shaders::GEMM
            },
            bindings: b,
            groups: p.groups,
        })
        .collect();
    gpu.dispatch_sequence(&jobs, repeat)
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
    let ga = GpuMat::upload(gpu, "gemm A", a)?;
    let gb = GpuMat::upload(gpu, "gemm B", b)?;
    let gd = d.map(|d| GpuMat::upload(gpu, "gemm D", d)).transpose()?;
    let (m, _) = op_shape(&ga, trans_a);
    let (_, n) = op_shape(&gb, trans_b);
    let gc = GpuMat::poisoned(gpu, "gemm C", m, n)?;
    let product = PreparedProduct::new(
        gpu,
        Product {
            a: &ga,
            trans_a,
            b: &gb,
            trans_b,
            alpha: alpha as f32,
            beta: beta as f32,
            d: gd.as_ref(),
            c: &gc,
        },
    )?;
    run_products(gpu, &[product], 1)?;
    gc.download(gpu)
}

/// The f64 reference of [`gemm`] and the elementwise bound on the kernel's f32 error,
/// `γ_{k+5}(|α|·|op(A)||op(B)| + |β|·|D|)`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_reference(
    a: &Mat,
    trans_a: bool,
    b: &Mat,
    trans_b: bool,
    alpha: f64,
    beta: f64,
    d: Option<&Mat>,
) -> Result<(Mat, Mat)> {
    let oa = if trans_a {
        a.transpose().to_owned()
    } else {
        a.clone()
    };
    let ob = if trans_b {
        b.transpose().to_owned()
    } else {
        b.clone()
    };
    if oa.ncols() != ob.nrows() {
        return Err(Error::DimensionMismatch {
            what: "GEMM inner dimension (rows of op(B))".into(),
            expected: oa.ncols(),
            got: ob.nrows(),
        });
    }
    let (m, k, n) = (oa.nrows(), oa.ncols(), ob.ncols());
    let nu = (k + 5) as f64 * F32_UNIT_ROUNDOFF;
    let gamma = nu / (1.0 - nu);
    let mut value = Mat::zeros(m, n);
    let mut bound = Mat::zeros(m, n);
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut mag) = (0.0, 0.0);
            for l in 0..k {
                s += oa[(i, l)] * ob[(l, j)];
                mag += (oa[(i, l)] * ob[(l, j)]).abs();
            }
            let dij = d.map_or(0.0, |d| d[(i, j)]);
            value[(i, j)] = alpha * s + beta * dij;
            bound[(i, j)] = gamma * (alpha.abs() * mag + beta.abs() * dij.abs());
        }
    }
    Ok((value, bound))
}
