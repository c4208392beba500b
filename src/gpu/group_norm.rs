//! GroupNorm on the GPU (`gpu/group_norm.wgsl`) and its gradients, with an f64 reference that
//! carries a rigorous bound on the f32 kernel's error. For an NCHW tensor with C channels in G
//! groups, each (image b, group g) normalises its `n = (C/G)·H·W` entries:
//!
//! `μ = Σx/n`, `s = √(Σ(x − μ)²/n + eps)`, `z = (x − μ)/s`, `y = γ_c·z + β_c`;
//!
//! and with `dz = γ_c·dy`, `A = Σdz/n`, `B = Σdz·z/n` per group:
//! `dx = (dz − A − z·B)/s`, `dγ_c = Σ_{b,hw} dy·z`, `dβ_c = Σ_{b,hw} dy`.
//!
//! **f32 error.** The reference repeats the kernel's operations in the kernel's order on
//! [`Bounded`] values `(v, e)`: v the f64 value, e a bound on the distance of the kernel's f32
//! value from v. Inputs start at `e = u|x|` (rounding to f32); `+`, `−`, `×` are correctly
//! rounded in WGSL (`u·|result|` added to the propagated error), `/` is accurate to 2.5 ULP
//! (`5u·|result|`) and `sqrt`, inherited from `1/inverseSqrt`, to 2 + 2.5 ULP (`9u·|result|`);
//! propagation is exact for `+`, `−`, `×` and bounded for `/` and `√` (the divisor's and the
//! radicand's intervals kept away from 0). Subnormal results are not modelled (the tests'
//! values are far from them).

use super::uniforms::NormParams;
use super::{groups_1d, shaders, Gpu};
use crate::error::{Error, Result};
use crate::numerics::F32_UNIT_ROUNDOFF as U;

/// The shape of a GroupNorm: `batch` images of `channels × height × width` in `groups` groups,
/// and the variance offset `eps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupNormShape {
    /// Images.
    pub batch: usize,
    /// Channels (a multiple of `groups`).
    pub channels: usize,
    /// Groups.
    pub groups: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// The offset added to the variance (> 0, finite).
    pub eps: f64,
}

impl GroupNormShape {
    /// Entries of the tensor.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.height * self.width
    }

    /// Whether the tensor has no entries (never, for a validated shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries of one group, `(C/G)·H·W`.
    fn group_size(&self) -> usize {
        self.channels / self.groups * self.height * self.width
    }

    /// Returns an error naming a zero dimension, channels not divisible by the groups, a
    /// non-positive eps, or a tensor beyond the kernels' 32-bit indices.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("batch", self.batch),
            ("channels", self.channels),
            ("groups", self.groups),
            ("height", self.height),
            ("width", self.width),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: format!("group norm {what}").into(),
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        if !self.channels.is_multiple_of(self.groups) {
            return Err(Error::InvalidArgument {
                what: "group norm groups".into(),
                reason: format!(
                    "{} channels do not split into {} groups",
                    self.channels, self.groups
                ),
            });
        }
        crate::error::ensure_positive_finite("group norm eps", self.eps)?;
        if self.len() as u128 >= u32::MAX as u128 || self.group_size() >= 1 << 24 {
            return Err(Error::GpuLimit(format!(
                "group norm of {} entries ({} per group): beyond the kernels' 32-bit indices or \
                 f32's exact group counts",
                self.len(),
                self.group_size()
            )));
        }
        Ok(())
    }

    fn params(&self, gpu: &Gpu, items: usize) -> (wgpu::Buffer, [u32; 3]) {
        let groups = groups_1d(gpu, items);
        let params = NormParams {
            batch: self.batch as u32,
            channels: self.channels as u32,
            groups: self.groups as u32,
            plane: (self.height * self.width) as u32,
            eps: self.eps as f32,
            grid_x: groups[0],
            pad0: 0,
            pad1: 0,
        };
        (gpu.uniform("group norm params", &params), groups)
    }
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

/// Checks the operands of a GroupNorm: x (and dy) of the tensor's length, γ and β of C, all
/// finite and within f32's range.
fn check(shape: &GroupNormShape, x: &[f64], gamma: &[f64], beta: &[f64]) -> Result<()> {
    shape.validate()?;
    super::conv::ensure_operand("group norm input", x, shape.len())?;
    super::conv::ensure_operand("group norm γ", gamma, shape.channels)?;
    super::conv::ensure_operand("group norm β", beta, shape.channels)
}

