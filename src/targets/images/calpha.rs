//! Geometric `C^α` images (Kadkhodaie et al., ICLR 2024, App. D, Algorithm 2): two `C^α`
//! textures separated by a `C^α` contour.
//!
//! For an image of side `N` and regularity `α > 0`:
//! 1. **Contour.** `c(t) ~ U(−½, ½)` i.i.d. for `t = 0..N`; `C = FFT⁻¹(f₁ · FFT(c))` with
//!    `f₁(ω) = |ω|^{−α}` and `f₁(0) = 0` (the DC term is dropped). Here `ω` is the signed
//!    integer frequency of DFT bin `k` (`k` for `k ≤ N/2`, `k − N` above), so the filter is even
//!    and `C` is real. The contour is placed in the image by the affine map
//!    `y(col) = h + 0.2·N · C(col) / max|C|` with `h ~ U[0.3, 0.7]·N`, so `y ∈ [0.1, 0.9]·N`.
//! 2. **Backgrounds.** `b ~ U(−½, ½)` i.i.d. on the `N × N` grid;
//!    `B = FFT⁻¹(f₂ · FFT(b)) / σ_B` with `f₂(ω) = (ω₁² + ω₂²)^{−α/2}`, `f₂(0) = 0`. Since
//!    `E|FFT(b)(ω)|² = N²/12` for `ω ≠ 0`, every pixel of `FFT⁻¹(f₂ · FFT(b))` has variance
//!    `σ_B² = Σ_{ω≠0} f₂(ω)² / (12 N²)`; dividing by it gives `B` unit variance per pixel, for
//!    every `α` and `N`. Its power spectrum is `E|FFT(B)(ω)|² ∝ |ω|^{−2α}`.
//! 3. **Mask and combination**, per colour channel `ch` with its own two backgrounds
//!    `B₁, B₂`: `M(row, col) = 1{row + ½ > y(col)}` (pixel centres below the contour), and
//!    `x = clamp(M·(μ₁ + s·B₁) + (1 − M)·(μ₂ + s·B₂), −1, 1)` with texture scale
//!    `s = `[`TEXTURE_STD`]. The region means are `μ₁,₂ = m ± δ/2` with `m ~ U[−0.2, 0.2]`,
//!    contrast `δ ~ U[0.3, 0.6]` and a random sign, so the two regions always differ and
//!    `|μ| ≤ 0.5`: the clamp acts only where `|B| > 5`, a 5σ excursion of a near-Gaussian field.
//!
//! Regularity: `f₂` decays like `|ω|^{−α}`, which is the Fourier signature of a `C^α` field
//! (up to logarithms), and likewise for the contour; the mask adds the one singularity along
//! the `C^α` curve, as in the paper's geometric `C^α` class.

use super::image_rng;
use crate::error::{ensure_positive_finite, Error, Result};
use crate::rng::Rng;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// The regularity `α` of the `calpha` source when none is given (the paper's `C²` images).
pub const DEFAULT_ALPHA: f64 = 2.0;

/// Maximal contour excursion from its centre line, as a fraction of `N`.
pub const CONTOUR_AMPLITUDE: f64 = 0.2;

/// The contour's centre line is at height `U[0.3, 0.7]·N`.
pub const CONTOUR_HEIGHT_RANGE: (f64, f64) = (0.3, 0.7);

/// The texture scale `s`: pixel value `= μ_region + s·B` with `B` of unit variance.
pub const TEXTURE_STD: f64 = 0.1;

/// Key offset of the `C^α` source's Philox streams (ASCII `"CALPHA"`), see [`super::image_rng`].
const CALPHA_DOMAIN: u64 = 0x4341_4C50_4841_0000;

/// Returns an error unless `α` is finite and `> 0`.
/// The signed integer frequency of DFT bin `k` of a length-`n` transform: `k` for `k ≤ n/2`,
/// `k − n` above.
fn signed_frequency(k: usize, n: usize) -> f64 {
    if 2 * k <= n {
        k as f64
    } else {
        k as f64 - n as f64
    }
}

/// Synthesises `C^α` images of side `size` for one `α`; the FFT plans and the two filters are
/// built once and shared by every image.
#[derive(Clone)]
pub struct CAlphaGenerator {
    alpha: f64,
    size: usize,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    /// `f₁(ω)/N` per bin (the `1/N` of the inverse DFT folded in), 0 at DC.
    contour_filter: Vec<f64>,
    /// `f₂(ω)/(N² σ_B)` per bin, row-major, 0 at DC.
    background_filter: Vec<f64>,
}

