//! The U-Net trainer (`gpu::unet`: conv → GroupNorm → σ embedding → ReLU blocks, average pooling,
//! nearest or bilinear upsampling, skip connections by concatenation): one batch's loss and
//! every tensor's gradient against the f64 reference with its running bounds, the reference's
//! gradient against central differences of its own loss, `predict` against the f64 forward at
//! two σ, bit-for-bit resumption, and typed errors.
//!
//! Bugs planted by hand (each reverted; the test that caught it) are listed in
//! `theorems/locality.md`'s U-Net table.

use super::*;
use diffusion_theorems::gpu::adam::AdamConfig;
use diffusion_theorems::gpu::conv::Padding;
use diffusion_theorems::gpu::dense::batch_inputs_reference;
use diffusion_theorems::gpu::unet::{
    unet_batch_reference, unet_forward_reference, UNetConfig, UNetState, UNetTrainer, Upsampling,
};
use diffusion_theorems::io::grid::ImageShape;

fn flat(m: &Mat) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect()
}

fn config(
    image: ImageShape,
    widths: &[usize],
    padding: Padding,
    upsampling: Upsampling,
) -> UNetConfig {
    UNetConfig {
        image,
        widths: widths.to_vec(),
        groups: 2,
        frequencies: 2,
        kernel: 3,
        padding,
        upsampling,
        batch: 4,
        adam: AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
        seed: 0x0e7,
    }
}

/// Standard-normal images rounded to f32 (the values the GPU holds).
fn images(rng: &mut Rng, n: usize, d: usize) -> Mat {
    Mat::from_fn(n, d, |_, _| f64::from(rng.normal() as f32))
}

/// Central differences of the f64 loss at 4 entries of every tensor against the reference's
/// backpropagated gradient, within `10⁻⁵·(1 + |g|)` at h = 10⁻⁵ or h = 10⁻⁶ — calibrated: the
/// loss is smooth between ReLU kinks (GroupNorm is smooth for ε > 0), so the difference's
/// truncation error is `O(h²)` times the loss's third derivative and the f64 loss's rounding
/// `~10⁻¹⁶·L/h`; an entry with a kink within h of it (block 1's β₃ at depth 1, zero padding:
/// −0.5747 at h = 10⁻⁵, −0.566966548 at h = 10⁻⁶ against −0.566966537) is met at the smaller h.
fn assert_reference_gradient_is_the_derivative(
    what: &str,
    config: &UNetConfig,
    tensors: &[Vec<f64>],
    rows: usize,
    (x, y): (&[f64], &[f64]),
    sigma: f64,
) {
    let exact = vec![0.0; y.len()];
    let loss = |w: &[Vec<f64>]| -> (f64, Vec<Vec<f64>>) {
        let r = unet_batch_reference(config, w, rows, (x, y, &exact), sigma).unwrap();
        (r.row_sq.iter().sum::<f64>() / rows as f64, r.gradient)
    };
    let (_, gradient) = loss(tensors);
    for (t, tensor) in tensors.iter().enumerate() {
        for k in (0..tensor.len()).step_by(tensor.len().div_ceil(4)) {
            let g = gradient[t][k];
            let central = |h: f64| {
                let (mut plus, mut minus) = (tensors.to_vec(), tensors.to_vec());
                plus[t][k] += h;
                minus[t][k] -= h;
                (loss(&plus).0 - loss(&minus).0) / (2.0 * h)
            };
            let (fd, fd_small) = (central(1e-5), central(1e-6));
            assert!(
                (fd - g).abs().min((fd_small - g).abs()) <= 1e-5 * (1.0 + g.abs()),
                "{what} {}[{k}]: backprop {g} vs central differences {fd} (h = 10⁻⁵) and \
                 {fd_small} (h = 10⁻⁶)",
                config.tensor_name(t)
            );
        }
    }
}