/// `(x, dy if a backward pass, γ, β)`.
type Operands<'a> = (&'a [f64], Option<&'a [f64]>, &'a [f64], &'a [f64]);

/// Uploads x, dy (or a stand-in) and [γ | β] and a stats buffer, and runs `entries` in order
/// (each over its own item count), returning the output buffer's first `out_words` words.
fn run(
    gpu: &Gpu,
    shape: &GroupNormShape,
    operands: Operands<'_>,
    entries: &[(&shaders::Shader, usize)],
    out_words: usize,
) -> Result<Vec<f64>> {
    let (x, dy, gamma, beta) = operands;
    let x = gpu.input("group norm x", &to_f32(x))?;
    let dy = match dy {
        Some(dy) => gpu.input("group norm dy", &to_f32(dy))?,
        None => gpu.stand_in(),
    };
    let affine: Vec<f32> = gamma.iter().chain(beta).map(|&v| v as f32).collect();
    let affine = gpu.input("group norm affine", &affine)?;
    let stats = gpu.output("group norm stats", 4 * shape.batch * shape.groups)?;
    let out = gpu.output("group norm out", out_words)?;
    for &(shader, items) in entries {
        let (params, groups) = shape.params(gpu, items);
        gpu.dispatch(shader, &[&params, &x, &dy, &affine, &stats, &out], groups)?;
    }
    Ok(gpu
        .read::<f32>(&out, out_words)?
        .into_iter()
        .map(f64::from)
        .collect())
}

/// `y = GroupNorm(x; γ, β)` on the GPU in f32 (module doc). Errors: a bad shape, operands of the
/// wrong length, non-finite or beyond f32's range.
pub fn group_norm(
    gpu: &Gpu,
    shape: &GroupNormShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
) -> Result<Vec<f64>> {
    check(shape, x, gamma, beta)?;
    let statistics = shape.batch * shape.groups;
    run(
        gpu,
        shape,
        (x, None, gamma, beta),
        &[
            (&shaders::GROUP_NORM_STATS, statistics),
            (&shaders::GROUP_NORM_APPLY, shape.len()),
        ],
        shape.len(),
    )
}

/// The gradients of GroupNorm on the GPU in f32: `(dx, dγ, dβ)` from x, γ, β and `dy`
/// (module doc). Errors: as [`group_norm`].
pub fn group_norm_backward(
    gpu: &Gpu,
    shape: &GroupNormShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    dy: &[f64],
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    check(shape, x, gamma, beta)?;
    super::conv::ensure_operand("group norm output gradient", dy, shape.len())?;
    let statistics = shape.batch * shape.groups;
    let stats_then = |last: (&'static shaders::Shader, usize), words| {
        run(
            gpu,
            shape,
            (x, Some(dy), gamma, beta),
            &[
                (&shaders::GROUP_NORM_STATS, statistics),
                (&shaders::GROUP_NORM_GRAD_STATS, statistics),
                last,
            ],
            words,
        )
    };
    let dx = stats_then((&shaders::GROUP_NORM_GRAD_INPUT, shape.len()), shape.len())?;
    let affine = stats_then(
        (&shaders::GROUP_NORM_GRAD_AFFINE, shape.channels),
        2 * shape.channels,
    )?;
    let (dgamma, dbeta) = affine.split_at(shape.channels);
    Ok((dx, dgamma.to_vec(), dbeta.to_vec()))
}

/// A value and a bound on the f32 kernel's distance from it (module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounded {
    /// The f64 value.
    pub v: f64,
    /// The bound on the kernel's error.
    pub e: f64,
}

impl Bounded {
    /// An operand rounded to f32 on upload: `e = u|x|`.
    pub fn input(x: f64) -> Self {
        Self {
            v: x,
            e: U * x.abs(),
        }
    }

    /// An exact constant (an integer below 2²⁴).
    pub fn exact(x: f64) -> Self {
        Self { v: x, e: 0.0 }
    }

    /// `v` with the propagated error and `ulps` roundings of the result; an error that is not
    /// a number (0·∞ from an operand already unbounded) is +∞, never NaN.
    fn rounded(v: f64, propagated: f64, ulps: f64) -> Self {
        let e = propagated + ulps * U * (v.abs() + propagated);
        Self {
            v,
            e: if e.is_nan() { f64::INFINITY } else { e },
        }
    }

    /// `a + b`, correctly rounded.
    pub fn plus(self, b: Self) -> Self {
        Self::rounded(self.v + b.v, self.e + b.e, 1.0)
    }

