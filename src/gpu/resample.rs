//! Average pooling and nearest-neighbour upsampling by an integer factor `f` on the GPU
//! (`gpu/resample.wgsl`), with their gradients: the U-Net's down- and up-sampling (Levine–Weiss
//! §2.1). Images are `planes` (batch × channels) of height × width, flat and row-major.
//!
//! * average pooling `P`: `Y[n,i,j] = f⁻²·Σ_{a,d<f} X[n, fi+a, fj+d]` (height and width
//!   divisible by f);
//! * nearest upsampling `U`: `Y[n,i,j] = X[n, ⌊i/f⌋, ⌊j/f⌋]`.
//!
//! `⟨Px, y⟩ = f⁻²⟨x, Uy⟩`, so `Pᵀ = f⁻²U` and `Uᵀ = f²P`: the gradient of pooling is upsampling
//! scaled by `f⁻²`, that of upsampling the pooling sum. Two kernels with a scale serve all four.
//!
//! * bilinear ×2 upsampling `B` (factor 2 only), align_corners = false with edge clamping —
//!   PyTorch's `F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)`: along a
//!   side of n entries, output index i reads the source coordinate `s = max((i + ½)/2 − ½, 0)`,
//!   `i₀ = ⌊s⌋`, `i₁ = min(i₀ + 1, n − 1)`, `λ = s − i₀`, value `(1 − λ)X[i₀] + λX[i₁]`; for a
//!   factor of 2 that is `¼X[max(c − 1, 0)] + ¾X[c]` at `i = 2c` and `¾X[c] + ¼X[min(c + 1, n − 1)]`
//!   at `i = 2c + 1`, and the 2-D map is the product of the two sides' taps:
//!   `Y[n,i,j] = Σ_{a,b} w_a(i)·w_b(j)·X[n, a, b]`;
//! * its adjoint `Bᵀ`, the gradient: `X̄[n,k,l] = Σ_{i,j} w_k(i)·w_l(j)·Ȳ[n,i,j]`, where source k
//!   collects ¼ from outputs `2k − 1` and `2k + 2` and ¾ from `2k` and `2k + 1`, the ¼ that would
//!   come from index −1 or 2n landing on the edge (k = 0 takes ¼ more from output 0, k = n − 1
//!   from output 2n − 1).
//!
//! **f32 error.** A pooled entry sums `f²` inputs rounded to f32 and multiplies by the scale
//! (rounded too unless a power of 2): `|ŷ − y| ≤ γ_{f²+3}·|scale|·Σ|x|`. An upsampled entry is one
//! rounded input times the scale: `|ŷ − y| ≤ γ₃·|scale·x|`. A bilinear entry (either direction)
//! is a dot product of `n` terms `w·x` whose weights (multiples of 1/16 below 1) are exact in
//! f32: each term meets the input's rounding, its product and `n − 1` additions, so
//! `|ŷ − y| ≤ γ_{n+2}·Σ|w·x|` with `n = 4` forward and `n = 16` tap pairs for the adjoint (a pair
//! the kernel merges at an edge has one sign, so merging does not grow Σ|w·x|); the f64
//! reference's own `γ_n(f64)·Σ|w·x|` is added. [`resample_reference`] returns every bound.

use super::uniforms::ResampleParams;
use super::{groups_1d, shaders, Gpu};
use crate::error::{Error, Result};
use crate::numerics::{gamma_f32, gamma_f64};

/// Which of the four maps to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// Average pooling `P` (height/f × width/f out).
    AveragePool,
    /// `Pᵀ = f⁻²U`, the gradient of average pooling (f·height × f·width out).
    AveragePoolGrad,
    /// Nearest upsampling `U` (f·height × f·width out).
    UpsampleNearest,
    /// `Uᵀ = f²P`, the gradient of nearest upsampling: block sums (height/f × width/f out).
    UpsampleNearestGrad,
    /// Bilinear ×2 upsampling `B`, align_corners = false, edges clamped (module doc); the factor
    /// must be 2 (2·height × 2·width out).
    UpsampleBilinear,
    /// `Bᵀ`, the gradient of bilinear ×2 upsampling (module doc); the factor must be 2 and the
    /// input's sides even (height/2 × width/2 out).
    UpsampleBilinearGrad,
}

impl Resample {
    /// Whether the map shrinks the image (a pooling sum or an adjoint of upsampling) rather than
    /// enlarging it.
    fn pools(self) -> bool {
        matches!(
            self,
            Self::AveragePool | Self::UpsampleNearestGrad | Self::UpsampleBilinearGrad
        )
    }

    /// Whether the map is bilinear (factor 2 only).
    fn bilinear(self) -> bool {
        matches!(self, Self::UpsampleBilinear | Self::UpsampleBilinearGrad)
    }