/// One batch (the first, and the short last one: N = 6, B = 4) of 2-channel 8×8 images through a
/// depth-1 U-Net of widths (4, 6), 2 groups, F = 2 — an encoder block, a pooled block, a
/// decoder block on the upsampled path concatenated with the skip, and the output convolution —
/// with zero padding and nearest upsampling, and with circular padding and bilinear upsampling;
/// and through depth 2 (widths (4, 4, 6): a decoder whose upsampled input is another decoder's
/// output) with the other two pairings.
/// The gathered X_b exact and Y_b within the Philox normal's f32 bound; each image's
/// `‖x̂ − x‖²` and all 10 tensors' gradients within the derived running bounds of
/// `unet_batch_reference`, from the GPU's own Y_b taken as exact and end to end from the CPU's
/// noise. The reference's gradient is the derivative of its loss (central differences).
///
/// The derived bounds hold but are **loose**: the first-order worst case grows ~10× per
/// GroupNorm in series (its 1/s and the |z|·δs term, every rounding aligned), so at depth 1 the
/// squared errors' bound is 5 % of the value and the gradients' reach 3–1200× the tensors'
/// values (block 0's K); at depth 2 they are vacuous (infinite where a GroupNorm's interval
/// reaches 0), so there only the calibrated check runs. The sharp check is **calibrated**: from
/// the GPU's own Y_b, every tensor's worst entry within `10⁻⁵·max|value|` at depth 1 (measured
/// ≤ 2.7·10⁻⁷ ≈ 4u on these inputs, a 37× margin) and `10⁻⁴·max|value|` at depth 2 (measured
/// ≤ 4.2·10⁻⁶, 24×), while a wiring bug (a wrong skip slice, the wrong upsampling adjoint)
/// moves whole tensors by O(1) of their scale. Central differences check the reference at depth
/// 1 here and at depth 2 in the next test.
#[test]
fn unet_batch_matches_f64_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(0x0e70, 0);
    let image = ImageShape {
        channels: 2,
        height: 8,
        width: 8,
    };
    let (n, d, sigma) = (6, image.dim(), 0.7);
    let data = images(&mut rng, n, d);
    for (widths, padding, upsampling) in [
        (&[4, 6][..], Padding::Zero, Upsampling::Nearest),
        (&[4, 6], Padding::Circular, Upsampling::Bilinear),
        (&[4, 4, 6], Padding::Zero, Upsampling::Bilinear),
        (&[4, 4, 6], Padding::Circular, Upsampling::Nearest),
    ] {
        let config = config(image, widths, padding, upsampling);
        let depth = config.depth();
        let trainer = UNetTrainer::new(gpu, &data, config.clone()).unwrap();
        assert_eq!(trainer.batches_per_epoch(), 2);
        let tensors = trainer.parameters().unwrap();
        assert_eq!(tensors.len(), 3 * (2 * depth + 1) + 1);
        for batch in [0, 1] {
            let rows = if batch == 1 { 2 } else { 4 };
            let eval = trainer.evaluate_batch(sigma, 0, batch).unwrap();
            let inputs =
                batch_inputs_reference(&data, config.seed, 0, (4, batch), 1.0, sigma).unwrap();
            let (x, y, yb) = (flat(&inputs.x), flat(&inputs.y), flat(&inputs.y_bound));
            let what = format!("depth {depth} {padding:?}/{upsampling:?} batch {batch}");
            assert_eq!(eval.x, x, "{what}: gathered images");
            assert_within_slice(&format!("{what} Y_b"), &eval.y, &(y.clone(), yb.clone()));
            let exact = vec![0.0; y.len()];
            // at depth 2 the derived bounds are vacuous (test doc): the CPU route is skipped
            let routes = [("GPU Y_b", &eval.y, &exact), ("CPU noise", &y, &yb)];
            for &(route, y_in, y_bound) in &routes[..3 - depth] {
                let reference =
                    unet_batch_reference(&config, &tensors, rows, (&x, y_in, y_bound), sigma)
                        .unwrap();
                let what = format!("{what} ({route})");
                let mut checked = vec![(
                    format!("{what} ‖x̂ − x‖²"),
                    &eval.row_sq,
                    (reference.row_sq.clone(), reference.row_sq_bound.clone()),
                )];
                for (t, g) in eval.gradient.iter().enumerate() {
                    checked.push((
                        format!("{what} ∇{}", config.tensor_name(t)),
                        g,
                        (
                            reference.gradient[t].clone(),
                            reference.gradient_bound[t].clone(),
                        ),
                    ));
                }
                for (name, got, reference) in checked {
                    assert_within_slice(&name, got, &reference);
                    if route == "GPU Y_b" {
                        // the calibrated check (test doc): the worst entry's error relative to
                        // the tensor's largest value
                        let scale = reference.0.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                        let worst = got
                            .iter()
                            .zip(&reference.0)
                            .fold(0.0f64, |m, (g, r)| m.max((g - r).abs()));
                        let tolerance = if depth == 1 { 1e-5 } else { 1e-4 };
                        assert!(
                            worst <= tolerance * scale,
                            "{name}: max error {worst} against a largest value {scale}"
                        );
                    }
                }
            }
            if batch == 0 && depth == 1 {
                assert_reference_gradient_is_the_derivative(
                    &what,
                    &config,
                    &tensors,
                    rows,
                    (&x, &y),
                    sigma,
                );
            }
        }
    }
}