    /// `a − b`, correctly rounded.
    pub fn minus(self, b: Self) -> Self {
        Self::rounded(self.v - b.v, self.e + b.e, 1.0)
    }

    /// `a·b`, correctly rounded.
    pub fn times(self, b: Self) -> Self {
        let propagated = self.v.abs() * b.e + b.v.abs() * self.e + self.e * b.e;
        Self::rounded(self.v * b.v, propagated, 1.0)
    }

    /// `a/b` to 2.5 ULP; infinite error when b's interval reaches 0.
    pub fn over(self, b: Self) -> Self {
        let q = self.v / b.v;
        let gap = b.v.abs() - b.e;
        let propagated = if gap > 0.0 {
            (self.e + q.abs() * b.e) / gap
        } else {
            f64::INFINITY
        };
        Self::rounded(q, propagated, 5.0)
    }

    /// `√a` to 4.5 ULP (WGSL's `1/inverseSqrt`); infinite error when a's interval reaches 0.
    pub fn root(self) -> Self {
        let r = self.v.sqrt();
        let low = self.v - self.e;
        let propagated = if low > 0.0 {
            self.e / (low.sqrt() + r)
        } else {
            f64::INFINITY
        };
        Self::rounded(r, propagated, 9.0)
    }
}

/// Per group (b, g): the kernel's μ and s as [`Bounded`] values.
fn reference_stats(shape: &GroupNormShape, x: &[Bounded]) -> Vec<(Bounded, Bounded)> {
    let n = shape.group_size();
    let count = Bounded::exact(n as f64);
    (0..shape.batch * shape.groups)
        .map(|bg| {
            let group = &x[bg * n..(bg + 1) * n];
            let sum = group
                .iter()
                .fold(Bounded::exact(0.0), |acc, &v| acc.plus(v));
            let mean = sum.over(count);
            let squares = group.iter().fold(Bounded::exact(0.0), |acc, &v| {
                let d = v.minus(mean);
                acc.plus(d.times(d))
            });
            let s = squares.over(count).plus(Bounded::input(shape.eps)).root();
            (mean, s)
        })
        .collect()
}

/// The channel and group (b, g) of entry `i`.
fn locate(shape: &GroupNormShape, i: usize) -> (usize, usize) {
    let plane = shape.height * shape.width;
    ((i / plane) % shape.channels, i / shape.group_size())
}

fn split(values: Vec<Bounded>) -> (Vec<f64>, Vec<f64>) {
    values.into_iter().map(|b| (b.v, b.e)).unzip()
}

fn inputs(values: &[f64]) -> Vec<Bounded> {
    values.iter().map(|&v| Bounded::input(v)).collect()
}

/// Refuses a bad shape or bounded operands of the wrong lengths.
fn check_bounded(shape: &GroupNormShape, x: &[Bounded], gamma: &[Bounded]) -> Result<()> {
    shape.validate()?;
    for (what, len, want) in [
        ("group norm input", x.len(), shape.len()),
        ("group norm γ", gamma.len(), shape.channels),
    ] {
        if len != want {
            return Err(Error::DimensionMismatch {
                what: what.into(),
                expected: want,
                got: len,
            });
        }
    }
    Ok(())
}

/// GroupNorm of [`Bounded`] operands, the kernels' operations in their order: an operand the
/// kernel reads as an f32 value already off by `e` from `v` (the output of an earlier kernel)
/// enters as `Bounded { v, e }`, an f64 value rounded on upload as [`Bounded::input`]. The f64
/// values' own rounding (relative 2⁻⁵³, 2²⁹ times below each f32 term) is not added. Errors:
/// a bad shape, operands of the wrong length.
pub fn group_norm_bounded(
    shape: &GroupNormShape,
    x: &[Bounded],
    gamma: &[Bounded],
    beta: &[Bounded],
) -> Result<Vec<Bounded>> {
    check_bounded(shape, x, gamma)?;
    check_bounded(shape, x, beta)?;
    let stats = reference_stats(shape, x);
    Ok((0..shape.len())
        .map(|i| {
            let (c, bg) = locate(shape, i);
            let (mean, s) = stats[bg];
            let z = x[i].minus(mean).over(s);
            gamma[c].times(z).plus(beta[c])
        })
        .collect())
}

