//! The bias-free CNN trainer (`gpu::bfcnn`, Kadkhodaie et al.'s BF-CNN shape) on the
//! convolution kernels: one batch's loss and gradient against the f64 reference with its
//! running bounds, bit-for-bit resumption, positive homogeneity of the trained network, and
//! typed errors.
//!
//! Bugs planted by hand (each reverted; the test that caught it): the backward ReLU mask read
//! off dA instead of A, the reference without its mask, the noise of epoch + 1, the weight
//! gradient's column index + 1, the weight gradient without the batch's last image
//! (`bfcnn_batch_matches_f64_reference`, the first and fourth also by the homogeneity test's
//! loss check); `set_state` dropping the step count (`bfcnn_trainer_resumes_bit_for_bit`);
//! `predict` adding 10⁻³ after a ReLU (`bfcnn_trained_network_is_homogeneous`, its `predict`
//! parity check).

use super::*;
use diffusion_theorems::gpu::adam::AdamConfig;
use diffusion_theorems::gpu::bfcnn::{
    bfcnn_batch_reference, bfcnn_forward_reference, BfCnnConfig, BfCnnState, BfCnnTrainer,
};
use diffusion_theorems::gpu::conv::Padding;
use diffusion_theorems::gpu::dense::batch_inputs_reference;
use diffusion_theorems::io::grid::ImageShape;
use diffusion_theorems::numerics::F32_UNIT_ROUNDOFF as U;

fn flat(m: &Mat) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect()
}

fn config(image: ImageShape, layers: usize, channels: usize, padding: Padding) -> BfCnnConfig {
    BfCnnConfig {
        image,
        layers,
        channels,
        kernel: 3,
        padding,
        batch: 4,
        adam: AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
        seed: 0xbfc,
    }
}

/// Standard-normal images rounded to f32 (the values the GPU holds).
fn images(rng: &mut Rng, n: usize, d: usize) -> Mat {
    Mat::from_fn(n, d, |_, _| f64::from(rng.normal() as f32))
}

/// One batch (the first, and the short last one: N = 10, B = 4) of 2-channel 7×6 images through
/// 3 layers of 4 hidden channels, zero and circular padding: the gathered X_b exact and Y_b
/// within the Philox normal's f32 bound of the CPU's regenerated noise; each image's
/// `‖x̂ − x‖²` and every `∂L/∂K_l` within the derived running bounds of `bfcnn_batch_reference`,
/// both end to end from the CPU's noise (loose: every Y entry uncertain by σ·6.6·10⁻³) and
/// from the GPU's own Y_b taken as exact (tight); and the reference's
/// gradient is the derivative of its loss: central differences (h = 10⁻⁵) of the f64 loss at
/// 12 weights per layer, within `10⁻⁶·(1 + |g|)` — calibrated: the loss is piecewise quadratic
/// in one weight (exact central differences away from ReLU kinks), the slack covering the f64
/// loss's rounding `~10⁻¹⁶·L/h`.
#[test]
fn bfcnn_batch_matches_f64_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(0xbfc0, 0);
    let image = ImageShape {
        channels: 2,
        height: 7,
        width: 6,
    };
    let (n, d, sigma) = (10, image.dim(), 0.7);
    let data = images(&mut rng, n, d);
    for padding in [Padding::Zero, Padding::Circular] {
        let config = config(image, 3, 4, padding);
        let trainer = BfCnnTrainer::new(gpu, &data, config).unwrap();
        assert_eq!(trainer.batches_per_epoch(), 3);
        let weights = trainer.parameters().unwrap();
        for batch in [0, 2] {
            let rows = if batch == 2 { 2 } else { 4 };
            let eval = trainer.evaluate_batch(sigma, 0, batch).unwrap();
            let inputs =
                batch_inputs_reference(&data, config.seed, 0, (4, batch), 1.0, sigma).unwrap();
            let (x, y, yb) = (flat(&inputs.x), flat(&inputs.y), flat(&inputs.y_bound));
            let what = format!("{padding:?} batch {batch}");
            // the gather: X_b exact, Y_b within the Philox normal's f32 bound
            assert_eq!(eval.x, x, "{what}: gathered images");
            assert_within_slice(&format!("{what} Y_b"), &eval.y, &(y.clone(), yb.clone()));
            // (i) end to end from the CPU's noise (loose: Y known to within σ·6.6·10⁻³);
            // (ii) from the GPU's own Y_b, exact in f64 (the tight check)
            let exact = vec![0.0; y.len()];
            for (route, y_in, y_bound) in [("CPU noise", &y, &yb), ("GPU Y_b", &eval.y, &exact)] {
                let reference =
                    bfcnn_batch_reference(&config, &weights, rows, &x, y_in, y_bound).unwrap();
                let what = format!("{what} ({route})");
                assert_within_slice(
                    &format!("{what} ‖x̂ − x‖²"),
                    &eval.row_sq,
                    &(reference.row_sq.clone(), reference.row_sq_bound.clone()),
                );
                for l in 0..3 {
                    assert_within_slice(
                        &format!("{what} ∇K{}", l + 1),
                        &eval.gradient[l],
                        &(
                            reference.gradient[l].clone(),
                            reference.gradient_bound[l].clone(),
                        ),
                    );
                }
            }
            let reference = bfcnn_batch_reference(&config, &weights, rows, &x, &y, &yb).unwrap();
            // the reference's gradient against central differences of its own loss
            let loss = |w: &[Vec<f64>]| -> f64 {
                let r = bfcnn_batch_reference(&config, w, rows, &x, &y, &yb).unwrap();
                r.row_sq.iter().sum::<f64>() / rows as f64
            };
            let h = 1e-5;
            for l in 0..3 {
                for k in (0..weights[l].len()).step_by(weights[l].len() / 12) {
                    let (mut plus, mut minus) = (weights.clone(), weights.clone());
                    plus[l][k] += h;
                    minus[l][k] -= h;
                    let fd = (loss(&plus) - loss(&minus)) / (2.0 * h);
                    let g = reference.gradient[l][k];
                    assert!(
                        (fd - g).abs() <= 1e-6 * (1.0 + g.abs()),
                        "{what} K{}[{k}]: backprop {g} vs central difference {fd}",
                        l + 1
                    );
                }
            }
        }
    }
}

