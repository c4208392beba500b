//! The f64 references of [`super::conv2d`], [`super::conv2d_input_grad`] and
//! [`super::conv2d_weight_grad`], each entry with the bound on the f32 kernel's error
//! (module doc of [`super`]): for an entry whose dot product has `n` terms `t_l`,
//! `γ_{n+2}(f32)·Σ|t_l| + γ_n(f64)·Σ|t_l|` — the kernel's rounding and the reference's own.

use super::{ensure_operand, ConvShape, Padding};
use crate::error::Result;
use crate::numerics::{gamma_f32, gamma_f64};

/// The padded index of `k` along a side of length `n`: wrapped when circular, `None` (the term
/// is dropped) when it leaves `[0, n)` under zero padding.
fn padded(k: isize, n: usize, padding: Padding) -> Option<usize> {
    let side = n as isize;
    match padding {
        Padding::Circular => Some(k.rem_euclid(side) as usize),
        Padding::Zero => (0..side).contains(&k).then_some(k as usize),
    }
}

/// `(values, bounds)` from per-entry `(Σ t_l, Σ|t_l|, n)`.
fn with_bounds(entries: Vec<(f64, f64, usize)>) -> (Vec<f64>, Vec<f64>) {
    entries
        .into_iter()
        .map(|(sum, magnitude, n)| (sum, (gamma_f32(n + 2) + gamma_f64(n)) * magnitude))
        .unzip()
}

/// `(Y, bound)` of `Y[b,o,i,j] = Σ_{c,p,q} K[o,c,p,q]·X[b,c,π(i+p−r),π(j+q−r)]` in f64 (every
/// entry counts `in_channels·kernel²` terms, dropped ones included, which only loosens it).
/// Errors: as [`super::conv2d`].
pub fn conv2d_reference(
    shape: &ConvShape,
    input: &[f64],
    weight: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    shape.validate()?;
    ensure_operand("convolution input", input, shape.input_len())?;
    ensure_operand("convolution weights", weight, shape.weight_len())?;
    let ConvShape {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel,
        padding,
    } = *shape;
    let r = shape.radius() as isize;
    let n = in_channels * kernel * kernel;
    let mut entries = Vec::with_capacity(shape.output_len());
    for b in 0..batch {
        for o in 0..out_channels {
            for i in 0..height {
                for j in 0..width {
                    let (mut sum, mut magnitude) = (0.0, 0.0);
                    for c in 0..in_channels {
                        for p in 0..kernel {
                            let Some(ii) = padded(i as isize + p as isize - r, height, padding)
                            else {
                                continue;
                            };
                            for q in 0..kernel {
                                let Some(jj) = padded(j as isize + q as isize - r, width, padding)
                                else {
                                    continue;
                                };
                                let term = weight
                                    [((o * in_channels + c) * kernel + p) * kernel + q]
                                    * input[((b * in_channels + c) * height + ii) * width + jj];
                                sum += term;
                                magnitude += term.abs();
                            }
                        }
                    }
                    entries.push((sum, magnitude, n));
                }
            }
        }
    }
    Ok(with_bounds(entries))
}

/// `(∂L/∂X, bound)` of `∂L/∂X[b,c,i,j] = Σ_{o,p,q} K[o,c,p,q]·G[b,o,π(i−p+r),π(j−q+r)]` in f64.
/// Errors: as [`super::conv2d_input_grad`].
pub fn conv2d_input_grad_reference(
    shape: &ConvShape,
    output_grad: &[f64],
    weight: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    shape.validate()?;
    ensure_operand(
        "convolution output gradient",
        output_grad,
        shape.output_len(),
    )?;
    ensure_operand("convolution weights", weight, shape.weight_len())?;
    let ConvShape {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel,
        padding,
    } = *shape;
    let r = shape.radius() as isize;
    let n = out_channels * kernel * kernel;
    let mut entries = Vec::with_capacity(shape.input_len());
    for b in 0..batch {
        for c in 0..in_channels {
            for i in 0..height {
                for j in 0..width {
                    let (mut sum, mut magnitude) = (0.0, 0.0);
                    for o in 0..out_channels {
                        for p in 0..kernel {
                            let Some(ii) = padded(i as isize - p as isize + r, height, padding)
                            else {
                                continue;
                            };
                            for q in 0..kernel {
                                let Some(jj) = padded(j as isize - q as isize + r, width, padding)
                                else {
                                    continue;
                                };
                                let term = weight
                                    [((o * in_channels + c) * kernel + p) * kernel + q]
                                    * output_grad
                                        [((b * out_channels + o) * height + ii) * width + jj];
                                sum += term;
                                magnitude += term.abs();
                            }
                        }
                    }
                    entries.push((sum, magnitude, n));
                }
            }
        }
    }
    Ok(with_bounds(entries))
}