/// GroupNorm's gradients `(dx, dγ, dβ)` of [`Bounded`] operands (as [`group_norm_bounded`]),
/// the kernels' operations in their order. Errors: a bad shape, operands of the wrong length.
#[allow(clippy::type_complexity)]
pub fn group_norm_backward_bounded(
    shape: &GroupNormShape,
    x: &[Bounded],
    gamma: &[Bounded],
    dy: &[Bounded],
) -> Result<(Vec<Bounded>, Vec<Bounded>, Vec<Bounded>)> {
    check_bounded(shape, x, gamma)?;
    check_bounded(shape, dy, gamma)?;
    let stats = reference_stats(shape, x);
    let n = shape.group_size();
    let count = Bounded::exact(n as f64);
    let z_of = |i: usize| {
        let (_, bg) = locate(shape, i);
        let (mean, s) = stats[bg];
        x[i].minus(mean).over(s)
    };
    let dz_of = |i: usize| gamma[locate(shape, i).0].times(dy[i]);
    let moments: Vec<(Bounded, Bounded)> = (0..shape.batch * shape.groups)
        .map(|bg| {
            let (a, b) = (bg * n..(bg + 1) * n)
                .fold((Bounded::exact(0.0), Bounded::exact(0.0)), |(a, b), i| {
                    (a.plus(dz_of(i)), b.plus(dz_of(i).times(z_of(i))))
                });
            (a.over(count), b.over(count))
        })
        .collect();
    let dx = (0..shape.len())
        .map(|i| {
            let (_, bg) = locate(shape, i);
            let (a, b) = moments[bg];
            dz_of(i).minus(a).minus(z_of(i).times(b)).over(stats[bg].1)
        })
        .collect();
    let plane = shape.height * shape.width;
    let per_channel = |term: &dyn Fn(usize) -> Bounded| -> Vec<Bounded> {
        (0..shape.channels)
            .map(|c| {
                (0..shape.batch)
                    .flat_map(|b| {
                        let base = (b * shape.channels + c) * plane;
                        base..base + plane
                    })
                    .fold(Bounded::exact(0.0), |acc, i| acc.plus(term(i)))
            })
            .collect()
    };
    let dgamma = per_channel(&|i| dy[i].times(z_of(i)));
    let dbeta = per_channel(&|i| dy[i]);
    Ok((dx, dgamma, dbeta))
}

/// `(y, bound)`: the f64 reference of [`group_norm`] with the per-entry bound on the kernel's
/// error (module doc). Errors: as [`group_norm`].
pub fn group_norm_reference(
    shape: &GroupNormShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    check(shape, x, gamma, beta)?;
    Ok(split(group_norm_bounded(
        shape,
        &inputs(x),
        &inputs(gamma),
        &inputs(beta),
    )?))
}

/// The f64 references of [`group_norm_backward`], each with its per-entry bound:
/// `((dx, bound), (dγ, bound), (dβ, bound))`. Errors: as [`group_norm_backward`].
#[allow(clippy::type_complexity)]
pub fn group_norm_backward_reference(
    shape: &GroupNormShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    dy: &[f64],
) -> Result<(
    (Vec<f64>, Vec<f64>),
    (Vec<f64>, Vec<f64>),
    (Vec<f64>, Vec<f64>),
)> {
    check(shape, x, gamma, beta)?;
    super::conv::ensure_operand("group norm output gradient", dy, shape.len())?;
    let (dx, dgamma, dbeta) =
        group_norm_backward_bounded(shape, &inputs(x), &inputs(gamma), &inputs(dy))?;
    Ok((split(dx), split(dgamma), split(dbeta)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The propagation rules by hand: an input's rounding, exact propagation through `+` and
    /// `×`, the division's 5u and the square root's 9u.
    #[test]
    fn bounded_arithmetic_by_hand() {
        let a = Bounded::input(2.0);
        assert_eq!(a.e, 2.0 * U);
        let s = a.plus(Bounded::exact(1.0));
        assert_eq!(s.v, 3.0);
        assert!((s.e - (2.0 * U + U * (3.0 + 2.0 * U))).abs() < 1e-30);
        let p = Bounded::exact(3.0).times(Bounded::exact(4.0));
        assert_eq!(p.e, U * 12.0);
        let q = Bounded::exact(1.0).over(Bounded::exact(4.0));
        assert_eq!(q.e, 5.0 * U * 0.25);
        let r = Bounded::exact(16.0).root();
        assert_eq!(r.e, 9.0 * U * 4.0);
        assert!(Bounded::exact(1.0)
            .over(Bounded { v: 0.0, e: 0.0 })
            .e
            .is_infinite());
    }
}
