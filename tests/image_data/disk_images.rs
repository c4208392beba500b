//! The disk images: their definition, and the five-dimensional manifold (Jacobian rank, local PCA).

use diffusion_theorems::denoisers::bottleneck::singular_values;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::{finite_difference, intrinsic_dimension};
use diffusion_theorems::targets::images::disks::{self, DiskParams};

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