/// `(∂L/∂K, bound)` of `∂L/∂K[o,c,p,q] = Σ_{b,i,j} G[b,o,i,j]·X[b,c,π(i+p−r),π(j+q−r)]` in f64.
/// Errors: as [`super::conv2d_weight_grad`].
pub fn conv2d_weight_grad_reference(
    shape: &ConvShape,
    input: &[f64],
    output_grad: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    shape.validate()?;
    ensure_operand("convolution input", input, shape.input_len())?;
    ensure_operand(
        "convolution output gradient",
        output_grad,
        shape.output_len(),
    )?;
    let ConvShape {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel,
        padding,
    } = *shape;
    let r = shape.radius() as isize;
    let n = batch * height * width;
    let mut entries = Vec::with_capacity(shape.weight_len());
    for o in 0..out_channels {
        for c in 0..in_channels {
            for p in 0..kernel {
                for q in 0..kernel {
                    let (mut sum, mut magnitude) = (0.0, 0.0);
                    for b in 0..batch {
                        for i in 0..height {
                            let Some(ii) = padded(i as isize + p as isize - r, height, padding)
                            else {
                                continue;
                            };
                            for j in 0..width {
                                let Some(jj) = padded(j as isize + q as isize - r, width, padding)
                                else {
                                    continue;
                                };
                                let term = output_grad
                                    [((b * out_channels + o) * height + i) * width + j]
                                    * input[((b * in_channels + c) * height + ii) * width + jj];
                                sum += term;
                                magnitude += term.abs();
                            }
                        }
                    }
                    entries.push((sum, magnitude, n));
                }
            }
        }
    }
    Ok(with_bounds(entries))
}

/// Values and per-entry bounds on the f32 kernels' distance from them.
pub type Bounds = (Vec<f64>, Vec<f64>);

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

fn plus(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Whether any bound is infinite (an earlier step could not bound its error): every result's
/// bound is then +∞.
fn unbounded(bounds: &[&[f64]]) -> bool {
    bounds.iter().any(|b| b.iter().any(|e| !e.is_finite()))
}

/// A convolution of an operand `A` that the kernel holds only to within `δA` (the output of an
/// earlier f32 kernel), weights exact (f32 values): `(Z, δZ)` with
/// `δZ = (γ_{n+2} + γ_n(f64))·Σ|K|(|A| + δA) + Σ|K|δA` — the kernel's rounding on its own
/// (perturbed) inputs and the perturbation carried through, each a convolution of absolute
/// values. A bound that is +∞ (an earlier step could not bound its error) makes every result's
/// bound +∞. Errors: as [`conv2d_reference`].
pub fn conv2d_bounded(shape: &ConvShape, (a, ea): (&[f64], &[f64]), k: &[f64]) -> Result<Bounds> {
    let (z, _) = conv2d_reference(shape, a, k)?;
    if unbounded(&[ea]) {
        return Ok((z.clone(), vec![f64::INFINITY; z.len()]));
    }
    let (_, rounding) = conv2d_reference(shape, &plus(&abs(a), ea), &abs(k))?;
    let (carried, _) = conv2d_reference(shape, ea, &abs(k))?;
    Ok((z, plus(&rounding, &carried)))
}

/// The input gradient `Σ K·G` of an uncertain `(G, δG)` with exact weights, bounded as
/// [`conv2d_bounded`]. Errors: as [`conv2d_input_grad_reference`].
pub fn conv2d_input_grad_bounded(
    shape: &ConvShape,
    (g, eg): (&[f64], &[f64]),
    k: &[f64],
) -> Result<Bounds> {
    let (da, _) = conv2d_input_grad_reference(shape, g, k)?;
    if unbounded(&[eg]) {
        return Ok((da.clone(), vec![f64::INFINITY; da.len()]));
    }
    let (_, rounding) = conv2d_input_grad_reference(shape, &plus(&abs(g), eg), &abs(k))?;
    let (carried, _) = conv2d_input_grad_reference(shape, eg, &abs(k))?;
    Ok((da, plus(&rounding, &carried)))
}

/// The weight gradient `Σ G·A` of two uncertain operands: `(γ_{n+2} + γ_n(f64))·Σ(|G| +
/// δG)(|A| + δA) + Σ(δG|A| + |G|δA + δGδA)`. Errors: as [`conv2d_weight_grad_reference`].
pub fn conv2d_weight_grad_bounded(
    shape: &ConvShape,
    (a, ea): (&[f64], &[f64]),
    (g, eg): (&[f64], &[f64]),
) -> Result<Bounds> {
    let (abs_a, abs_g) = (abs(a), abs(g));
    let (dk, _) = conv2d_weight_grad_reference(shape, a, g)?;
    if unbounded(&[ea, eg]) {
        return Ok((dk.clone(), vec![f64::INFINITY; dk.len()]));
    }
    let (_, rounding) = conv2d_weight_grad_reference(shape, &plus(&abs_a, ea), &plus(&abs_g, eg))?;
    let (carried_a, _) = conv2d_weight_grad_reference(shape, ea, &abs_g)?;
    let (carried_g, _) = conv2d_weight_grad_reference(shape, &abs_a, eg)?;
    let (carried_both, _) = conv2d_weight_grad_reference(shape, ea, eg)?;
    let bound = (0..dk.len())
        .map(|i| rounding[i] + carried_a[i] + carried_g[i] + carried_both[i])
        .collect();
    Ok((dk, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1×3×3 image with a 3×3 kernel whose only nonzero entry is at (p, q) = (0, 2): under
    /// cross-correlation `Y[i,j] = X[π(i−1), π(j+1)]` — a shift, by hand, for both paddings.
    #[test]
    fn a_one_hot_kernel_shifts_the_image() {
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let mut k = vec![0.0; 9];
        k[2] = 1.0;
        let shape = |padding| ConvShape {
            batch: 1,
            in_channels: 1,
            out_channels: 1,
            height: 3,
            width: 3,
            kernel: 3,
            padding,
        };
        let (zero, _) = conv2d_reference(&shape(Padding::Zero), &x, &k).unwrap();
        assert_eq!(zero, [0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 5.0, 6.0, 0.0]);
        let (circular, _) = conv2d_reference(&shape(Padding::Circular), &x, &k).unwrap();
        assert_eq!(circular, [8.0, 9.0, 7.0, 2.0, 3.0, 1.0, 5.0, 6.0, 4.0]);
    }
}