/// Depth 2 (widths (4, 4, 6): two pooled blocks, and a decoder whose upsampled input is another
/// decoder's output), both paddings and upsamplings: the f64 reference's backpropagated gradient
/// of all 16 tensors against central differences of its own loss, on 3 images at σ = 0.6 (the
/// CPU route alone; the GPU is compared with this reference in `unet_batch_matches_f64_reference`).
#[test]
fn unet_reference_gradient_is_the_derivative_of_its_loss_at_depth_two() {
    let mut rng = Rng::new(0x0e73, 0);
    let image = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let d = image.dim();
    let x: Vec<f64> = (0..3 * d).map(|_| rng.normal()).collect();
    let y: Vec<f64> = x.iter().map(|v| v + 0.6 * rng.normal()).collect();
    for (padding, upsampling) in [
        (Padding::Zero, Upsampling::Bilinear),
        (Padding::Circular, Upsampling::Nearest),
    ] {
        let config = config(image, &[4, 4, 6], padding, upsampling);
        let tensors: Vec<Vec<f64>> = config
            .tensor_lengths()
            .iter()
            .map(|&len| (0..len).map(|_| 0.4 * rng.normal()).collect())
            .collect();
        assert_reference_gradient_is_the_derivative(
            &format!("depth 2 {padding:?}/{upsampling:?}"),
            &config,
            &tensors,
            3,
            (&x, &y),
            0.6,
        );
    }
}