/// Training 2k epochs in one go equals k epochs, a checkpoint through JSON into a fresh trainer
/// (another seed, overwritten by the checkpoint's), and k more — bit for bit: the f32 bit
/// patterns of every weight and Adam moment, and the epoch losses (k = 3; 8×8 images, N = 10,
/// B = 4, 3 layers of 4 channels, circular padding). Mismatched checkpoints are refused.
#[test]
fn bfcnn_trainer_resumes_bit_for_bit() {
    let gpu = gpu();
    let mut rng = Rng::new(0xbfc1, 0);
    let image = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let data = images(&mut rng, 10, image.dim());
    let config = config(image, 3, 4, Padding::Circular);
    let k = 3;
    let mut whole = BfCnnTrainer::new(gpu, &data, config).unwrap();
    let all = whole.train_epochs(0.5, 2 * k, &mut |_, _| {}).unwrap();
    let mut first = BfCnnTrainer::new(gpu, &data, config).unwrap();
    let mut seen = vec![];
    let mut losses = first
        .train_epochs(0.5, k, &mut |e, _| seen.push(e))
        .unwrap();
    let json = serde_json::to_string(&first.state().unwrap()).unwrap();
    let restored: BfCnnState = serde_json::from_str(&json).unwrap();
    let mut second = BfCnnTrainer::new(gpu, &data, BfCnnConfig { seed: 99, ..config }).unwrap();
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
    let f32_bits = |s: &BfCnnState| {
        s.weights
            .iter()
            .flat_map(|t| t.value.iter().chain(&t.m).chain(&t.v).map(|x| x.to_bits()))
            .collect::<Vec<u32>>()
    };
    assert_eq!(f32_bits(&a), f32_bits(&b));
    assert_eq!((a.step, a.epoch), (b.step, b.epoch));
    assert_eq!((a.step, a.epoch), (3 * 2 * k as u64, 2 * k as u64));
    assert!(all.iter().all(|l| l.is_finite() && *l > 0.0));
    // refusals
    let mut wrong = restored.clone();
    wrong.channels = 5;
    assert!(second.set_state(&wrong).is_err());
    let mut wrong = restored.clone();
    wrong.weights[1].v[2] = -1.0;
    let e = second.set_state(&wrong).unwrap_err().to_string();
    assert!(e.contains("K2"), "{e}");
    let mut wrong = restored;
    wrong.weights[0].m.pop();
    assert!(second.set_state(&wrong).is_err());
}

