//! The image data sets (`targets::images`), the `.npy` reader/writer (`report::npy`) and the PNG
//! image grid (`io::grid`).
//!
//! Regularity of the generated `C^α` images is checked on their construction (the power spectrum
//! of the background and of the contour decays like `|ω|^{−2α}`, with a `z·SE` bound at
//! false-failure probability 10⁻⁶); the disk manifold is checked to be five-dimensional twice
//! (Jacobian rank with a finite-difference error bound, and local PCA); the loaders are checked
//! on files written here with known content.

use diffusion_theorems::denoisers::bottleneck::singular_values;
use diffusion_theorems::error::Error;
use diffusion_theorems::io::grid;
use diffusion_theorems::io::npy;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::{finite_difference, intrinsic_dimension, two_sided_z};
use diffusion_theorems::targets::images::calpha::{self, CAlphaGenerator};
use diffusion_theorems::targets::images::disks::{self, DiskParams};
use diffusion_theorems::targets::images::{load, DataSource, ImageSet, ImageShape, LoadOptions};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use std::path::PathBuf;

/// Per-check false-failure probability of the statistical checks.
const FALSE_FAILURE: f64 = 1e-6;

/// A fresh, empty scratch folder for one test.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-image-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(n: usize, size: usize) -> LoadOptions {
    LoadOptions {
        n,
        size,
        ..LoadOptions::default()
    }
}

// ---- C^α images ---------------------------------------------------------------------------

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

// ---- data sources ---------------------------------------------------------------------------

#[test]
fn data_sources_parse_and_print_back() {
    let cases = [
        ("calpha", DataSource::CAlpha { alpha: 2.0 }),
        ("calpha:0.75", DataSource::CAlpha { alpha: 0.75 }),
        ("disks", DataSource::Disks),
        (
            "celeba:/data/img_align_celeba",
            DataSource::CelebA {
                dir: "/data/img_align_celeba".into(),
            },
        ),
        (
            "npy:x:y.npy",
            DataSource::Npy {
                path: "x:y.npy".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        let parsed: DataSource = text.parse().unwrap();
        assert_eq!(parsed, expected, "{text}");
        let printed = parsed.to_string();
        assert_eq!(printed.parse::<DataSource>().unwrap(), parsed, "{printed}");
    }
    assert_eq!(DataSource::CAlpha { alpha: 2.0 }.to_string(), "calpha:2");
    for (bad, named) in [
        ("calpha:0", "got 0"),
        ("calpha:-2", "got -2"),
        ("calpha:nan", "got NaN"),
        ("calpha:two", "two"),
        ("mnist", "mnist"),
        ("disks:3", "disks:3"),
        ("celeba:", "celeba:"),
        ("npy:", "npy:"),
    ] {
        let err = bad.parse::<DataSource>().unwrap_err();
        assert!(err.to_string().contains(named), "{bad}: {err}");
    }
    let err = "mnist".parse::<DataSource>().unwrap_err().to_string();
    for form in [
        "calpha",
        "calpha:<alpha",
        "disks",
        "celeba:<dir>",
        "npy:<path>",
    ] {
        assert!(err.contains(form), "{err}");
    }
}

#[test]
fn load_refuses_zero_images_or_size() {
    for (n, size) in [(0, 16), (4, 0)] {
        let err = load(&DataSource::Disks, &options(n, size)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("n = {n}, size = {size}")),
            "{err}"
        );
    }
}

#[test]
fn image_set_subsets_and_validates() {
    let (set, _) = load(&DataSource::Disks, &options(5, 8)).unwrap();
    assert_eq!(set.len(), 5);
    assert!(!set.is_empty());
    let picked = set.rows(&[4, 1, 1]).unwrap();
    assert_eq!(picked.names, ["disks-0-4", "disks-0-1", "disks-0-1"]);
    assert_eq!(picked.images[(0, 7)], set.images[(4, 7)]);
    assert!(set.rows(&[5]).unwrap_err().to_string().contains('5'));
    assert!(set.subset(3..6).unwrap_err().to_string().contains("3..6"));
    assert!(set.subset(2..2).unwrap().is_empty());

    let shape = ImageShape {
        channels: 1,
        height: 2,
        width: 2,
    };
    let mut images = Mat::zeros(2, 4);
    images[(1, 2)] = 1.25;
    let err = ImageSet::new(shape, images.clone(), vec!["a".into(), "b".into()]).unwrap_err();
    assert!(
        err.to_string().contains("1.25") && err.to_string().contains("index 6"),
        "{err}"
    );
    images[(1, 2)] = f64::NAN;
    let err = ImageSet::new(shape, images, vec!["a".into(), "b".into()]).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 6, .. }), "{err}");
    let err = ImageSet::new(shape, Mat::zeros(1, 5), vec!["a".into()]).unwrap_err();
    assert!(matches!(
        err,
        Error::DimensionMismatch {
            expected: 4,
            got: 5,
            ..
        }
    ));
}

