//! The `C^α` images: determinism, range, refusals, and the power spectra of background and contour.

use super::{options, FALSE_FAILURE};
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::two_sided_z;
use diffusion_theorems::targets::images::calpha::{self, CAlphaGenerator};
use diffusion_theorems::targets::images::{load, DataSource, ImageShape};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

#[test]
fn calpha_image_is_a_pure_function_of_seed_and_index() {
    let a = calpha::calpha_image(2.0, 16, 7, 3).unwrap();
    assert_eq!(a, calpha::calpha_image(2.0, 16, 7, 3).unwrap());
    assert_ne!(a, calpha::calpha_image(2.0, 16, 7, 4).unwrap());
    assert_ne!(a, calpha::calpha_image(2.0, 16, 8, 3).unwrap());

    // Image i does not depend on how many images are drawn.
    let source = DataSource::CAlpha { alpha: 1.5 };
    let (six, _) = load(&source, &options(6, 16)).unwrap();
    let (three, _) = load(&source, &options(3, 16)).unwrap();
    assert_eq!(six.subset(0..3).unwrap(), three);
    assert_eq!(three.names, ["calpha-0-0", "calpha-0-1", "calpha-0-2"]);
    assert_eq!(three.shape, ImageShape::rgb_square(16));
    let generator = CAlphaGenerator::new(1.5, 16).unwrap();
    for i in 0..6 {
        let row: Vec<f64> = (0..six.shape.dim()).map(|k| six.images[(i, k)]).collect();
        assert_eq!(row, generator.image(0, i as u32), "image {i}");
    }
}

/// Values stay in `[−1, 1]`, and the two regions differ. Rows 0 and N−1 lie on either side of
/// the contour (it stays in `[0.1, 0.9]·N`), so the difference `G` of their means in one channel
/// is `±δ + η`: `δ ~ U[0.3, 0.6]` the region contrast, `η` the difference of two row averages of
/// independent textures, mean 0, variance `≤ 2s² = 0.02` (a row average of a unit-variance
/// field has variance ≤ 1). Then `E|G| ≥ E δ = 0.45` and `Var|G| ≤ Var δ + 2s² = 0.0275`; over
/// `M` independent (image, channel) pairs the mean of `|G|` exceeds `0.45 − z·√(0.0275/M)`
/// except with probability 10⁻⁶. Equal region means would give `E|G| ≤ E|η| ≤ 0.15`.
#[test]
fn calpha_images_lie_in_the_unit_interval_with_two_distinct_regions() {
    let size = 32;
    let generator = CAlphaGenerator::new(2.0, size).unwrap();
    let shape = ImageShape::rgb_square(size);
    let images = 80;
    let mut gaps = vec![];
    for index in 0..images {
        let image = generator.image(1, index);
        assert_eq!(image.len(), shape.dim());
        assert!(
            image.iter().all(|v| (-1.0..=1.0).contains(v)),
            "image {index} leaves [-1, 1]"
        );
        for channel in 0..3 {
            let mean_of_row = |row: usize| {
                (0..size)
                    .map(|col| image[shape.index(channel, row, col)])
                    .sum::<f64>()
                    / size as f64
            };
            gaps.push((mean_of_row(0) - mean_of_row(size - 1)).abs());
        }
    }
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let bound = 0.45 - two_sided_z(FALSE_FAILURE) * (0.0275 / gaps.len() as f64).sqrt();
    assert!(
        bound > 0.15,
        "bound {bound} cannot tell equal regions apart"
    );
    assert!(mean_gap > bound, "mean region gap {mean_gap} ≤ {bound}");
}

#[test]
fn calpha_refuses_bad_regularity_and_size() {
    for alpha in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = calpha::calpha_image(alpha, 16, 0, 0).unwrap_err();
        assert!(err.to_string().contains(&format!("got {alpha}")), "{err}");
    }
    let err = CAlphaGenerator::new(2.0, 1).unwrap_err();
    assert!(err.to_string().contains("got 1"), "{err}");
}