/// The trained bias-free network is positively homogeneous: `f(αy) = α·f(y)` for α ∈ {3.7, 0.3}
/// on 4 noisy images, the GPU's `f̂(αy)` and `α·f̂(y)` within the sum of the two forward passes'
/// derived bounds (`αy` rounded to f32 on upload: input bound `u|αy|`) plus the f64 product's
/// rounding. `predict` matches the f64 forward within its bound. The control: the same weights
/// with a planted bias 0.05 on every pre-activation (f64) break the identity by far more than
/// that bound. Also a sanity check (not a theorem): 40 epochs lower the loss.
#[test]
fn bfcnn_trained_network_is_homogeneous() {
    let gpu = gpu();
    let mut rng = Rng::new(0xbfc2, 0);
    let image = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let d = image.dim();
    // smooth-ish images: a random sum of two low-frequency cosines
    let data = Mat::from_fn(16, d, |_, _| 0.0);
    let data = {
        let mut m = data;
        for i in 0..16 {
            let (a, b, p) = (rng.normal(), rng.normal(), rng.uniform() * 6.0);
            for r in 0..8 {
                for c in 0..8 {
                    let v = a * ((r as f64 + p) * 0.7).cos() + b * ((c as f64) * 0.5 + p).cos();
                    m[(i, r * 8 + c)] = f64::from(v as f32);
                }
            }
        }
        m
    };
    let config = config(image, 3, 6, Padding::Zero);
    let mut trainer = BfCnnTrainer::new(gpu, &data, config).unwrap();
    let losses = trainer.train_epochs(0.5, 40, &mut |_, _| {}).unwrap();
    assert!(
        losses[39] < 0.8 * losses[0],
        "{} → {}",
        losses[0],
        losses[39]
    );
    let weights = trainer.parameters().unwrap();
    let y = Mat::from_fn(4, d, |i, j| {
        f64::from((data[(i, j)] + 0.5 * rng.normal()) as f32)
    });
    let fy = trainer.predict(&y).unwrap();
    let reference =
        bfcnn_forward_reference(&config, &weights, 4, &flat(&y), &vec![0.0; 4 * d], None).unwrap();
    assert_within_slice(
        "predict",
        &flat(&fy),
        &(reference.output.clone(), reference.bound.clone()),
    );
    for alpha in [3.7, 0.3] {
        let ay = Mat::from_fn(4, d, |i, j| alpha * y[(i, j)]);
        let fay = trainer.predict(&ay).unwrap();
        let scaled_in: Vec<f64> = flat(&ay);
        let in_bound: Vec<f64> = scaled_in.iter().map(|v| U * v.abs()).collect();
        let at_ay =
            bfcnn_forward_reference(&config, &weights, 4, &scaled_in, &in_bound, None).unwrap();
        let (fay, fy) = (flat(&fay), flat(&fy));
        let bound: Vec<f64> = (0..4 * d)
            .map(|i| {
                at_ay.bound[i] + alpha * reference.bound[i] + f64::EPSILON * (alpha * fy[i]).abs()
            })
            .collect();
        let scaled: Vec<f64> = fy.iter().map(|v| alpha * v).collect();
        assert_within_slice(
            &format!("f({alpha}·y) vs {alpha}·f(y)"),
            &fay,
            &(scaled, bound.clone()),
        );
        // control: a bias breaks homogeneity far beyond the bound
        let biased = |input: &[f64]| {
            bfcnn_forward_reference(&config, &weights, 4, input, &vec![0.0; 4 * d], Some(0.05))
                .unwrap()
                .output
        };
        let (b_ay, b_y) = (biased(&scaled_in), biased(&flat(&y)));
        let ratio = (0..4 * d)
            .map(|i| (b_ay[i] - alpha * b_y[i]).abs() / bound[i])
            .fold(0.0f64, f64::max);
        assert!(
            ratio > 100.0,
            "planted bias: worst |f(αy) − αf(y)|/bound = {ratio}"
        );
    }
}

/// Bad configurations and images are typed errors naming the value.
#[test]
fn bfcnn_bad_inputs_are_typed_errors() {
    let gpu = gpu();
    let image = ImageShape {
        channels: 1,
        height: 5,
        width: 4,
    };
    let data = Mat::from_fn(6, 20, |i, j| (i * j) as f64 * 0.01);
    let good = config(image, 2, 3, Padding::Zero);
    let err = |c: BfCnnConfig, m: &Mat| BfCnnTrainer::new(gpu, m, c).err().unwrap().to_string();
    let e = err(BfCnnConfig { layers: 0, ..good }, &data);
    assert!(e.contains("layers") && e.contains('0'), "{e}");
    let e = err(BfCnnConfig { kernel: 4, ..good }, &data);
    assert!(e.contains("kernel") && e.contains('4'), "{e}");
    let e = err(BfCnnConfig { batch: 7, ..good }, &data);
    assert!(e.contains('7') && e.contains('6'), "{e}");
    let e = err(
        BfCnnConfig {
            channels: 0,
            ..good
        },
        &data,
    );
    assert!(e.contains("channels"), "{e}");
    let e = err(good, &Mat::from_fn(6, 21, |_, _| 0.0));
    assert!(e.contains("21") && e.contains("20"), "{e}");
    let mut nan = data.clone();
    nan[(2, 3)] = f64::NAN;
    let e = err(good, &nan);
    assert!(e.contains("NaN") && e.contains("43"), "{e}");
    let mut t = BfCnnTrainer::new(gpu, &data, good).unwrap();
    for bad in [0.0, -1.0, f64::NAN] {
        let e = t
            .train_epochs(bad, 1, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{bad}")), "{e}");
    }
    assert_eq!(t.epochs_done(), 0);
    assert!(t.evaluate_batch(0.5, 0, 2).is_err());
    assert!(t.predict(&Mat::from_fn(2, 19, |_, _| 0.0)).is_err());
    assert!(t.flops_per_epoch() > 0.0);
}