    /// The scale the kernel applies: `f⁻²` for `P` and `Pᵀ`, 1 for the others.
    fn scale(self, factor: usize) -> f64 {
        match self {
            Self::AveragePool | Self::AveragePoolGrad => 1.0 / (factor * factor) as f64,
            _ => 1.0,
        }
    }

    fn shader(self) -> &'static shaders::Shader {
        match self {
            Self::AveragePool | Self::UpsampleNearestGrad => &shaders::RESAMPLE_POOL_SUM,
            Self::AveragePoolGrad | Self::UpsampleNearest => &shaders::RESAMPLE_UPSAMPLE,
            Self::UpsampleBilinear => &shaders::RESAMPLE_BILINEAR_UP2,
            Self::UpsampleBilinearGrad => &shaders::RESAMPLE_BILINEAR_UP2_GRAD,
        }
    }
}

/// The shape of a resampling: `planes` images of `height × width` in, scaled by `factor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResampleShape {
    /// Images (batch × channels).
    pub planes: usize,
    /// The input's height.
    pub height: usize,
    /// The input's width.
    pub width: usize,
    /// The integer factor f ≥ 1.
    pub factor: usize,
}

impl ResampleShape {
    /// `(height, width)` of the output of `map`.
    pub fn output_side(&self, map: Resample) -> (usize, usize) {
        if map.pools() {
            (self.height / self.factor, self.width / self.factor)
        } else {
            (self.height * self.factor, self.width * self.factor)
        }
    }