/// Training 2k epochs in one go equals k epochs, a checkpoint through JSON into a fresh trainer
/// (another seed, overwritten by the checkpoint's), and k more — bit for bit: the f32 bit
/// patterns of every tensor and Adam moment, and the epoch losses (k = 2; 8×8 grey images,
/// N = 6, B = 4, depth 2 with widths (4, 4, 6), circular padding, bilinear upsampling). Mismatched checkpoints
/// are refused, naming the tensor.
#[test]
fn unet_trainer_resumes_bit_for_bit() {
    let gpu = gpu();
    let mut rng = Rng::new(0x0e71, 0);
    let image = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let data = images(&mut rng, 6, image.dim());
    let config = config(image, &[4, 4, 6], Padding::Circular, Upsampling::Bilinear);
    let k = 2;
    let mut whole = UNetTrainer::new(gpu, &data, config.clone()).unwrap();
    let all = whole.train_epochs(0.5, 2 * k, &mut |_, _| {}).unwrap();
    let mut first = UNetTrainer::new(gpu, &data, config.clone()).unwrap();
    let mut seen = vec![];
    let mut losses = first
        .train_epochs(0.5, k, &mut |e, _| seen.push(e))
        .unwrap();
    let json = serde_json::to_string(&first.state().unwrap()).unwrap();
    let restored: UNetState = serde_json::from_str(&json).unwrap();
    let mut second = UNetTrainer::new(
        gpu,
        &data,
        UNetConfig {
            seed: 99,
            ..config.clone()
        },
    )
    .unwrap();
    second.set_state(&restored).unwrap();
    losses.extend(
        second
            .train_epochs(0.5, k, &mut |e, _| seen.push(e))
            .unwrap(),
    );
    assert_eq!(seen, (0..2 * k).collect::<Vec<_>>());
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&all), bits(&losses));
    let (a, b) = (whole.state().unwrap(), second.state().unwrap());
    let f32_bits = |s: &UNetState| {
        s.tensors
            .iter()
            .flat_map(|t| t.value.iter().chain(&t.m).chain(&t.v).map(|x| x.to_bits()))
            .collect::<Vec<u32>>()
    };
    assert_eq!(f32_bits(&a), f32_bits(&b));
    assert_eq!((a.step, a.epoch), (b.step, b.epoch));
    assert_eq!((a.step, a.epoch), (2 * 2 * k as u64, 2 * k as u64));
    assert!(all.iter().all(|l| l.is_finite() && *l > 0.0));
    let mut wrong = restored.clone();
    wrong.widths = vec![4, 4, 8];
    assert!(second.set_state(&wrong).is_err());
    let mut wrong = restored.clone();
    wrong.tensors[4].v[1] = -1.0;
    let e = second.set_state(&wrong).unwrap_err().to_string();
    assert!(e.contains("block 1 γβ"), "{e}");
    let mut wrong = restored.clone();
    wrong.upsampling = Upsampling::Nearest;
    assert!(second.set_state(&wrong).is_err());
    let mut wrong = restored;
    wrong.tensors[0].m.pop();
    assert!(second.set_state(&wrong).is_err());
}

/// A trained U-Net's `predict` (depth 1, widths (4, 6), zero padding, nearest upsampling; 30
/// epochs alternating σ = 0.3 and 0.8 on 12 smooth 8×8 images) matches the f64 forward within
/// its derived bound at both σ, and the σ embedding matters: the outputs at the two σ differ by
/// more than twice the sum of the bounds. A sanity check, not a theorem: training lowers the loss.
#[test]
fn unet_trained_network_predicts_its_f64_forward() {
    let gpu = gpu();
    let mut rng = Rng::new(0x0e72, 0);
    let image = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let d = image.dim();
    let mut data = Mat::from_fn(12, d, |_, _| 0.0);
    for i in 0..12 {
        let (a, b, p) = (rng.normal(), rng.normal(), rng.uniform() * 6.0);
        for r in 0..8 {
            for c in 0..8 {
                let v = a * ((r as f64 + p) * 0.7).cos() + b * ((c as f64) * 0.5 + p).cos();
                data[(i, r * 8 + c)] = f64::from(v as f32);
            }
        }
    }
    let config = config(image, &[4, 6], Padding::Zero, Upsampling::Nearest);
    let mut trainer = UNetTrainer::new(gpu, &data, config.clone()).unwrap();
    let mut losses = Vec::new();
    for round in 0..15 {
        losses.push(trainer.train_epochs(0.3, 1, &mut |_, _| {}).unwrap()[0]);
        losses.push(trainer.train_epochs(0.8, 1, &mut |_, _| {}).unwrap()[0]);
        assert_eq!(trainer.epochs_done(), 2 * round + 2);
    }
    assert!(
        losses[29] < 0.8 * losses[1],
        "loss at σ = 0.8: {} → {}",
        losses[1],
        losses[29]
    );
    let tensors = trainer.parameters().unwrap();
    let y = Mat::from_fn(5, d, |i, j| {
        f64::from((data[(i, j)] + 0.5 * rng.normal()) as f32)
    });
    let mut outputs = Vec::new();
    for sigma in [0.3, 0.8] {
        let got = flat(&trainer.predict(&y, sigma).unwrap());
        let reference =
            unet_forward_reference(&config, &tensors, 5, &flat(&y), &vec![0.0; 5 * d], sigma)
                .unwrap();
        assert_within_slice(
            &format!("predict at σ = {sigma}"),
            &got,
            &(reference.output.clone(), reference.bound.clone()),
        );
        outputs.push((got, reference.bound));
    }
    let gap = (0..5 * d)
        .map(|i| (outputs[0].0[i] - outputs[1].0[i]).abs() / (outputs[0].1[i] + outputs[1].1[i]))
        .fold(0.0f64, f64::max);
    // both outputs lie within their bounds of the f64 forward, so a gap above 1 means the f64
    // maps at the two σ differ; 2 leaves a margin
    assert!(gap > 2.0, "σ changes the output by only {gap}× the bounds");
}