// ---- disks ------------------------------------------------------------------------------------

#[test]
fn disk_parameters_and_images_follow_their_definition() {
    let size = 32;
    for index in 0..50 {
        let p = disks::disk_params(3, index, size);
        assert_eq!(p, disks::disk_params(3, index, size));
        let n = size as f64;
        assert!((0.3 * n..=0.7 * n).contains(&p.centre_x), "{p:?}");
        assert!((0.3 * n..=0.7 * n).contains(&p.centre_y), "{p:?}");
        assert!((0.1 * n..=0.25 * n).contains(&p.radius), "{p:?}");
        assert!((-0.9..=0.9).contains(&p.foreground) && (-0.9..=0.9).contains(&p.background));
        let image = disks::disk_image(&p, size);
        let plane = size * size;
        assert_eq!(image[..plane], image[plane..2 * plane]);
        assert_eq!(image[..plane], image[2 * plane..]);
        // b + (f − b)·t with t ∈ [0, 1] lies between b and f up to two roundings (≤ 2ε here).
        let (lo, hi) = (
            p.foreground.min(p.background),
            p.foreground.max(p.background),
        );
        let slack = 2.0 * f64::EPSILON;
        assert!(image.iter().all(|v| (lo - slack..=hi + slack).contains(v)));
        // Far inside (≥ 3w) the value is f and far outside b, to erf's tail erfc(3) < 3·10⁻⁵.
        let at = |row: usize, col: usize| image[row * size + col];
        let centre = (p.centre_y as usize, p.centre_x as usize);
        let inner = (centre.0 as f64 + 0.5 - p.centre_y).hypot(centre.1 as f64 + 0.5 - p.centre_x);
        if inner < p.radius - 3.0 {
            assert!((at(centre.0, centre.1) - p.foreground).abs() < 3e-5);
        }
        assert!((at(0, 0) - p.background).abs() < 3e-5);
    }
}

/// The disk image is a smooth function of its five parameters with a Jacobian of full rank 5.
///
/// `J` by central differences (step h = 10⁻³ px or grey level) with the elementwise bound of
/// `stats::finite_difference::jacobian` (Richardson estimate ×2 plus rounding `2δf/h`, `δf = 4ε`
/// for one erf and three flops on values ≤ 1). Weyl: `σ₅(J) ≥ σ₅(J_h) − ‖E‖_F`, so
/// `σ₅(J_h) > 2‖E‖_F` proves rank 5. A hard-edged disk fails this (pixels flip inside the
/// difference), and a family in which two parameters act alike fails it too.
#[test]
fn disk_image_jacobian_has_rank_five() {
    let size = 32;
    for index in 0..5 {
        let p = disks::disk_params(5, index, size);
        let image = |q: &[f64]| {
            Ok(disks::disk_image(
                &DiskParams::from_array(q.try_into().unwrap()),
                size,
            ))
        };
        let fd =
            finite_difference::jacobian(image, &p.to_array(), 1e-3, 4.0 * f64::EPSILON).unwrap();
        let error_norm = fd.error.norm_l2();
        let sigma = singular_values(&fd.value).unwrap();
        assert_eq!(sigma.len(), 5);
        assert!(
            sigma[4] > 2.0 * error_norm,
            "disk {index}: σ = {sigma:?}, ‖E‖_F = {error_norm:e}"
        );
        // Sanity of the error bound itself: it is far below the signal.
        assert!(error_norm < 1e-3 * sigma[4], "‖E‖_F = {error_norm:e}");
    }
}

