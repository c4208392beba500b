//! Wrapper of `gpu/denoiser_jvp.wgsl`: `f(y)` and the Jacobian-vector product `∇f(y)·z` of a
//! denoiser for a batch of (point, probe) pairs, in f32 on the GPU; the f64 reference of the
//! same formulas on the CPU with a derived bound on the kernel's f32 error.
//!
//! Hutchinson's divergence estimate `zᵀ∇f(y)z` (Rademacher z) and SURE's per-sample terms are
//! formed from these outputs on the host ([`crate::denoisers::divergence`],
//! [`crate::theorems::sure`]).
//!
//! Error bounds (`u = 2⁻²⁴`, `γ_n = nu/(1 − nu)`, Higham's *Accuracy and Stability*, §3.1): every
//! input is rounded to f32 (relative error u), and a sum of n rounded products carries at most
//! `γ_{n+2}·Σ|terms|`. The kernels' one tanh (`gpu/tanh.wgsl`) is within
//! [`activation_rounding`]`(Tanh)` = `12u` absolutely (derived there). The per-element bounds
//! below are first-order; they are doubled to cover second-order terms.

use super::gmm::f32_error_bound;
use super::uniforms::JvpParams;
use super::{grid_for, shaders, Gpu, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::numerics::activation::{activation_rounding, Activation};
use crate::numerics::{gamma_f32, F32_UNIT_ROUNDOFF};
use crate::targets::{GaussianMixture, Target};

/// Largest hidden width of the MLP kernel (its private arrays).
pub const MAX_HIDDEN: usize = 256;
/// Largest number of mixture components of the GMM kernel.
pub const MAX_COMPONENTS: usize = 32;

/// A denoiser the JVP kernel can evaluate, given by its parameters (the denoiser types of
/// [`crate::denoisers`] convert into it with `JvpDenoiser::from(&f)`). Shapes are checked
/// before any use: a mismatch is a [`Error::DimensionMismatch`].
#[derive(Debug, Clone, Copy)]
pub enum JvpDenoiser<'a> {
    /// `W y + b`: W d×d, b of length d.
    Affine {
        /// W.
        weight: &'a Mat,
        /// b.
        bias: &'a [f64],
    },
    /// Soft thresholding at τ ≥ 0, `sign(y)(|y| − τ)₊` per coordinate, in dimension d.
    SoftThreshold {
        /// τ.
        threshold: f64,
        /// d.
        dim: usize,
    },
    /// `b + Σ_q W_q y^{∘q}` (q = 1..P): each W_q d×d, b of length d.
    PowerMap {
        /// W₁, …, W_P.
        weights: &'a [Mat],
        /// b.
        bias: &'a [f64],
    },
    /// `W₂ tanh(W₁ y + b₁) + b₂`: W₁ h×d, b₁ of length h, W₂ d×h, b₂ of length d.
    Mlp {
        /// W₁.
        w1: &'a Mat,
        /// b₁.
        b1: &'a [f64],
        /// W₂.
        w2: &'a Mat,
        /// b₂.
        b2: &'a [f64],
    },
    /// The Bayes denoiser `E[x|y]` of a Gaussian mixture.
    Gmm(&'a GaussianMixture),
}

/// `f(y_p)` and `∇f(y_p) z_p` for every row p (row-major n×d each), with, for the reference,
/// elementwise bounds on the kernel's f32 error.
#[derive(Debug, Clone)]
pub struct JvpBatch {
    /// `f(y_p)`, row p.
    pub values: Vec<f64>,
    /// `∇f(y_p) z_p`, row p.
    pub jvp: Vec<f64>,
    /// Bound on `|f_gpu − f|` per element (zero for GPU results).
    pub value_bound: Vec<f64>,
    /// Bound on `|(Jz)_gpu − Jz|` per element (zero for GPU results).
    pub jvp_bound: Vec<f64>,
}

/// The f64 reference at one point: `f(y)`, `∇f(y)z`, and bounds on the kernel's f32 error of
/// each element.
#[derive(Debug, Clone, PartialEq)]
pub struct JvpPoint {
    /// `f(y)`.
    pub value: Vec<f64>,
    /// `∇f(y) z`.
    pub jvp: Vec<f64>,
    /// Bound on `|f_gpu − f|` per element.
    pub value_bound: Vec<f64>,
    /// Bound on `|(Jz)_gpu − Jz|` per element.
    pub jvp_bound: Vec<f64>,
}

impl<'a> JvpDenoiser<'a> {
    /// The dimension d.
    pub fn dim(&self) -> usize {
        match self {
            Self::Affine { bias, .. } | Self::PowerMap { bias, .. } => bias.len(),
            Self::SoftThreshold { dim, .. } => *dim,
            Self::Mlp { b2, .. } => b2.len(),
            Self::Gmm(target) => target.dim(),
        }
    }

    /// Every parameter has the shape its variant documents (d from [`JvpDenoiser::dim`]), is
    /// finite, and τ ≥ 0.
    fn check_parameters(&self) -> Result<()> {
        let d = self.dim();
        let shape = |what: &'static str, m: &Mat, rows: usize, cols: usize| -> Result<()> {
            if (m.nrows(), m.ncols()) != (rows, cols) {
                return Err(Error::DimensionMismatch {
                    what: format!("{what} ({}×{}, want {rows}×{cols})", m.nrows(), m.ncols())
                        .into(),
                    expected: rows * cols,
                    got: m.nrows() * m.ncols(),
                });
            }
            linalg::ensure_finite_mat(what, m)
        };
        match self {
            Self::Affine { weight, bias } => {
                shape("affine weight", weight, d, d)?;
                crate::error::ensure_finite("affine bias", bias)
            }
            Self::SoftThreshold { threshold, .. } => {
                if threshold.is_finite() && *threshold >= 0.0 {
                    Ok(())
                } else {
                    Err(Error::InvalidArgument {
                        what: "soft threshold".into(),
                        reason: format!("need a finite τ ≥ 0, got {threshold}"),
                    })
                }
            }
            Self::PowerMap { weights, bias } => {
                for w in weights.iter() {
                    shape("power-map weight", w, d, d)?;
                }
                crate::error::ensure_finite("power-map bias", bias)
            }
            Self::Mlp { w1, b1, w2, b2 } => {
                let h = w1.nrows();
                shape("MLP W1", w1, h, d)?;
                shape("MLP W2", w2, d, h)?;
                crate::error::ensure_len("MLP b1", b1, h)?;
                crate::error::ensure_finite("MLP b1", b1)?;
                crate::error::ensure_finite("MLP b2", b2)
            }
            Self::Gmm(_) => Ok(()),
        }
    }

    fn shader(&self) -> &'static shaders::Shader {
        match self {
            Self::Affine { .. } => &shaders::JVP_AFFINE,
            Self::SoftThreshold { .. } => &shaders::JVP_SOFT_THRESHOLD,
            Self::PowerMap { .. } => &shaders::JVP_POWER_MAP,
            Self::Mlp { .. } => &shaders::JVP_MLP,
            Self::Gmm(_) => &shaders::JVP_GMM,
        }
    }

    /// `(width, weights)` in the layout `gpu/denoiser_jvp.wgsl` documents per entry point.
    fn pack(&self, sigma: f64) -> Result<(usize, Vec<f32>)> {
        let flat = |m: &Mat, out: &mut Vec<f32>| {
            for i in 0..m.nrows() {
                for j in 0..m.ncols() {
                    out.push(m[(i, j)] as f32);
                }
            }
        };
        let mut w = Vec::new();
        let width = match self {
            Self::Affine { weight, bias } => {
                flat(weight, &mut w);
                w.extend(bias.iter().map(|&v| v as f32));
                1
            }
            Self::SoftThreshold { threshold, .. } => {
                w.push(*threshold as f32);
                1
            }
            Self::PowerMap { weights, bias } => {
                for m in weights.iter() {
                    flat(m, &mut w);
                }
                w.extend(bias.iter().map(|&v| v as f32));
                weights.len()
            }
            Self::Mlp { w1, b1, w2, b2 } => {
                let hidden = w1.nrows();
                if hidden > MAX_HIDDEN {
                    return Err(Error::InvalidArgument {
                        what: "MLP hidden width".into(),
                        reason: format!("the JVP kernel handles h ≤ {MAX_HIDDEN}, got {hidden}"),
                    });
                }
                flat(w1, &mut w);
                w.extend(b1.iter().map(|&v| v as f32));
                flat(w2, &mut w);
                w.extend(b2.iter().map(|&v| v as f32));
                hidden
            }
            Self::Gmm(target) => {
                let k = target.components().len();
                if k > MAX_COMPONENTS {
                    return Err(Error::InvalidArgument {
                        what: "mixture components".into(),
                        reason: format!("the JVP kernel handles K ≤ {MAX_COMPONENTS}, got {k}"),
                    });
                }
                for (c, nc) in target
                    .components()
                    .iter()
                    .zip(target.noisy_components(sigma)?)
                {
                    w.extend(c.mean.iter().map(|&v| v as f32));
                    flat(&nc.precision, &mut w);
                    flat(&nc.gain, &mut w);
                    w.push(nc.log_norm as f32);
                }
                k
            }
        };
        Ok((width, w))
    }

    /// The f64 reference at one (y, z) with the bounds on the kernel's f32 error.
    /// The formulas are the kernel's; `Jz` of the GMM is the chain rule applied to Bayes' rule
    /// (not Miyasawa's `Cov/σ²`).
    pub fn reference(&self, y: &[f64], z: &[f64], sigma: f64) -> Result<JvpPoint> {
        self.check_parameters()?;
        let d = self.dim();
        crate::error::ensure_len("y", y, d)?;
        crate::error::ensure_finite("y", y)?;
        crate::error::ensure_sigma(sigma)?;
        crate::error::ensure_len("probe", z, d)?;
        crate::error::ensure_finite("probe", z)?;
        let u = F32_UNIT_ROUNDOFF;
        let abs_z: Vec<f64> = z.iter().map(|v| v.abs()).collect();
        let mut f = vec![0.0; d];
        let mut jz = vec![0.0; d];
        let mut bf = vec![0.0; d];
        let mut bj = vec![0.0; d];
        match self {
            Self::Affine { weight: w, bias: b } => {
                for i in 0..d {
                    let (mut mf, mut mj) = (b[i].abs(), 0.0);
                    f[i] = b[i];
                    for j in 0..d {
                        f[i] += w[(i, j)] * y[j];
                        jz[i] += w[(i, j)] * z[j];
                        mf += (w[(i, j)] * y[j]).abs();
                        mj += (w[(i, j)] * z[j]).abs();
                    }
                    bf[i] = 2.0 * gamma_f32(d + 3) * mf;
                    bj[i] = 2.0 * gamma_f32(d + 2) * mj;
                }
            }
            Self::SoftThreshold { threshold, .. } => {
                let tau = *threshold;
                for i in 0..d {
                    let a = y[i].abs();
                    if a > tau {
                        f[i] = y[i].signum() * (a - tau);
                        jz[i] = z[i];
                    }
                    // y and τ rounded to f32 move |y| − τ by ≤ u(|y| + τ); within twice that
                    // of the threshold the kernel may take the other branch.
                    let slack = 2.0 * u * (a + tau);
                    bf[i] = 2.0 * (slack + u * f[i].abs());
                    bj[i] = if (a - tau).abs() <= slack {
                        abs_z[i]
                    } else {
                        0.0
                    };
                }
            }
            Self::PowerMap { weights, bias: b } => {
                let n_powers = weights.len();
                for i in 0..d {
                    let (mut mf, mut mj) = (b[i].abs(), 0.0);
                    f[i] = b[i];
                    for j in 0..d {
                        for (q, w) in weights.iter().enumerate() {
                            let tf = w[(i, j)] * y[j].powi(q as i32 + 1);
                            let tj = w[(i, j)] * (q + 1) as f64 * y[j].powi(q as i32) * z[j];
                            f[i] += tf;
                            jz[i] += tj;
                            mf += tf.abs();
                            mj += tj.abs();
                        }
                    }
                    // each term is a product of ≤ P + 2 rounded factors, summed over d·P terms
                    let n = d * n_powers + 2 * n_powers + 4;
                    bf[i] = 2.0 * gamma_f32(n) * mf;
                    bj[i] = 2.0 * gamma_f32(n) * mj;
                }
            }
            Self::Mlp { w1, b1, w2, b2 } => {
                let h = w1.nrows();
                let mut t = vec![0.0; h];
                let mut dt = vec![0.0; h];
                let mut sz = vec![0.0; h];
                let mut dsz = vec![0.0; h];
                for k in 0..h {
                    let (mut a, mut ma, mut s, mut ms) = (b1[k], b1[k].abs(), 0.0, 0.0);
                    for j in 0..d {
                        a += w1[(k, j)] * y[j];
                        ma += (w1[(k, j)] * y[j]).abs();
                        s += w1[(k, j)] * z[j];
                        ms += (w1[(k, j)] * z[j]).abs();
                    }
                    t[k] = a.tanh();
                    // |tanh'| ≤ 1, plus the kernel's rounding of tanh itself
                    dt[k] = gamma_f32(d + 3) * ma + activation_rounding(Activation::Tanh, a);
                    let slope = 1.0 - t[k] * t[k];
                    sz[k] = slope * s;
                    let ds = gamma_f32(d + 2) * ms;
                    // |Δ(1 − t²)| ≤ 2|t|Δt + 3u (square and subtraction)
                    dsz[k] = slope * ds
                        + s.abs() * (2.0 * t[k].abs() * dt[k] + 3.0 * u)
                        + 2.0 * u * sz[k].abs();
                }
                for i in 0..d {
                    let (mut mf, mut mj, mut ef, mut ej) = (b2[i].abs(), 0.0, 0.0, 0.0);
                    f[i] = b2[i];
                    for k in 0..h {
                        f[i] += w2[(i, k)] * t[k];
                        jz[i] += w2[(i, k)] * sz[k];
                        mf += (w2[(i, k)] * t[k]).abs();
                        mj += (w2[(i, k)] * sz[k]).abs();
                        ef += w2[(i, k)].abs() * dt[k];
                        ej += w2[(i, k)].abs() * dsz[k];
                    }
                    bf[i] = 2.0 * (gamma_f32(h + 3) * mf + ef);
                    bj[i] = 2.0 * (gamma_f32(h + 2) * mj + ej);
                }
            }
            Self::Gmm(target) => {
                let comps = target.noisy_components(sigma)?;
                let rho = target.responsibilities(y, sigma)?;
                let (drho, _, mean_bound) = f32_error_bound(target, y, sigma)?;
                let kk = comps.len();
                let mut slopes = Vec::with_capacity(kk);
                let mut dslopes = Vec::with_capacity(kk);
                let mut ms = Vec::with_capacity(kk);
                let mut dms = Vec::with_capacity(kk);
                let mut gzs = Vec::with_capacity(kk);
                let mut dgzs = Vec::with_capacity(kk);
                for (c, nc) in target.components().iter().zip(&comps) {
                    let r: Vec<f64> = (0..d).map(|i| y[i] - c.mean[i]).collect();
                    let dr: Vec<f64> = (0..d)
                        .map(|i| 2.0 * u * (y[i].abs() + c.mean[i].abs()) + u * r[i].abs())
                        .collect();
                    let (mut slope, mut mag, mut prop) = (0.0, 0.0, 0.0);
                    let mut m = c.mean.clone();
                    let mut dm = vec![0.0; d];
                    let mut gz = vec![0.0; d];
                    let mut dgz = vec![0.0; d];
                    for i in 0..d {
                        let (mut pr, mut pm, mut pp) = (0.0, 0.0, 0.0);
                        let (mut gm, mut gp, mut gza) = (0.0, 0.0, 0.0);
                        for j in 0..d {
                            pr += nc.precision[(i, j)] * r[j];
                            pm += (nc.precision[(i, j)] * r[j]).abs();
                            pp += nc.precision[(i, j)].abs() * dr[j];
                            m[i] += nc.gain[(i, j)] * r[j];
                            gm += (nc.gain[(i, j)] * r[j]).abs();
                            gp += nc.gain[(i, j)].abs() * dr[j];
                            gz[i] += nc.gain[(i, j)] * z[j];
                            gza += (nc.gain[(i, j)] * z[j]).abs();
                        }
                        slope -= pr * z[i];
                        mag += pm * abs_z[i];
                        prop += pp * abs_z[i];
                        dm[i] = gamma_f32(d + 2) * gm + gp + u * c.mean[i].abs();
                        dgz[i] = gamma_f32(d + 1) * gza;
                    }
                    slopes.push(slope);
                    dslopes.push(gamma_f32(2 * d + 2) * mag + prop);
                    ms.push(m);
                    dms.push(dm);
                    gzs.push(gz);
                    dgzs.push(dgz);
                }
                let mean_slope: f64 = (0..kk).map(|k| rho[k] * slopes[k]).sum();
                let dmean_slope: f64 = (0..kk)
                    .map(|k| {
                        drho[k] * slopes[k].abs()
                            + rho[k] * dslopes[k]
                            + gamma_f32(kk + 2) * rho[k] * slopes[k].abs()
                    })
                    .sum();
                for i in 0..d {
                    let (mut mag, mut err) = (0.0, 0.0);
                    for k in 0..kk {
                        let centred = slopes[k] - mean_slope;
                        let term = gzs[k][i] + centred * ms[k][i];
                        f[i] += rho[k] * ms[k][i];
                        jz[i] += rho[k] * term;
                        mag += rho[k] * (gzs[k][i].abs() + centred.abs() * ms[k][i].abs());
                        err += drho[k] * (gzs[k][i].abs() + centred.abs() * ms[k][i].abs())
                            + rho[k]
                                * (dgzs[k][i]
                                    + (dslopes[k] + dmean_slope) * ms[k][i].abs()
                                    + centred.abs() * dms[k][i]);
                    }
                    bf[i] = mean_bound[i];
                    bj[i] = 2.0 * (err + gamma_f32(2 * kk + 3) * mag)
                        + f64::from(f32::MIN_POSITIVE) * kk as f64 * (1.0 + mag);
                }
            }
        }
        Ok(JvpPoint {
            value: f,
            jvp: jz,
            value_bound: bf,
            jvp_bound: bj,
        })
    }
}