impl std::fmt::Debug for CAlphaGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CAlphaGenerator")
            .field("alpha", &self.alpha)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl CAlphaGenerator {
    /// The generator for regularity `alpha` (finite, `> 0`) and side `size ≥ 2` (a side of 1
    /// has only the DC frequency, which the construction drops).
    pub fn new(alpha: f64, size: usize) -> Result<Self> {
        ensure_positive_finite("C^alpha regularity alpha", alpha)?;
        if size < 2 {
            return Err(Error::InvalidArgument {
                what: "C^alpha image size".into(),
                reason: format!("size must be ≥ 2, got {size}"),
            });
        }
        let mut planner = FftPlanner::new();
        let n = size as f64;
        let contour_filter = (0..size)
            .map(|k| match k {
                0 => 0.0,
                _ => signed_frequency(k, size).abs().powf(-alpha) / n,
            })
            .collect();
        let power_law: Vec<f64> = (0..size * size)
            .map(|bin| {
                let (k1, k2) = (bin / size, bin % size);
                let radius_sq =
                    signed_frequency(k1, size).powi(2) + signed_frequency(k2, size).powi(2);
                if bin == 0 {
                    0.0
                } else {
                    radius_sq.powf(-alpha / 2.0)
                }
            })
            .collect();
        let background_std = (power_law.iter().map(|f| f * f).sum::<f64>() / (12.0 * n * n)).sqrt();
        let background_filter = power_law
            .iter()
            .map(|f| f / (n * n * background_std))
            .collect();
        Ok(Self {
            alpha,
            size,
            forward: planner.plan_fft_forward(size),
            inverse: planner.plan_fft_inverse(size),
            contour_filter,
            background_filter,
        })
    }

    /// The regularity α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The side length N.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The raw contour `C = FFT⁻¹(f₁ · FFT(c))` (length N, zero mean, before placement in the
    /// image), reading N uniforms from `rng`.
    pub fn contour_field(&self, rng: &mut Rng) -> Vec<f64> {
        let mut buffer: Vec<Complex<f64>> = (0..self.size)
            .map(|_| Complex::new(rng.uniform() - 0.5, 0.0))
            .collect();
        self.forward.process(&mut buffer);
        for (value, gain) in buffer.iter_mut().zip(&self.contour_filter) {
            *value *= gain;
        }
        self.inverse.process(&mut buffer);
        buffer.iter().map(|v| v.re).collect()
    }

    /// One background `B = FFT⁻¹(f₂ · FFT(b)) / σ_B` (N×N row-major, zero mean, unit variance
    /// per pixel), reading N² uniforms from `rng`.
    pub fn background_field(&self, rng: &mut Rng) -> Vec<f64> {
        let mut buffer: Vec<Complex<f64>> = (0..self.size * self.size)
            .map(|_| Complex::new(rng.uniform() - 0.5, 0.0))
            .collect();
        fft_2d(&mut buffer, self.size, self.forward.as_ref());
        for (value, gain) in buffer.iter_mut().zip(&self.background_filter) {
            *value *= gain;
        }
        fft_2d(&mut buffer, self.size, self.inverse.as_ref());
        buffer.iter().map(|v| v.re).collect()
    }

    /// Image `index` of seed `seed` (3 × N × N, CHW, values in `[−1, 1]`), a pure function of
    /// `(α, N, seed, index)`. Every value is finite: `f₁, f₂ ≤ 1` off DC and `σ_B > 0` (the
    /// `|ω| = 1` bins have `f₂ = 1`), so nothing overflows. Draw order on the image's stream: contour height, contour, then
    /// per channel `m`, `δ`, the sign, `B₁`, `B₂`.
    pub fn image(&self, seed: u64, index: u32) -> Vec<f64> {
        let size = self.size;
        let n = size as f64;
        let mut rng = image_rng(CALPHA_DOMAIN, seed, index);
        let (low, high) = CONTOUR_HEIGHT_RANGE;
        let height = n * (low + (high - low) * rng.uniform());
        let contour = self.contour_field(&mut rng);
        let peak = contour.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let gain = if peak > 0.0 {
            CONTOUR_AMPLITUDE * n / peak
        } else {
            0.0
        };
        let boundary: Vec<f64> = contour.iter().map(|c| height + gain * c).collect();
        let mut image = vec![0.0; 3 * size * size];
        for channel_pixels in image.chunks_exact_mut(size * size) {
            let base = -0.2 + 0.4 * rng.uniform();
            let contrast = 0.3 + 0.3 * rng.uniform();
            let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
            let (mean_below, mean_above) =
                (base + sign * contrast / 2.0, base - sign * contrast / 2.0);
            let below = self.background_field(&mut rng);
            let above = self.background_field(&mut rng);
            for (pixel, value) in channel_pixels.iter_mut().enumerate() {
                let (row, col) = (pixel / size, pixel % size);
                let raw = if row as f64 + 0.5 > boundary[col] {
                    mean_below + TEXTURE_STD * below[pixel]
                } else {
                    mean_above + TEXTURE_STD * above[pixel]
                };
                *value = raw.clamp(-1.0, 1.0);
            }
        }
        image
    }
}

/// Image `index` of seed `seed` of the `C^α` source at side `size` (3 × size × size, CHW,
/// values in `[−1, 1]`); builds a [`CAlphaGenerator`] for one image — use the generator
/// directly for many.
pub fn calpha_image(alpha: f64, size: usize, seed: u64, index: u32) -> Result<Vec<f64>> {
    Ok(CAlphaGenerator::new(alpha, size)?.image(seed, index))
}

/// The (unnormalised) 2-D DFT of an `n × n` row-major buffer in place: `fft` along every row,
/// transpose, along every row again, transpose back.
fn fft_2d(buffer: &mut [Complex<f64>], n: usize, fft: &dyn Fft<f64>) {
    fft.process(buffer);
    transpose_square(buffer, n);
    fft.process(buffer);
    transpose_square(buffer, n);
}

/// Transposes an `n × n` row-major buffer in place.
fn transpose_square(buffer: &mut [Complex<f64>], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            buffer.swap(i * n + j, j * n + i);
        }
    }
}