/// The signed integer frequency of DFT bin `k` of a length-`n` transform (`k − n` above `n/2`),
/// written here independently of the generator's own.
fn signed_frequency(k: usize, n: usize) -> f64 {
    if 2 * k <= n {
        k as f64
    } else {
        k as f64 - n as f64
    }
}

/// Ordinary least-squares slope of `y` on `x`, and `Σ(x − x̄)²`.
fn slope_and_spread(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    (sxy / sxx, sxx)
}

/// Upper bound on the variance of `log` of a mean of `m` i.i.d. Exp(1) variables: the mean is
/// Gamma(m, 1/m), `Var log = ψ'(m) < 1/m + 1/m²`.
fn log_mean_exponential_variance(m: usize) -> f64 {
    let m = m as f64;
    1.0 / m + 1.0 / (m * m)
}

/// The power spectrum of the background generator decays like `|ω|^{−2α}`.
///
/// By construction `FFT(B)(ω) = f₂(ω)·FFT(b)(ω)/(N²σ_B)` with `b` i.i.d. uniform, and
/// `FFT(b)(ω)` is (by the CLT over N² = 4096 terms) complex Gaussian with the same variance at
/// every `ω ≠ 0`, so `|FFT(b)(ω)|²` is exponential and independent across frequencies that are
/// not conjugate. Averaging `P(ω) = |FFT(B)(ω)|²` over `M` fields,
/// `log P̄(ω) = const − 2α log|ω| + e(ω)` with `e` i.i.d. of variance `ψ'(M)`. The OLS slope over
/// one frequency of each conjugate pair with `2 ≤ |ω| < N/2` (full annuli, no DC or Nyquist
/// bins) is therefore unbiased with `SE = √(ψ'(M)/Σ(x − x̄)²)`, `x = log|ω|`: no binning bias,
/// unlike a fit to annulus averages against `log r`. Tolerance `z·SE`, `z` for 10⁻⁶.
#[test]
fn calpha_background_power_spectrum_decays_like_omega_to_minus_two_alpha() {
    let (size, fields) = (64usize, 48usize);
    let mut planner = FftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(size);
    for alpha in [1.0, 2.0, 3.0] {
        let generator = CAlphaGenerator::new(alpha, size).unwrap();
        let mut rng = Rng::new(11, 0);
        let mut power = vec![0.0; size * size];
        for _ in 0..fields {
            let field = generator.background_field(&mut rng);
            let mut spectrum: Vec<Complex<f64>> =
                field.iter().map(|&v| Complex::new(v, 0.0)).collect();
            fft.process(&mut spectrum); // rows
            for col in 0..size {
                let mut column: Vec<Complex<f64>> =
                    (0..size).map(|row| spectrum[row * size + col]).collect();
                fft.process(&mut column);
                for (row, v) in column.into_iter().enumerate() {
                    spectrum[row * size + col] = v;
                }
            }
            for (p, v) in power.iter_mut().zip(&spectrum) {
                *p += v.norm_sqr() / fields as f64;
            }
        }
        let (mut x, mut y) = (vec![], vec![]);
        for k1 in 0..size {
            for k2 in 0..size {
                let (w1, w2) = (signed_frequency(k1, size), signed_frequency(k2, size));
                let radius = w1.hypot(w2);
                // One of each conjugate pair (w2 > 0, or w2 = 0 and w1 > 0): both signs of w1.
                let representative = w2 > 0.0 || (w2 == 0.0 && w1 > 0.0);
                if representative && (2.0..size as f64 / 2.0).contains(&radius) {
                    x.push(radius.ln());
                    y.push(power[k1 * size + k2].ln());
                }
            }
        }
        let (slope, spread) = slope_and_spread(&x, &y);
        let tolerance =
            two_sided_z(FALSE_FAILURE) * (log_mean_exponential_variance(fields) / spread).sqrt();
        // The check has power: an exponent off by 5% of 2α lies outside the band.
        assert!(tolerance < 0.05 * 2.0 * alpha, "tolerance {tolerance}");
        assert!(
            (slope + 2.0 * alpha).abs() < tolerance,
            "alpha {alpha}: log-log slope {slope}, expected {} ± {tolerance}",
            -2.0 * alpha
        );
    }
}