    /// Returns an error naming a zero dimension, a bilinear map with a factor other than 2, a
    /// pooled side not divisible by the factor, or an output beyond the kernels' 32-bit indices.
    fn validate(&self, map: Resample) -> Result<()> {
        for (what, v) in [
            ("planes", self.planes),
            ("height", self.height),
            ("width", self.width),
            ("factor", self.factor),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: format!("resampling {what}").into(),
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        if map.bilinear() && self.factor != 2 {
            return Err(Error::InvalidArgument {
                what: "bilinear upsampling factor".into(),
                reason: format!("only a factor of 2 is implemented, got {}", self.factor),
            });
        }
        if map.pools()
            && (!self.height.is_multiple_of(self.factor) || !self.width.is_multiple_of(self.factor))
        {
            return Err(Error::InvalidArgument {
                what: "pooled image side".into(),
                reason: format!(
                    "{}×{} is not divisible by the factor {}",
                    self.height, self.width, self.factor
                ),
            });
        }
        let (h, w) = self.output_side(map);
        let words =
            (self.planes as u128) * (h.max(self.height) as u128) * (w.max(self.width) as u128);
        if words > u32::MAX as u128 {
            return Err(Error::GpuLimit(format!(
                "resampling {} planes of {}×{} by {}: beyond the kernels' 32-bit indices",
                self.planes, self.height, self.width, self.factor
            )));
        }
        Ok(())
    }
}

/// Applies `map` to `input` (`planes·height·width` entries) on the GPU in f32, the planes cut
/// into chunks that fit one storage binding. Errors: a bad shape, an input of the wrong length,
/// non-finite or beyond f32's range.
pub fn resample(
    gpu: &Gpu,
    shape: &ResampleShape,
    map: Resample,
    input: &[f64],
) -> Result<Vec<f64>> {
    shape.validate(map)?;
    let plane_in = shape.height * shape.width;
    let (h, w) = shape.output_side(map);
    let plane_out = h * w;
    super::conv::ensure_operand("resampling input", input, shape.planes * plane_in)?;
    let words = (gpu.max_binding_bytes() / 4) as usize;
    let per_chunk = words / plane_in.max(plane_out);
    if per_chunk == 0 {
        return Err(Error::GpuLimit(format!(
            "resampling: one plane of {}×{} exceeds the adapter's storage binding of {words} \
             words",
            h.max(shape.height),
            w.max(shape.width)
        )));
    }
    let shader = map.shader();
    let mut output = Vec::with_capacity(shape.planes * plane_out);
    for (start, len) in super::chunks(shape.planes, per_chunk) {
        let out_words = len * plane_out;
        let groups = groups_1d(gpu, out_words);
        let params = ResampleParams {
            planes: len as u32,
            height: shape.height as u32,
            width: shape.width as u32,
            factor: shape.factor as u32,
            scale: map.scale(shape.factor) as f32,
            grid_x: groups[0],
            pad0: 0,
            pad1: 0,
        };
        let params = gpu.uniform("resample params", &params);
        let source: Vec<f32> = input[start * plane_in..(start + len) * plane_in]
            .iter()
            .map(|&v| v as f32)
            .collect();
        let source = gpu.input("resample source", &source)?;
        let target = gpu.output("resample target", out_words)?;
        gpu.dispatch(shader, &[&params, &source, &target], groups)?;
        output.extend(
            gpu.read::<f32>(&target, out_words)?
                .into_iter()
                .map(f64::from),
        );
    }
    Ok(output)
}

/// The f64 reference of [`resample`] and the per-entry bound on its f32 error (module doc):
/// `(values, bounds)`. Errors: as [`resample`].
pub fn resample_reference(
    shape: &ResampleShape,
    map: Resample,
    input: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    shape.validate(map)?;
    let ResampleShape {
        planes,
        height,
        width,
        factor: f,
    } = *shape;
    super::conv::ensure_operand("resampling input", input, planes * height * width)?;
    let (h, w) = shape.output_side(map);
    let scale = map.scale(f);
    let mut values = Vec::with_capacity(planes * h * w);
    let mut bounds = Vec::with_capacity(planes * h * w);
    for n in 0..planes {
        let at = |i: usize, j: usize| input[(n * height + i) * width + j];
        for i in 0..h {
            for j in 0..w {
                if map.bilinear() {
                    // the side of the un-upsampled image: the output's (adjoint) or the input's
                    let taps = |t: usize, side: usize| {
                        if map.pools() {
                            bilinear_adjoint_taps(t, side)
                        } else {
                            bilinear_taps(t, side).to_vec()
                        }
                    };
                    let (rows, cols) = (taps(i, h.min(height)), taps(j, w.min(width)));
                    let (mut sum, mut magnitude) = (0.0, 0.0);
                    for &(a, wa) in &rows {
                        for &(b, wb) in &cols {
                            sum += wa * wb * at(a, b);
                            magnitude += (wa * wb * at(a, b)).abs();
                        }
                    }
                    let terms = rows.len() * cols.len();
                    values.push(sum);
                    bounds.push((gamma_f32(terms + 2) + gamma_f64(terms)) * magnitude);
                } else if map.pools() {
                    let (mut sum, mut magnitude) = (0.0, 0.0);
                    for a in 0..f {
                        for d in 0..f {
                            sum += at(f * i + a, f * j + d);
                            magnitude += at(f * i + a, f * j + d).abs();
                        }
                    }
                    values.push(scale * sum);
                    bounds.push(gamma_f32(f * f + 3) * scale * magnitude);
                } else {
                    let v = scale * at(i / f, j / f);
                    values.push(v);
                    bounds.push(gamma_f32(3) * v.abs());
                }
            }
        }
    }
    Ok((values, bounds))
}

/// [`resample_reference`] of an operand the kernel holds only to within `δx` (the output of an
/// earlier f32 kernel): every map is a sum with nonnegative weights, so `(y, δy)` with
/// `δy = bound(|x| + δx) + map(δx)` — the kernel's rounding on its (perturbed) input and the
/// perturbation carried through; a bound of +∞ makes every bound +∞. Errors: as [`resample`].
pub fn resample_bounded(
    shape: &ResampleShape,
    map: Resample,
    (x, ex): (&[f64], &[f64]),
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (y, _) = resample_reference(shape, map, x)?;
    if ex.iter().any(|e| !e.is_finite()) {
        return Ok((y.clone(), vec![f64::INFINITY; y.len()]));
    }
    let magnitude: Vec<f64> = x.iter().zip(ex).map(|(v, e)| v.abs() + e).collect();
    let (_, rounding) = resample_reference(shape, map, &magnitude)?;
    let (carried, _) = resample_reference(shape, map, ex)?;
    Ok((
        y,
        rounding.iter().zip(&carried).map(|(r, c)| r + c).collect(),
    ))
}

/// The two source taps `(index, weight)` of output index `i` of bilinear ×2 upsampling along a
/// side of `n` source entries, by PyTorch's align_corners = false rule (module doc):
/// `s = max((i + ½)/2 − ½, 0)`, `i₀ = ⌊s⌋`, `i₁ = min(i₀ + 1, n − 1)`, weights `1 − λ` and `λ`.
fn bilinear_taps(i: usize, n: usize) -> [(usize, f64); 2] {
    let s = ((i as f64 + 0.5) / 2.0 - 0.5).max(0.0);
    let i0 = s.floor() as usize;
    let lambda = s - i0 as f64;
    [(i0, 1.0 - lambda), ((i0 + 1).min(n - 1), lambda)]
}

/// The taps `(output index, weight)` of the adjoint at source index `k` of a side of `n` source
/// entries (2n outputs), written out from the factor-2 form rather than by transposing
/// [`bilinear_taps`] (module doc): ¾ from `2k` and `2k + 1`, ¼ from `2k − 1` (output 0 when
/// k = 0, its clamped read) and from `2k + 2` (output `2n − 1` when k = n − 1).
fn bilinear_adjoint_taps(k: usize, n: usize) -> Vec<(usize, f64)> {
    let before = if k >= 1 { 2 * k - 1 } else { 0 };
    let after = if k + 1 < n { 2 * k + 2 } else { 2 * n - 1 };
    vec![
        (2 * k, 0.75),
        (2 * k + 1, 0.75),
        (before, 0.25),
        (after, 0.25),
    ]
}