fn check_batch(den: &JvpDenoiser, points: &Mat, probes: &Mat) -> Result<()> {
    den.check_parameters()?;
    let d = den.dim();
    for (what, m) in [("points", points), ("probes", probes)] {
        if m.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: format!("{what} (columns)").into(),
                expected: d,
                got: m.ncols(),
            });
        }
        linalg::ensure_finite_mat(what, m)?;
    }
    if points.nrows() != probes.nrows() {
        return Err(Error::DimensionMismatch {
            what: "probes (rows)".into(),
            expected: points.nrows(),
            got: probes.nrows(),
        });
    }
    Ok(())
}

/// The f64 reference of [`denoiser_jvp`] for every row, with the f32 error bounds.
pub fn denoiser_jvp_reference(
    den: &JvpDenoiser,
    points: &Mat,
    probes: &Mat,
    sigma: f64,
) -> Result<JvpBatch> {
    use rayon::prelude::*;
    check_batch(den, points, probes)?;
    let rows: Vec<_> = (0..points.nrows())
        .into_par_iter()
        .map(|p| den.reference(&linalg::row(points, p), &linalg::row(probes, p), sigma))
        .collect::<Result<_>>()?;
    let mut out = JvpBatch {
        values: vec![],
        jvp: vec![],
        value_bound: vec![],
        jvp_bound: vec![],
    };
    for r in rows {
        out.values.extend(r.value);
        out.jvp.extend(r.jvp);
        out.value_bound.extend(r.value_bound);
        out.jvp_bound.extend(r.jvp_bound);
    }
    Ok(out)
}