/// The contour's spectrum decays like `|ω|^{−2α}` (1-D version of the background check: bins
/// `1 ≤ k < N/2` are one of each conjugate pair, `|FFT(c)(k)|²` exponential).
#[test]
fn calpha_contour_power_spectrum_decays_like_omega_to_minus_two_alpha() {
    let (size, contours) = (64usize, 400usize);
    let fft = FftPlanner::<f64>::new().plan_fft_forward(size);
    for alpha in [1.0, 2.0] {
        let generator = CAlphaGenerator::new(alpha, size).unwrap();
        let mut rng = Rng::new(12, 0);
        let mut power = vec![0.0; size];
        for _ in 0..contours {
            let mut spectrum: Vec<Complex<f64>> = generator
                .contour_field(&mut rng)
                .iter()
                .map(|&v| Complex::new(v, 0.0))
                .collect();
            fft.process(&mut spectrum);
            for (p, v) in power.iter_mut().zip(&spectrum) {
                *p += v.norm_sqr() / contours as f64;
            }
        }
        let x: Vec<f64> = (1..size / 2).map(|k| (k as f64).ln()).collect();
        let y: Vec<f64> = (1..size / 2).map(|k| power[k].ln()).collect();
        let (slope, spread) = slope_and_spread(&x, &y);
        let tolerance =
            two_sided_z(FALSE_FAILURE) * (log_mean_exponential_variance(contours) / spread).sqrt();
        assert!(tolerance < 0.05 * 2.0 * alpha, "tolerance {tolerance}");
        assert!(
            (slope + 2.0 * alpha).abs() < tolerance,
            "alpha {alpha}: slope {slope}, expected {} ± {tolerance}",
            -2.0 * alpha
        );
    }
}

/// The background has unit variance per pixel, so the texture scale `s` of the affine map is
/// what it says. By Parseval the pixel average of `B²` in one field is `Σ_ω w_ω E_ω` with
/// `w_ω = f₂(ω)²/Σf₂²` and `E_ω = |FFT(b)(ω)|²/(N²/12)`, `E[E_ω] = 1` exactly; `E_ω` is
/// exponential (variance 1; 2 at the real Nyquist bins) and `E_ω = E_{−ω}`, so the variance of
/// one field's average is at most `2·2·Σ w_ω²`. Tolerance `z·√(4Σw²/M)`.
#[test]
fn calpha_background_has_unit_variance_per_pixel() {
    let (size, fields, alpha) = (32usize, 400usize, 2.0);
    let generator = CAlphaGenerator::new(alpha, size).unwrap();
    let mut rng = Rng::new(13, 0);
    let mean_square = (0..fields)
        .map(|_| {
            let b = generator.background_field(&mut rng);
            b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64
        })
        .sum::<f64>()
        / fields as f64;
    let gains: Vec<f64> = (1..size * size)
        .map(|bin| {
            let (w1, w2) = (
                signed_frequency(bin / size, size),
                signed_frequency(bin % size, size),
            );
            (w1 * w1 + w2 * w2).powf(-alpha)
        })
        .collect();
    let total: f64 = gains.iter().sum();
    let sum_w2: f64 = gains.iter().map(|g| (g / total).powi(2)).sum();
    let tolerance = two_sided_z(FALSE_FAILURE) * (4.0 * sum_w2 / fields as f64).sqrt();
    assert!(
        (mean_square - 1.0).abs() < tolerance,
        "mean of B² = {mean_square}, expected 1 ± {tolerance}"
    );
}