/// Local PCA on a cloud of disks around one point of the manifold finds five dimensions, and
/// four when one parameter is frozen (so the estimate responds to the manifold's dimension).
///
/// Each parameter j moves by `U(−η, η)/‖∂x/∂p_j‖`, so every tangent direction moves the image by
/// about η = 0.05 (the image norm is ≈ 15): the five tangent variances are comparable (each
/// ≫ 1% of the total) and the curvature terms are `O(η·‖∂²x‖/‖∂x‖²)` ≈ 10⁻³ of the tangent ones,
/// far below the 1% left over by the threshold τ = 0.99.
#[test]
fn local_pca_on_nearby_disks_estimates_five_dimensions() {
    let size = 16;
    let centre = DiskParams {
        centre_x: 7.7,
        centre_y: 8.4,
        radius: 3.6,
        foreground: 0.5,
        background: -0.3,
    };
    let image = |q: &[f64]| {
        Ok(disks::disk_image(
            &DiskParams::from_array(q.try_into().unwrap()),
            size,
        ))
    };
    let jacobian = finite_difference::jacobian(image, &centre.to_array(), 1e-3, 0.0)
        .unwrap()
        .value;
    let column_norms: Vec<f64> = (0..5).map(|j| jacobian.col(j).norm_l2()).collect();
    let cloud = |free: usize| {
        let mut rng = Rng::new(21, free as u32);
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|_| {
                let mut q = centre.to_array();
                for j in 0..free {
                    q[j] += 0.05 * (2.0 * rng.uniform() - 1.0) / column_norms[j];
                }
                disks::disk_image(&DiskParams::from_array(q), size)
            })
            .collect();
        diffusion_theorems::linalg::from_rows(&rows)
    };
    let five = intrinsic_dimension::local_pca(&cloud(5), 40, 60, 0.99).unwrap();
    assert_eq!(five.mean_dimension, 5.0, "{five:?}");
    let four = intrinsic_dimension::local_pca(&cloud(4), 40, 60, 0.99).unwrap();
    assert_eq!(four.mean_dimension, 4.0, "{four:?}");
}

// ---- CelebA folder ----------------------------------------------------------------------------

/// 178 × 218 (CelebA's aligned size), green bands in the 20 rows the central crop removes at the
/// top and at the bottom, red left half (columns < 89), blue right half.
fn split_image() -> image::RgbImage {
    image::RgbImage::from_fn(178, 218, |x, y| {
        if !(20..198).contains(&y) {
            image::Rgb([0, 255, 0])
        } else if x < 89 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    })
}

