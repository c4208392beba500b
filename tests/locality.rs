//! `locality`: a convolutional denoiser's Jacobian vanishes outside its receptive field, and
//! the optimal equivariant local (ELS) denoiser depends on the training set only through its
//! patch multiset (Levine–Weiss Thm 2; Kamb & Ganguli's ELS machine). See theorems/locality.md.

use crate::common;

use common::{assert_controlled, gpu};
use diffusion_theorems::gpu::conv::Padding;
use diffusion_theorems::theorems::locality::{
    self as loc, els_from_images, empirical_denoiser, roll, ConvNet, Locality, PatchBank,
};
use diffusion_theorems::theorems::shuffled_pixels::{grey_images, Family};
use diffusion_theorems::theorems::Depth;

fn data(seed: u64) -> Vec<Vec<f64>> {
    grey_images(Family::CAlpha(2.0), loc::SIDE, loc::IMAGES, seed).unwrap()
}

/// The verify row [`loc::RECEPTIVE_FIELD`]: for every network and padding the response outside
/// the receptive-field window is exactly 0, and half the window is rejected in every case (the
/// field computed from the layers is not larger than the network's reach).
#[test]
fn receptive_field_row_passes_and_rejects_half_the_field() {
    let cases = loc::architecture_cases(gpu(), Depth::Default).unwrap();
    assert_eq!(cases.len(), 6);
    assert_controlled(&cases);
    for c in &cases {
        assert_eq!(c.check.residual, 0.0, "{c:?}");
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// The field is tight: a network whose middle layer is 1×1 has field 5 from {3, 1, 3}, and its
/// responses reach exactly Chebyshev distance 2 (the window's edge), none beyond.
#[test]
fn a_one_by_one_layer_adds_nothing_to_the_field() {
    let net = ConvNet::random(&[3, 1, 3], 2, 9, 10, Padding::Circular, 7).unwrap();
    assert_eq!(loc::receptive_field(&net.kernels()), 5);
    let case = loc::architecture_case(gpu(), &net, 7).unwrap();
    assert_eq!(case.check.residual, 0.0);
    assert!(case.planted.residual > 1e-3, "{case:?}");
}

/// Pooling widens the field beyond the stride-1 formula, and the interval propagated through
/// the stages is tight. For conv 3 – avg-pool 2 – conv 3 – upsample 2 – conv 3 (12×14, both
/// paddings): nothing responds outside the propagated window (exactly 0), the window
/// `1 + Σ(k − 1) = 7` with the resampling ignored is rejected, and so is the propagated window
/// shrunk by one pixel on any one side (each of its four edges holds a pixel the net reads).
#[test]
fn pooling_widens_the_field_and_the_propagated_window_is_tight() {
    use loc::Stage::{Conv, Pool, Upsample};
    let stages = [Conv(3), Pool(2), Conv(3), Upsample(2), Conv(3)];
    for padding in [Padding::Zero, Padding::Circular] {
        let net = ConvNet::random_staged(&stages, 3, 12, 14, padding, 11).unwrap();
        let ignoring = loc::architecture_case_ignoring_resampling(gpu(), &net, 11).unwrap();
        assert_eq!(ignoring.check.residual, 0.0, "{padding:?}: {ignoring:?}");
        assert!(
            !ignoring.planted.passed(),
            "{padding:?}: the stride-1 field passed: {ignoring:?}"
        );
        // shrink one edge of the propagated rectangle at a time
        for edge in 0..4 {
            let shrunk = loc::architecture_case_against(gpu(), &net, 11, |pr, pc| {
                let (mut rows, mut cols) = (
                    loc::dependency_rows(&stages, 12, pr, padding)?,
                    loc::dependency_rows(&stages, 14, pc, padding)?,
                );
                match edge {
                    0 => rows.0 += 1,
                    1 => rows.1 -= 1,
                    2 => cols.0 += 1,
                    _ => cols.1 -= 1,
                }
                Ok(Some((rows, cols)))
            })
            .unwrap();
            assert!(
                shrunk.planted.residual > 1e-3,
                "{padding:?}, edge {edge}: nothing responds on it: {shrunk:?}"
            );
        }
    }
}

/// The architecture side on a **trained** network: a BF-CNN (`gpu::bfcnn`, 3 layers of 3×3,
/// 4 channels, ReLU, no biases, zero and circular padding) trained on the GPU for 30 epochs at
/// σ = 0.5 on 16 grey C² images of 12×12. Probed at every pixel through its `predict` (one
/// batch of 145 images), its responses are exactly 0 beyond Chebyshev distance
/// `(S − 1)/2 = 3`, S = 1 + Σ(k − 1) = 7 from the layers, and some response sits at distance
/// exactly 3 (the trained net reaches the field's edge: the field is not larger than its reach).
#[test]
fn a_trained_bf_cnn_responds_only_inside_its_receptive_field() {
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::bfcnn::{BfCnnConfig, BfCnnTrainer};
    use diffusion_theorems::io::grid::ImageShape;
    use diffusion_theorems::linalg::Mat;
    use diffusion_theorems::rng::Rng;
    let side = 12;
    let d = side * side;
    let training = grey_images(Family::CAlpha(2.0), side, 16, 0x10cf).unwrap();
    let data = Mat::from_fn(16, d, |i, j| training[i][j]);
    let radius = (loc::receptive_field(&[3, 3, 3]) - 1) / 2;
    for padding in [Padding::Zero, Padding::Circular] {
        let config = BfCnnConfig {
            image: ImageShape {
                channels: 1,
                height: side,
                width: side,
            },
            layers: 3,
            channels: 4,
            kernel: 3,
            padding,
            batch: 8,
            adam: AdamConfig {
                lr: 1e-2,
                ..AdamConfig::default()
            },
            seed: 0x10cf,
        };
        let mut trainer = BfCnnTrainer::new(gpu(), &data, config).unwrap();
        let losses = trainer.train_epochs(0.5, 30, &mut |_, _| {}).unwrap();
        assert!(losses[29] < losses[0], "{padding:?}: {losses:?}");
        let mut rng = Rng::new(0x10cf, 1);
        let y: Vec<f64> = (0..d).map(|j| data[(0, j)] + 0.5 * rng.normal()).collect();
        let probes = Mat::from_fn(d + 1, d, |q, j| {
            y[j] + if q >= 1 && q - 1 == j { 1.0 } else { 0.0 }
        });
        let out = trainer.predict(&probes).unwrap();
        let distance = |a: usize, b: usize| {
            let gap = a.abs_diff(b);
            match padding {
                Padding::Zero => gap,
                Padding::Circular => gap.min(side - gap),
            }
        };
        let (mut outside, mut on_edge, mut largest) = (0.0f64, 0.0f64, 0.0f64);
        for p in 0..d {
            for q in 0..d {
                let response = (out[(q + 1, p)] - out[(0, p)]).abs();
                let chebyshev = distance(p / side, q / side).max(distance(p % side, q % side));
                largest = largest.max(response);
                if chebyshev > radius {
                    outside = outside.max(response);
                } else if chebyshev == radius {
                    on_edge = on_edge.max(response);
                }
            }
        }
        assert_eq!(outside, 0.0, "{padding:?}: a response beyond the field");
        assert!(
            on_edge > 1e-3 * largest,
            "{padding:?}: nothing on the field's edge ({on_edge} of {largest})"
        );
    }
}

/// The verify row [`loc::ELS_ROUTES`]: whole images and the patch bank give the same ELS
/// denoiser within the derived bound, both paddings, every σ; the bank's LS denoiser in its place
/// is rejected in every case.
#[test]
fn els_routes_row_passes_and_rejects_the_local_denoiser() {
    let cases = loc::routes_cases(Depth::Default).unwrap();
    assert_eq!(cases.len(), 12);
    assert_controlled(&cases);
    for c in &cases {
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// The verify row [`loc::SHIFT_INVARIANT`]: a cyclic shift of every training image leaves the
/// ELS denoiser unchanged (circular padding) while the global empirical denoiser moves, in
/// every case.
#[test]
fn shift_row_passes_and_rejects_the_empirical_denoiser() {
    let cases = loc::shift_cases(Depth::Default).unwrap();
    assert_eq!(cases.len(), 9);
    assert_controlled(&cases);
    for c in &cases {
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// The precise condition, as a counterexample: under **zero** padding the shifted data set has
/// different border patches, and its ELS denoiser differs from the original's by far more than
/// the rounding bound (so "the ELS denoiser depends only on the patches" holds for the patch
/// multiset *under the padding used*: circular, or a data set closed under the shift). The
/// location-specific LS denoiser is not shift-invariant even under circular padding.
#[test]
fn zero_padding_and_the_local_denoiser_break_shift_invariance() {
    let images = data(0x10f0);
    let shifted: Vec<Vec<f64>> = images.iter().map(|x| roll(x, loc::SIDE, 3, 5)).collect();
    let y: Vec<f64> = images[0].iter().map(|v| v + 0.01).collect();
    for (padding, locality) in [
        (Padding::Zero, Locality::Equivariant),
        (Padding::Circular, Locality::AtOwnLocation),
    ] {
        let run = |set: &[Vec<f64>]| {
            els_from_images(set, loc::SIDE, loc::PATCH, padding, locality, &y, 0.2).unwrap()
        };
        let ((a, bound), (b, _)) = (run(&images), run(&shifted));
        let gap = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
        let tolerance = 2.0 * bound.iter().fold(0.0f64, |m, &v| m.max(v));
        assert!(
            gap > 1e6 * tolerance,
            "{padding:?} {locality:?}: {gap} vs {tolerance}"
        );
    }
}

/// The patch multisets themselves: sorted, the banks of a set and of its cyclic shift are equal
/// bit for bit under circular padding (so the ELS denoiser computed from the sorted bank is the
/// same function, bit for bit), and differ under zero padding.
#[test]
fn a_cyclic_shift_keeps_the_patch_multiset_only_when_circular() {
    let images = data(0x10f1);
    let shifted: Vec<Vec<f64>> = images.iter().map(|x| roll(x, loc::SIDE, 3, 5)).collect();
    let sorted = |set: &[Vec<f64>], padding| {
        PatchBank::new(set, loc::SIDE, loc::PATCH, padding)
            .unwrap()
            .sorted_patches()
    };
    assert_eq!(
        sorted(&images, Padding::Circular),
        sorted(&shifted, Padding::Circular)
    );
    assert_ne!(
        sorted(&images, Padding::Zero),
        sorted(&shifted, Padding::Zero)
    );
}

/// At small σ the ELS denoiser of a training image's noisy copy is close to the image (every
/// patch of it is in the bank), and the empirical denoiser returns the image itself; at large σ
/// the ELS output is a smooth average, not a training image (printed).
#[test]
fn figures_els_against_the_empirical_denoiser() {
    let images = data(0x10f2);
    for sigma in [0.02, 0.2, 1.0] {
        let y: Vec<f64> = images[1].iter().map(|v| v + sigma * 0.5).collect();
        let (els, _) = els_from_images(
            &images,
            loc::SIDE,
            loc::PATCH,
            Padding::Circular,
            Locality::Equivariant,
            &y,
            sigma,
        )
        .unwrap();
        let emp = empirical_denoiser(&images, &y, sigma).unwrap();
        let dist = |a: &[f64]| {
            a.iter()
                .zip(&images[1])
                .map(|(u, v)| (u - v).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        println!(
            "σ = {sigma}: ‖ELS − x‖ = {:.4}, ‖empirical − x‖ = {:.4}",
            dist(&els),
            dist(&emp)
        );
        if sigma == 0.02 {
            assert!(dist(&els) < 0.05 && dist(&emp) < 1e-6);
        }
    }
}

/// All three rows pass and reject their planted variants at quick depth (4, 6 and 3 cases).
#[test]
fn rows_pass_with_power_at_quick_depth() {
    let sizes = [
        loc::architecture_cases(gpu(), Depth::Quick).unwrap(),
        loc::routes_cases(Depth::Quick).unwrap(),
        loc::shift_cases(Depth::Quick).unwrap(),
    ];
    for (cases, n) in sizes.iter().zip([4, 6, 3]) {
        assert_eq!(cases.len(), n);
        assert_controlled(cases);
    }
}

/// Bad input is a typed error naming the value: an even or oversized patch, no images, an
/// image of the wrong size, σ = 0, a NaN in y, a network without layers, an even kernel.
#[test]
fn bad_input_is_a_typed_error() {
    let images = data(0x10f3);
    let y = images[0].clone();
    let run = |set: &[Vec<f64>], patch: usize, y: &[f64], sigma: f64| {
        els_from_images(
            set,
            loc::SIDE,
            patch,
            Padding::Circular,
            Locality::Equivariant,
            y,
            sigma,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    assert!(run(&images, 4, &y, 0.1).contains("patch side"));
    assert!(run(&images, 9, &y, 0.1).contains("9"));
    assert!(run(&[], 3, &y, 0.1).contains("got 0"));
    assert!(run(&[vec![0.0; 10]], 3, &y, 0.1).contains("10"));
    assert!(run(&images, 3, &y, 0.0).contains("sigma"));
    let mut nan = y.clone();
    nan[5] = f64::NAN;
    assert!(run(&images, 3, &nan, 0.1).contains("y"));
    assert!(ConvNet::random(&[], 2, 5, 5, Padding::Zero, 0).is_err());
    let e = ConvNet::random(&[3, 2], 2, 5, 5, Padding::Zero, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("odd"), "{e}");
    let bank = PatchBank::new(&images, loc::SIDE, 3, Padding::Zero).unwrap();
    assert!(bank.denoise(Locality::Equivariant, &y[..3], 0.1).is_err());
}

/// Reproducibility: every verify row of `locality` passes and reproduces its recorded numbers
/// (`tests/common/pins/locality.json`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("locality");
}

/// The sampling statement: DDIM (VP cosine, 10 steps) from the same noise with the ELS
/// denoiser of a data set and of its cyclic shift (circular padding, each from its canonical
/// patch bank) gives the same samples, bit for bit; with the global empirical denoisers of the
/// two sets the samples differ (they end on the training images, which the shift moves).
#[test]
fn ddim_samples_of_a_set_and_its_shift_are_identical_for_els_only() {
    use diffusion_theorems::diffusion::samplers::{Ddim, Sampler};
    use diffusion_theorems::diffusion::schedule::Schedule;
    use diffusion_theorems::linalg::Mat;
    use diffusion_theorems::rng::Rng;
    use loc::{ElsDenoiser, EmpiricalDenoiser};
    let images = data(0x10f4);
    let shifted: Vec<Vec<f64>> = images.iter().map(|x| roll(x, loc::SIDE, 3, 5)).collect();
    let bank = |set: &[Vec<f64>]| {
        ElsDenoiser(
            PatchBank::new(set, loc::SIDE, loc::PATCH, Padding::Circular)
                .unwrap()
                .canonical(),
        )
    };
    let ddim = Ddim {
        schedule: Schedule::vp_cosine(0.999, 10).unwrap(),
    };
    let mut rng = Rng::new(0x10f5, 0);
    let d = loc::SIDE * loc::SIDE;
    let noise = Mat::from_fn(3, d, |_, _| rng.normal());
    let a = ddim.sample(&bank(&images), &noise).unwrap();
    let b = ddim.sample(&bank(&shifted), &noise).unwrap();
    assert!((0..3).all(|i| (0..d).all(|j| a[(i, j)].to_bits() == b[(i, j)].to_bits())));
    let e = ddim
        .sample(&EmpiricalDenoiser(images.clone()), &noise)
        .unwrap();
    let f = ddim.sample(&EmpiricalDenoiser(shifted), &noise).unwrap();
    let gap = (0..3)
        .flat_map(|i| (0..d).map(move |j| (i, j)))
        .fold(0.0f64, |m, (i, j)| m.max((e[(i, j)] - f[(i, j)]).abs()));
    assert!(gap > 0.1, "{gap}");
}

/// The counterexample for U-Nets: GroupNorm's statistics are means over a whole (image, group),
/// so a U-Net with GroupNorm (`gpu::unet`, depth 0: a 3×3 convolution, GroupNorm, the σ
/// embedding, ReLU, and the 3×3 output convolution; 1×12×12 images, zero padding) has **no**
/// finite receptive field, although its convolutions alone give S = 5. Perturbing the corner
/// pixel (11, 11) by 1 moves the output at (0, 0), Chebyshev distance 11 > (S − 1)/2 = 2, by more
/// than twice the sum of the two GPU forward passes' derived bounds (each within its bound of
/// the f64 forward; measured 27×), and the f64 forward moves too. The move is small (one pixel
/// of the 288 in its group shifts the statistics by ~1/288) but it is not zero. Levine–Weiss Thm 2 needs a network whose
/// every layer is local; the repair is a normalisation-free network (the BF-CNN test above) or
/// a normalisation over patches.
#[test]
fn a_unet_with_group_norm_responds_outside_its_convolutions_field() {
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::unet::{
        unet_forward_reference, UNetConfig, UNetTrainer, Upsampling,
    };
    use diffusion_theorems::io::grid::ImageShape;
    use diffusion_theorems::linalg::Mat;
    let side = 12;
    let d = side * side;
    let training = grey_images(Family::CAlpha(2.0), side, 4, 0x10d0).unwrap();
    let images = Mat::from_fn(4, d, |i, j| f64::from(training[i][j] as f32));
    let config = UNetConfig {
        image: ImageShape {
            channels: 1,
            height: side,
            width: side,
        },
        widths: vec![4],
        groups: 2,
        frequencies: 2,
        kernel: 3,
        padding: Padding::Zero,
        upsampling: Upsampling::Nearest,
        batch: 2,
        adam: AdamConfig::default(),
        seed: 0x10d1,
    };
    let trainer = UNetTrainer::new(gpu(), &images, config.clone()).unwrap();
    let field = loc::receptive_field(&[3, 3]);
    assert_eq!(field, 5);
    let (far, near) = (d - 1, 0);
    assert!(side - 1 > (field - 1) / 2);
    let mut y = Mat::from_fn(2, d, |i, j| images[(i, j)]);
    for j in 0..d {
        y[(1, j)] = y[(0, j)];
    }
    y[(1, far)] += 1.0;
    let sigma = 0.5;
    let got = trainer.predict(&y, sigma).unwrap();
    let tensors = trainer.parameters().unwrap();
    let flat: Vec<f64> = (0..2 * d).map(|k| y[(k / d, k % d)]).collect();
    let reference =
        unet_forward_reference(&config, &tensors, 2, &flat, &vec![0.0; 2 * d], sigma).unwrap();
    for k in 0..2 * d {
        let (g, r, e) = (got[(k / d, k % d)], reference.output[k], reference.bound[k]);
        assert!((g - r).abs() <= e, "predict entry {k}: {g} vs {r} ± {e}");
    }
    let moved = (got[(1, near)] - got[(0, near)]).abs();
    let bounds = reference.bound[near] + reference.bound[d + near];
    // both passes lie within their bounds of the f64 forward, so a move above the bounds' sum is
    // a move of the f64 map; 2× leaves a margin (measured: 5.1·10⁻⁴ against 1.9·10⁻⁵, 27×)
    assert!(
        moved > 2.0 * bounds,
        "the far pixel moved the corner output by {moved}, bounds {bounds}"
    );
    assert!((reference.output[d + near] - reference.output[near]).abs() > 2.0 * bounds);
}