/// `f(y_p)` and `∇f(y_p) z_p` for every row of `points` and `probes` (n×d), on the GPU; the
/// batch is tiled so no binding exceeds the adapter's limit.
pub fn denoiser_jvp(
    gpu: &Gpu,
    den: &JvpDenoiser,
    points: &Mat,
    probes: &Mat,
    sigma: f64,
) -> Result<JvpBatch> {
    crate::error::ensure_sigma(sigma)?;
    check_batch(den, points, probes)?;
    let d = den.dim();
    let (width, packed) = den.pack(sigma)?;
    let weights = gpu.input("jvp weights", &packed)?;
    let n = points.nrows();
    let max_rows = ((gpu.max_binding_bytes() / 4) as usize / (2 * d).max(1)).max(1);
    let mut out = JvpBatch {
        values: Vec::with_capacity(n * d),
        jvp: Vec::with_capacity(n * d),
        value_bound: vec![0.0; n * d],
        jvp_bound: vec![0.0; n * d],
    };
    for start in (0..n).step_by(max_rows) {
        let rows = max_rows.min(n - start);
        let mut ys = Vec::with_capacity(rows * d);
        let mut zs = Vec::with_capacity(rows * d);
        for p in start..start + rows {
            ys.extend((0..d).map(|j| points[(p, j)] as f32));
            zs.extend((0..d).map(|j| probes[(p, j)] as f32));
        }
        let groups = grid_for(
            (rows as u32).div_ceil(WORKGROUP_SIZE),
            gpu.limits().max_compute_workgroups_per_dimension,
        );
        let params = JvpParams {
            n_points: rows as u32,
            dim: d as u32,
            width: width as u32,
            grid_x: groups[0],
        };
        let params = gpu.uniform("jvp params", &params);
        let ybuf = gpu.input("jvp points", &ys)?;
        let zbuf = gpu.input("jvp probes", &zs)?;
        let obuf = gpu.output("jvp out", rows * 2 * d)?;
        gpu.dispatch(
            den.shader(),
            &[&params, &ybuf, &zbuf, &weights, &obuf],
            groups,
        )?;
        let raw: Vec<f32> = gpu.read(&obuf, rows * 2 * d)?;
        for r in raw.chunks_exact(2 * d) {
            out.values.extend(r[..d].iter().map(|&v| f64::from(v)));
            out.jvp.extend(r[d..].iter().map(|&v| f64::from(v)));
        }
    }
    Ok(out)
}