/// A folder with, in name order: a constant PNG, the split PNG, a constant grey JPEG with an
/// upper-case extension, a gradient `.jpeg`; plus files that are not images: a text file and a
/// sub-folder named like a PNG.
fn celeba_folder(test: &str) -> PathBuf {
    let dir = scratch_dir(test);
    image::RgbImage::from_pixel(178, 218, image::Rgb([200, 100, 50]))
        .save(dir.join("a_const.png"))
        .unwrap();
    split_image().save(dir.join("b_split.png")).unwrap();
    let grey = image::RgbImage::from_pixel(178, 218, image::Rgb([100, 100, 100]));
    let mut jpeg = vec![];
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(&grey)
        .unwrap();
    std::fs::write(dir.join("c_grey.JPG"), jpeg).unwrap();
    image::RgbImage::from_fn(178, 218, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save_with_format(dir.join("d_ramp.jpeg"), image::ImageFormat::Jpeg)
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    std::fs::create_dir(dir.join("e_folder.png")).unwrap();
    dir
}

fn channel_values(set: &ImageSet, image: usize, channel: usize) -> Vec<f64> {
    let plane = set.shape.height * set.shape.width;
    (0..plane)
        .map(|k| set.images[(image, channel * plane + k)])
        .collect()
}

#[test]
fn celeba_folder_is_cropped_resized_and_scaled_in_name_order() {
    let dir = celeba_folder("order");
    let size = 16;
    let (set, report) = load(&DataSource::CelebA { dir: dir.clone() }, &options(4, size)).unwrap();
    assert!(report.skipped.is_empty());
    assert_eq!(
        set.names,
        ["a_const.png", "b_split.png", "c_grey.JPG", "d_ramp.jpeg"]
    );
    assert_eq!(set.shape, ImageShape::rgb_square(size));

    // A constant image stays exactly constant through crop and resize: v/127.5 − 1.
    for (channel, v) in [200.0, 100.0, 50.0].into_iter().enumerate() {
        let expected = v / 127.5 - 1.0;
        assert!(channel_values(&set, 0, channel)
            .iter()
            .all(|&x| x == expected));
    }

    // The split image: the crop removes both green bands (G = 0 everywhere), and output column
    // j is a pure colour when the triangle filter's support around its centre
    // c = (j + ½)·178/16 — input pixel centres within ±178/16 — lies in one half (left: pixel
    // centres ≤ 88.5; right: ≥ 89.5); the columns in between mix red and blue.
    let ratio = 178.0 / size as f64;
    let (red, green, blue) = (
        channel_values(&set, 1, 0),
        channel_values(&set, 1, 1),
        channel_values(&set, 1, 2),
    );
    assert!(green.iter().all(|&g| g == -1.0), "green band leaked");
    let (mut pure_left, mut pure_right) = (0, 0);
    for col in 0..size {
        let centre = (col as f64 + 0.5) * ratio;
        for row in 0..size {
            let (r, b) = (red[row * size + col], blue[row * size + col]);
            if centre + ratio <= 89.5 {
                assert_eq!((r, b), (1.0, -1.0), "column {col}");
            } else if centre - ratio >= 88.5 {
                assert_eq!((r, b), (-1.0, 1.0), "column {col}");
            } else {
                assert!(r > -1.0 && r < 1.0 && b > -1.0 && b < 1.0, "column {col}");
            }
        }
        pure_left += usize::from(centre + ratio <= 89.5);
        pure_right += usize::from(centre - ratio >= 88.5);
    }
    assert_eq!((pure_left, pure_right), (7, 7));

    // A constant grey JPEG block holds only its DC coefficient 8·(100 − 128) = −224, a multiple
    // of the quality-75 luminance DC step 8, and neutral chroma: it decodes to 100 up to the
    // decoder's colour-conversion rounding (one grey level).
    for channel in 0..3 {
        for x in channel_values(&set, 2, channel) {
            assert!(
                (x - (100.0 / 127.5 - 1.0)).abs() <= 1.0 / 127.5 + 1e-12,
                "{x}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn celeba_corrupt_file_is_fatal_or_skipped_by_name() {
    let dir = celeba_folder("corrupt");
    std::fs::write(dir.join("b_zz_corrupt.jpg"), b"\xff\xd8\xff garbage").unwrap();
    let source = DataSource::CelebA { dir: dir.clone() };
    let err = load(&source, &options(4, 8)).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("b_zz_corrupt.jpg")),
        "{err}"
    );

    let skipping = LoadOptions {
        skip_bad: true,
        ..options(4, 8)
    };
    let (set, report) = load(&source, &skipping).unwrap();
    assert_eq!(
        set.names,
        ["a_const.png", "b_split.png", "c_grey.JPG", "d_ramp.jpeg"]
    );
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].0.ends_with("b_zz_corrupt.jpg"));
    assert!(!report.skipped[0].1.is_empty());

    // Five image files, four readable: asking for five fails and says so.
    let err = load(
        &source,
        &LoadOptions {
            n: 5,
            ..skipping.clone()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&dir.display().to_string())
            && err.contains("only 4 of the 5 image files")
            && err.contains("1 skipped")
            && err.contains("n = 5"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn celeba_missing_folder_or_too_few_images_is_an_error_naming_the_folder() {
    let dir = celeba_folder("few");
    let err = load(&DataSource::CelebA { dir: dir.clone() }, &options(6, 8))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.display().to_string())
            && err.contains("n = 6")
            && err.contains("found 4 image files"),
        "{err}"
    );
    let missing = dir.join("no_such_folder");
    let err = load(
        &DataSource::CelebA {
            dir: missing.clone(),
        },
        &options(1, 8),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing.display().to_string()),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- .npy -------------------------------------------------------------------------------------

/// A version-1 `.npy` file written by hand from the format's specification: magic, version,
/// little-endian u16 header length, the header dict padded with spaces and a newline to a
/// multiple of 64 bytes, then the data.
fn hand_made_npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn npy_reader_matches_hand_made_files() {
    let dir = scratch_dir("npy-read");
    let values = [1.5, -2.25, 3.0, 0.125, -0.5, 7.0];
    let little: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_le_bytes()).collect();
    let big: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_be_bytes()).collect();
    let single: Vec<u8> = values
        .iter()
        .flat_map(|&v| (v as f32).to_le_bytes())
        .collect();
    for (name, descr, data) in [
        ("le.npy", "<f8", &little),
        ("be.npy", ">f8", &big),
        ("f4.npy", "<f4", &single),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, hand_made_npy(descr, false, "(2, 3)", data)).unwrap();
        let array = npy::read(&path).unwrap();
        assert_eq!(array.shape, [2, 3], "{name}");
        assert_eq!(array.data, values, "{name}");
    }

    let refused = |name: &str, bytes: Vec<u8>, says: &str| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = npy::read(&path).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
    };
    refused(
        "fortran.npy",
        hand_made_npy("<f8", true, "(2, 3)", &little),
        "Fortran",
    );
    let ints: Vec<u8> = (0..6i32).flat_map(i32::to_le_bytes).collect();
    refused(
        "ints.npy",
        hand_made_npy("<i4", false, "(2, 3)", &ints),
        "<i4",
    );
    refused(
        "short.npy",
        hand_made_npy("<f8", false, "(2, 3)", &little[..40]),
        "truncated",
    );
    refused("text.npy", b"just some text".to_vec(), "header");
    let err = npy::read(&dir.join("absent.npy")).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("absent.npy")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npy_writer_round_trips_and_writes_the_documented_bytes() {
    let dir = scratch_dir("npy-write");
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.375 - 4.0).collect();
    let path = dir.join("a.npy");
    npy::write_f32(&path, &[2, 3, 4], &data).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    // npyz writes the tuple with a trailing comma, `(2, 3, 4, )`, which Python parses alike.
    assert!(header.contains("'shape': (2, 3, 4,"), "{header}");
    let payload: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(&bytes[10 + header_len..], payload.as_slice());
    let back = npy::read(&path).unwrap();
    assert_eq!(back.shape, [2, 3, 4]);
    assert_eq!(
        back.data,
        data.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
    );

    let wide: Vec<f64> = (0..6).map(|i| (i as f64).sqrt() - 1.0).collect();
    npy::write_f64(&path, &[6], &wide).unwrap();
    assert_eq!(npy::read(&path).unwrap().data, wide);

    let matrix = Mat::from_fn(2, 3, |i, j| (10 * i + j) as f64 + 0.1);
    npy::write_mat(&path, &matrix).unwrap();
    let back = npy::read(&path).unwrap();
    assert_eq!(back.shape, [2, 3]);
    assert_eq!(back.data, [0.1, 1.1, 2.1, 10.1, 11.1, 12.1]);

    let err = npy::write_f32(&path, &[2, 2], &[1.0; 3]).unwrap_err();
    assert!(matches!(
        err,
        Error::DimensionMismatch {
            expected: 4,
            got: 3,
            ..
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npy_image_source_round_trips_and_checks_shape_and_range() {
    let dir = scratch_dir("npy-source");
    let (disks, _) = load(&DataSource::Disks, &options(3, 8)).unwrap();
    let path = dir.join("disks.npy");
    disks.save_npy(&path).unwrap();
    let source = DataSource::Npy { path: path.clone() };
    let (back, _) = load(&source, &options(2, 8)).unwrap();
    assert_eq!(back.names, ["disks.npy[0]", "disks.npy[1]"]);
    assert_eq!(back.shape, ImageShape::rgb_square(8));
    for i in 0..2 {
        for k in 0..back.shape.dim() {
            // One f32 rounding of a value in [−1, 1]: at most 2⁻²⁴.
            assert!((back.images[(i, k)] - disks.images[(i, k)]).abs() <= 2f64.powi(-24));
        }
    }

    let err = load(&source, &options(2, 16)).unwrap_err().to_string();
    assert!(
        err.contains("8×8") && err.contains("16×16") && err.contains("disks.npy"),
        "{err}"
    );
    let err = load(&source, &options(4, 8)).unwrap_err().to_string();
    assert!(
        err.contains("holds 3 images") && err.contains("n = 4"),
        "{err}"
    );

    let mut values = vec![0.5f32; 2 * 3 * 4 * 4];
    values[7] = 1.5;
    values[60] = f32::NAN;
    npy::write_f32(&path, &[2, 3, 4, 4], &values).unwrap();
    let err = load(&source, &options(1, 4)).unwrap_err().to_string();
    assert!(err.contains("1.5") && err.contains("index 7"), "{err}");
    values[7] = 0.0;
    npy::write_f32(&path, &[2, 3, 4, 4], &values).unwrap();
    let err = load(&source, &options(2, 4)).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 60, .. }), "{err}");
    // The NaN lies in image 1; the first image alone loads.
    assert!(load(&source, &options(1, 4)).is_ok());

    npy::write_f32(&path, &[3, 16], &[0.0; 48]).unwrap();
    let err = load(&source, &options(1, 4)).unwrap_err().to_string();
    assert!(
        err.contains("[3, 16]") && err.contains("(N, C, H, W)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- image grid -------------------------------------------------------------------------------

#[test]
fn image_grid_has_the_documented_size_gutters_and_colours() {
    let dir = scratch_dir("grid");
    let shape = ImageShape {
        channels: 3,
        height: 4,
        width: 5,
    };
    let plane = shape.height * shape.width;
    // Row 0: a red image, a grey ramp, a clamped white image. Row 1: one blue image.
    let row0 = Mat::from_fn(3, shape.dim(), |n, k| match n {
        0 => {
            if k < plane {
                1.0
            } else {
                -1.0
            }
        }
        1 => (k % plane) as f64 / (plane - 1) as f64 * 2.0 - 1.0,
        _ => 3.0,
    });
    let row1 = Mat::from_fn(
        1,
        shape.dim(),
        |_, k| if k >= 2 * plane { 1.0 } else { -1.0 },
    );
    let path = dir.join("grid.png");
    let scale = 2;
    grid::write_grid(&path, shape, &[&row0, &row1], scale).unwrap();
    let picture = image::open(&path).unwrap().to_rgb8();
    let g = grid::GUTTER;
    let (cell_w, cell_h) = (5 * scale, 4 * scale);
    assert_eq!(
        picture.dimensions(),
        (g + 3 * (cell_w + g), g + 2 * (cell_h + g))
    );
    let at = |x: u32, y: u32| picture.get_pixel(x, y).0;
    let white = [255, 255, 255];
    for (x, y) in [
        (0, 0),
        (1, 5),
        (g + cell_w, g),
        (g + cell_w + 1, g + 3),
        (5, g + cell_h),
    ] {
        assert_eq!(at(x, y), white, "gutter at ({x}, {y})");
    }
    assert_eq!(at(g, g), [255, 0, 0]);
    assert_eq!(at(g + cell_w - 1, g + cell_h - 1), [255, 0, 0]);
    // Grey ramp, nearest-neighbour upscaling: image pixel (i, j) fills a scale × scale block.
    let left = g + (cell_w + g);
    for i in 0..4u32 {
        for j in 0..5u32 {
            let v = (i * 5 + j) as f64 / (plane - 1) as f64 * 2.0 - 1.0;
            let byte = grid::to_byte(v);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                assert_eq!(at(left + scale * j + dx, g + scale * i + dy), [byte; 3]);
            }
        }
    }
    assert_eq!(at(g + 2 * (cell_w + g), g), white); // 3.0 clamped to white
    let top = g + cell_h + g;
    assert_eq!(at(g, top), [0, 0, 255]);
    // The short row ends in white.
    assert_eq!(at(g + (cell_w + g) + 3, top + 3), white);
    assert_eq!(grid::to_byte(-1.0), 0);
    assert_eq!(grid::to_byte(0.0), 128);

    let narrow = Mat::zeros(1, shape.dim() - 1);
    let err = grid::write_grid(&path, shape, &[&row0, &narrow], 1).unwrap_err();
    assert!(err.to_string().contains("grid row 1"), "{err}");
    let two_channels = ImageShape {
        channels: 2,
        ..shape
    };
    assert!(grid::write_grid(&path, two_channels, &[&row0], 1).is_err());
    assert!(grid::write_grid(&path, shape, &[&row0], 0).is_err());
    let mut bad = row1.clone();
    bad[(0, 3)] = f64::NAN;
    let err = grid::write_grid(&path, shape, &[&bad], 1).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 3, .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