/// Bad configurations and images are typed errors naming the value.
#[test]
fn unet_bad_inputs_are_typed_errors() {
    let gpu = gpu();
    let image = ImageShape {
        channels: 1,
        height: 8,
        width: 6,
    };
    let data = Mat::from_fn(6, 48, |i, j| (i * j) as f64 * 0.01);
    let good = config(image, &[4, 4], Padding::Zero, Upsampling::Nearest);
    let err = |c: UNetConfig, m: &Mat| UNetTrainer::new(gpu, m, c).err().unwrap().to_string();
    let e = err(
        UNetConfig {
            widths: vec![],
            ..good.clone()
        },
        &data,
    );
    assert!(e.contains("widths"), "{e}");
    let e = err(
        UNetConfig {
            widths: vec![4, 3],
            ..good.clone()
        },
        &data,
    );
    assert!(e.contains("level 1") && e.contains('3'), "{e}");
    // 8×6 cannot be pooled 3 times
    let e = err(
        UNetConfig {
            widths: vec![2, 2, 2, 2],
            ..good.clone()
        },
        &data,
    );
    assert!(e.contains("8×6") && e.contains("2^3"), "{e}");
    let e = err(
        UNetConfig {
            kernel: 2,
            ..good.clone()
        },
        &data,
    );
    assert!(e.contains("kernel") && e.contains('2'), "{e}");
    let e = err(
        UNetConfig {
            batch: 7,
            ..good.clone()
        },
        &data,
    );
    assert!(e.contains('7') && e.contains('6'), "{e}");
    let e = err(
        UNetConfig {
            groups: 0,
            ..good.clone()
        },
        &data,
    );
    assert!(e.contains("groups"), "{e}");
    let e = err(good.clone(), &Mat::from_fn(6, 47, |_, _| 0.0));
    assert!(e.contains("47") && e.contains("48"), "{e}");
    let mut nan = data.clone();
    nan[(2, 3)] = f64::NAN;
    let e = err(good.clone(), &nan);
    assert!(e.contains("NaN") && e.contains("99"), "{e}");
    let mut t = UNetTrainer::new(gpu, &data, good).unwrap();
    for bad in [0.0, -1.0, f64::NAN] {
        let e = t
            .train_epochs(bad, 1, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{bad}")), "{e}");
        assert!(t.predict(&Mat::from_fn(1, 48, |_, _| 0.0), bad).is_err());
    }
    assert_eq!(t.epochs_done(), 0);
    assert!(t.evaluate_batch(0.5, 0, 2).is_err());
    assert!(t.predict(&Mat::from_fn(2, 47, |_, _| 0.0), 0.5).is_err());
    assert!(t.flops_per_epoch() > 0.0);
}
