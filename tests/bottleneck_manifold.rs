//! `bottleneck_manifold`: a denoiser through an h-wide code has Jacobian rank ≤ h; its step
//! outputs lie in a decoder image, and the samples on the last step's. See
//! theorems/bottleneck_manifold.md.

use crate::common;

use common::{arch_strategy, config};
use diffusion_theorems::denoisers::bottleneck::{
    Activation, Architecture, BottleneckNet, Layer, PerStep, SigmaInput,
};
use diffusion_theorems::denoisers::Denoiser;
use diffusion_theorems::diffusion::{Ddim, Sampler};
use diffusion_theorems::error::Error;
use diffusion_theorems::linalg::{self, Mat};
use diffusion_theorems::rng::Rng;
use diffusion_theorems::theorems::{self, bottleneck_manifold as bm};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn exact_jacobian_has_rank_at_most_h(
        (arch, seed) in arch_strategy(false),
        log_sigma in -2.0f64..1.0,
    ) {
        let mut rng = Rng::new(seed, 0);
        let net = BottleneckNet::random(arch, &mut rng).unwrap();
        let y = rng.normals(net.dim());
        let r = bm::exact_jacobian_rank(&net, &y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(r.check.passed(), "{r:?}");
    }

    #[test]
    fn difference_quotient_jacobian_has_rank_at_most_h(
        (arch, seed) in arch_strategy(true),
        log_sigma in -2.0f64..1.0,
    ) {
        let mut rng = Rng::new(seed, 0);
        let net = BottleneckNet::random(arch, &mut rng).unwrap();
        let y = rng.normals(net.dim());
        let r = bm::difference_quotient_rank(&net, &y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(r.check.passed(), "{r:?}");
    }

    #[test]
    fn exact_jacobian_matches_central_differences(
        (arch, seed) in arch_strategy(true),
        log_sigma in -2.0f64..1.0,
    ) {
        let mut rng = Rng::new(seed, 0);
        let net = BottleneckNet::random(arch, &mut rng).unwrap();
        let y = rng.normals(net.dim());
        let c = bm::exact_jacobian_matches_differences(&net, &y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(c.passed(), "{c:?}");
    }

    #[test]
    fn sigma_in_encoder_only_gives_one_image_for_all_sigma(
        (arch, seed) in arch_strategy(false),
        log_sigma in -2.0f64..1.0,
    ) {
        let arch = Architecture { sigma: SigmaInput::Encoder, ..arch };
        let mut rng = Rng::new(seed, 0);
        let net = BottleneckNet::random(arch, &mut rng).unwrap();
        let y = rng.normals(net.dim());
        let r = bm::joint_jacobian_rank(&net, &y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(r.check.passed(), "{r:?}");
    }
}

/// The rank check can fail: claiming a bottleneck h − 1 for a network whose code has width h,
/// `σ_h` exceeds the threshold by orders of magnitude at random points.
#[test]
fn rank_check_rejects_a_claimed_bottleneck_narrower_than_the_code() {
    let mut rng = Rng::new(61, 0);
    for h in 2..5 {
        let arch = Architecture {
            dim: 5,
            encoder: vec![16],
            bottleneck: h,
            decoder: vec![16],
            hidden: Activation::Tanh,
            code: Activation::Tanh,
            output: Activation::Identity,
            sigma: SigmaInput::Encoder,
        };
        let net = BottleneckNet::random(arch, &mut rng).unwrap();
        let y = rng.normals(5);
        let r = bm::exact_jacobian_rank(&net, &y, 0.5).unwrap();
        assert!(r.check.passed(), "{r:?}");
        let s = &r.singular_values;
        assert!(
            s[h - 1] > 1e6 * r.check.tolerance,
            "σ_h = {} vs threshold {}",
            s[h - 1],
            r.check.tolerance
        );
    }
}

/// Headline of the rank claim, evidence that can fail: on the verify row's random tanh networks
/// (n ∈ {2, 3, 5, 8}, h < n, every σ input) the central-difference Jacobian of the black-box
/// map has σ_{h+1} within Weyl's threshold, and the same check rejects the twin networks whose
/// code is one wider (power > 1), each twin at one noise level at least. Tolerance
/// calibrated: Richardson's ×2 estimate.
#[test]
fn black_box_rank_rejects_a_code_one_wider() {
    let mut rng = Rng::new(606, 1);
    let mut cases = Vec::new();
    for (net, wider) in bm::smooth_network_pairs(606).unwrap() {
        let y = rng.normals(net.dim());
        for sigma in [0.05, 0.5, 5.0] {
            let c = bm::black_box_rank(&net, &wider, &y, sigma).unwrap();
            assert!(c.check.passed(), "{:?}: {c:?}", net.architecture());
            cases.push(c);
        }
    }
    assert!(theorems::power(&cases) > 1.0, "{cases:?}");
    // Every twin is rejected at one of its three noise levels at least.
    for (k, triple) in cases.chunks(3).enumerate() {
        assert!(
            triple.iter().any(|c| !c.planted.passed()),
            "twin {k} not rejected: {triple:?}"
        );
    }
}

/// Counterexample to the σ-uniform statement: when σ also enters the decoder the image moves
/// with σ — the central-difference Jacobian of the black box in (y, ln σ) has rank h + 1
/// (σ_{h+1} ≫ its threshold; the chain-rule joint Jacobian agrees), and an output at σ = 0.1 is
/// far from the decoder curve of σ = 2 (a certified lower bound). Its control is
/// `sigma_in_encoder_only_outputs_lie_on_one_curve`.
#[test]
fn sigma_in_decoder_moves_the_image_counterexample() {
    let mut rng = Rng::new(62, 0);
    let moving = BottleneckNet::random(
        Architecture::paper_2d(1, 16, SigmaInput::EncoderAndDecoder),
        &mut rng,
    )
    .unwrap();
    let y = vec![0.7, -0.4];
    let fd = bm::joint_difference_rank(&moving, &y, 0.3).unwrap();
    assert!(
        fd.check.residual > 1e3 * fd.check.tolerance,
        "σ_2 of the difference joint Jacobian {fd:?} should exceed its threshold"
    );
    let r = bm::joint_jacobian_rank(&moving, &y, 0.3).unwrap();
    assert!(r.check.residual > 1e6 * r.check.tolerance, "{r:?}");
    let x = moving.denoise(&y, 0.1).unwrap();
    let z_max = 4.0 * moving.encode(&y, 0.1).unwrap()[0].abs().max(1.0);
    let (_, lower) = bm::distance_to_decoder_curve(&moving, &x, 2.0, z_max, 20001).unwrap();
    assert!(lower > 1e-3, "certified distance {lower}");
}

/// Positive control of the counterexample, same machinery: σ only in the encoder of the same
/// architecture — the difference joint Jacobian in (y, ln σ) has rank ≤ h at random points, and
/// outputs at σ from 0.01 to 10 lie on the one curve D(ℝ) (distance within the rounding bound).
#[test]
fn sigma_in_encoder_only_outputs_lie_on_one_curve() {
    let mut rng = Rng::new(62, 1);
    let fixed = BottleneckNet::random(Architecture::paper_2d(1, 16, SigmaInput::Encoder), &mut rng)
        .unwrap();
    for _ in 0..4 {
        let y = rng.normals(2);
        let fd = bm::joint_difference_rank(&fixed, &y, 0.3).unwrap();
        assert!(fd.check.passed(), "{fd:?}");
    }
    let ys: Vec<Vec<f64>> = (0..6).map(|_| rng.normals(2)).collect();
    let sigmas = [0.01, 0.1, 0.3, 1.0, 3.0, 10.0];
    let c = bm::outputs_on_decoder_curve(&fixed, &ys, &sigmas, 1.0).unwrap();
    assert!(c.passed(), "{c:?}");
}

/// Headline of the σ-uniform row: the black-box joint rank ≤ h for the verify row's networks
/// with σ outside the decoder, and the same check rejects their twins with σ also in the
/// decoder (power > 1).
#[test]
fn black_box_joint_rank_rejects_sigma_in_the_decoder() {
    let mut rng = Rng::new(606, 2);
    let mut cases = Vec::new();
    for (net, _) in bm::smooth_network_pairs(606).unwrap() {
        if net.architecture().sigma == SigmaInput::EncoderAndDecoder {
            continue;
        }
        let moving = BottleneckNet::random(
            Architecture {
                sigma: SigmaInput::EncoderAndDecoder,
                ..net.architecture().clone()
            },
            &mut rng,
        )
        .unwrap();
        let y = rng.normals(net.dim());
        let c = bm::black_box_joint_rank(&net, &moving, &y, 0.3).unwrap();
        assert!(c.check.passed(), "{:?}: {c:?}", net.architecture());
        cases.push(c);
    }
    assert!(theorems::power(&cases) > 1.0, "{cases:?}");
}

/// The statement the proof needs (the repaired wording): samples are the last step's outputs,
/// so they lie on that step's curve — for per-step networks, σ in the encoder, and σ in the
/// decoder alike (DDIM's last step returns `f(x₁; σ₁)` exactly since `σ₀ = 0`). Checked by
/// distance to the curve `D(ℝ, σ₁)` of the last network (h = 1, n = 3) within the derived
/// rounding bound; the same check rejects the sampler's last noisy iterate `x₁` (a sampler that
/// stops before the last denoiser call, like Kadkhodaie–Simoncelli's σ_∞ > 0).
#[test]
fn samples_lie_on_the_last_step_decoder_curve() {
    let schedule = bm::sampling_schedule().unwrap();
    let sigmas: Vec<f64> = (1..=schedule.steps())
        .map(|l| schedule.denoiser_noise(l))
        .collect();
    let mut rng = Rng::new(63, 1);
    let noise = Mat::from_fn(16, 3, |_, _| rng.normal());
    for (denoiser, last) in bm::sampling_cases(63, &sigmas).unwrap() {
        let c =
            bm::samples_on_last_decoder_curve(denoiser.as_ref(), &last, &schedule, &noise).unwrap();
        assert!(c.check.passed(), "{c:?}");
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// Bad input is a typed error naming the value: zero bottleneck, wrong layer shapes, σ ≤ 0, a
/// point of the wrong dimension, a per-step network asked at an untrained σ.
#[test]
fn bad_input_is_a_typed_error() {
    let mut rng = Rng::new(64, 0);
    let mut arch = Architecture::paper_2d(1, 8, SigmaInput::Encoder);
    arch.bottleneck = 0;
    assert!(matches!(
        BottleneckNet::random(arch, &mut rng),
        Err(Error::InvalidArgument { .. })
    ));
    let arch = Architecture::paper_2d(1, 8, SigmaInput::Encoder);
    let bad_layers = vec![Layer {
        weight: Mat::zeros(8, 3),
        bias: vec![0.0; 8],
    }];
    assert!(BottleneckNet::new(arch.clone(), bad_layers).is_err());
    let net = BottleneckNet::random(arch, &mut rng).unwrap();
    assert!(matches!(
        net.denoise(&[0.0, 0.0], -1.0).unwrap_err(),
        Error::InvalidSigma(s) if s == -1.0
    ));
    assert!(matches!(
        net.denoise(&[0.0], 1.0),
        Err(Error::DimensionMismatch { got: 1, .. })
    ));
    let blind =
        BottleneckNet::random(Architecture::paper_2d(1, 8, SigmaInput::None), &mut rng).unwrap();
    let per_step = PerStep::new(vec![0.5], vec![blind]).unwrap();
    let err = per_step.denoise(&[0.0, 0.0], 0.25).unwrap_err();
    assert!(err.to_string().contains("0.25"), "{err}");
    assert!(PerStep::new(vec![0.5], vec![net]).is_err());
}

/// Backpropagation (the f64 reference of the GPU training kernels) against central differences
/// of the loss in every parameter, on random smooth networks and batches. Tolerance: the
/// difference quotient's bound (Richardson + rounding `2δL/h` with δL from the network's running
/// error bound, `δL ≤ (1/m)Σ(2|r|δf + δf²) + γ_{mn}L`) plus the f64 rounding of backprop, taken
/// as `γ_{P}` times the same sum over absolute values (`64·P·ε·max|∇|`).
#[test]
fn backpropagation_matches_central_differences_of_the_loss() {
    use diffusion_theorems::stats::finite_difference;
    let mut rng = Rng::new(65, 0);
    for sigma in [
        SigmaInput::None,
        SigmaInput::Encoder,
        SigmaInput::EncoderAndDecoder,
    ] {
        let arch = Architecture {
            dim: 3,
            encoder: vec![6, 5],
            bottleneck: 2,
            decoder: vec![7],
            hidden: Activation::Tanh,
            code: Activation::Tanh,
            output: Activation::Tanh,
            sigma,
        };
        let net = BottleneckNet::random(arch, &mut rng).unwrap();
        let m = 8;
        let xs = Mat::from_fn(m, 3, |_, _| 0.5 * rng.normal());
        let sigmas: Vec<f64> = (0..m).map(|_| 0.1 + rng.uniform()).collect();
        let ys = Mat::from_fn(m, 3, |i, j| xs[(i, j)] + sigmas[i] * rng.normal());
        let (loss, grad) = net.loss_and_gradient(&ys, &xs, &sigmas).unwrap();
        let theta = net.parameters();
        let loss_at = |t: &[f64]| -> diffusion_theorems::Result<f64> {
            Ok(net
                .with_parameters(t)?
                .loss_and_gradient(&ys, &xs, &sigmas)?
                .0)
        };
        let mut delta_f = 0.0;
        for p in 0..m {
            let y = linalg::row(&ys, p);
            let f = net.denoise(&y, sigmas[p]).unwrap();
            let df = net.forward_error(&y, sigmas[p]).unwrap();
            for j in 0..3 {
                delta_f += (2.0 * (f[j] - xs[(p, j)]).abs() * df + df * df) / m as f64;
            }
        }
        let eps = f64::EPSILON;
        let delta_l = 2.0 * (delta_f + (m * 3 + 2) as f64 * eps * loss);
        let h = eps.cbrt();
        let fd = finite_difference::gradient(loss_at, &theta, h, delta_l).unwrap();
        let p = theta.len();
        let gmax = grad.iter().fold(0.0f64, |a, g| a.max(g.abs()));
        for (k, g) in grad.iter().enumerate() {
            let tol = fd.error[k] + 64.0 * p as f64 * eps * gmax;
            assert!(
                (g - fd.value[k]).abs() <= tol,
                "{sigma:?} ∂L/∂θ[{k}]: backprop {g} vs differences {} (tol {tol})",
                fd.value[k]
            );
        }
    }
}

/// Training on the GPU with checkpoints: 12 steps in one run, and 6 steps + a resume from the
/// checkpoint file for 6 more, give bit-identical weights, Adam moments and losses (batch k is
/// a pure function of (seed, k); the f32 state and the f64 config round-trip exactly through the
/// JSON, σ with 17 significant digits included — before serde_json's `float_roundtrip` such a
/// σ read back one ulp off and every resume was refused).
/// The trained weights differ from the initial ones, a checkpoint from another architecture is
/// refused, and per-step training (one σ-blind network per level) gives a `PerStep` denoiser
/// that routes each σ to its own trained network.
#[test]
fn gpu_training_resumed_from_a_checkpoint_continues_identically() {
    use diffusion_theorems::denoisers::training::{train, LossWeighting, RunOptions, TrainConfig};
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::theorems::linear_gaussian::fig2_pair;
    let gpu = common::gpu();
    let (target, _) = fig2_pair().unwrap();
    let mut rng = Rng::new(68, 0);
    let net = BottleneckNet::random(Architecture::paper_2d(1, 16, SigmaInput::Encoder), &mut rng)
        .unwrap();
    let config = |steps| TrainConfig {
        batch: 64,
        steps,
        chunk: 4,
        adam: AdamConfig::default(),
        seed: 7,
        // A σ with 17 significant digits, like the schedule's σ of `exp bottleneck-2d`, that
        // serde_json's default float parser reads back one ulp off: the saved config must read
        // back equal, or the resume below is refused.
        #[allow(clippy::excessive_precision)]
        sigmas: vec![0.05, 0.2, 0.093_649_764_971_049_29, 1.0, 3.0],
        weighting: LossWeighting::Edm { sigma_data: 1.0 },
    };
    let dir = std::env::temp_dir().join(format!("bottleneck-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.json");
    let _ = std::fs::remove_file(&path);
    let straight = train(gpu, &net, &target, &config(12), &RunOptions::default()).unwrap();
    let with_ck = RunOptions {
        checkpoint: Some(path.clone()),
        progress: false,
    };
    let half = train(gpu, &net, &target, &config(6), &with_ck).unwrap();
    assert_eq!(half.state.step, 6);
    let resumed = train(gpu, &net, &target, &config(12), &with_ck).unwrap();
    assert_eq!(resumed.state, straight.state);
    assert_eq!(resumed.losses, straight.losses);
    assert_ne!(straight.state.theta, net.parameters());
    let other = BottleneckNet::random(Architecture::paper_2d(2, 16, SigmaInput::Encoder), &mut rng)
        .unwrap();
    assert!(train(gpu, &other, &target, &config(12), &with_ck).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
    // The paper's form: one σ-blind network per level, each trained on its own σ.
    let blind: Vec<BottleneckNet> = (0..3)
        .map(|_| {
            BottleneckNet::random(Architecture::paper_2d(1, 8, SigmaInput::None), &mut rng).unwrap()
        })
        .collect();
    let levels = TrainConfig {
        sigmas: vec![0.1, 0.5, 2.0],
        ..config(8)
    };
    let (per_step, losses) = diffusion_theorems::denoisers::training::train_per_step(
        gpu, &blind, &target, &levels, false,
    )
    .unwrap();
    assert!(losses.iter().all(|l| l.len() == 8));
    for (l, &s) in levels.sigmas.iter().enumerate() {
        let trained = per_step.net_for(s).unwrap();
        assert_ne!(trained.parameters(), blind[l].parameters());
        assert_eq!(
            per_step.denoise(&[0.3, -0.2], s).unwrap(),
            trained.denoise(&[0.3, -0.2], s).unwrap()
        );
    }
    assert!(diffusion_theorems::denoisers::training::train_per_step(
        gpu,
        &blind[..2],
        &target,
        &levels,
        false
    )
    .is_err());
}

/// Issue 22 item 9: training whose loss stops being finite (here Adam with learning rate
/// 10³⁰, which overflows the f32 weights in its first step) is a typed `Numerical` error naming
/// the step, the loss and the learning rate — not a run that finishes with `null` losses — and
/// the checkpoint keeps the last state whose losses were finite (none here: no file).
#[test]
fn diverging_training_is_an_error_naming_the_learning_rate() {
    use diffusion_theorems::denoisers::training::{train, LossWeighting, RunOptions, TrainConfig};
    use diffusion_theorems::error::Error;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::theorems::linear_gaussian::fig2_pair;
    let gpu = common::gpu();
    let (target, _) = fig2_pair().unwrap();
    let mut rng = Rng::new(70, 0);
    let net = BottleneckNet::random(Architecture::paper_2d(1, 16, SigmaInput::Encoder), &mut rng)
        .unwrap();
    let config = |lr| TrainConfig {
        batch: 64,
        steps: 8,
        chunk: 4,
        adam: AdamConfig {
            lr,
            ..AdamConfig::default()
        },
        seed: 70,
        sigmas: vec![0.1, 1.0],
        weighting: LossWeighting::Uniform,
    };
    let dir = std::env::temp_dir().join(format!("dt-diverge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let options = RunOptions {
        checkpoint: Some(dir.join("net.ckpt.json")),
        progress: false,
    };
    match train(gpu, &net, &target, &config(1e30), &options) {
        Err(Error::Numerical(message)) => assert!(
            message.contains("diverged")
                && message.contains("learning rate 1000000000000000000000000000000"),
            "{message}"
        ),
        other => panic!(
            "expected a Numerical error, got {:?}",
            other.map(|c| c.losses)
        ),
    }
    assert!(!dir.join("net.ckpt.json").exists());
    // the same run at the default rate trains (the positive control)
    let fine = train(gpu, &net, &target, &config(1e-3), &options).unwrap();
    assert!(fine.losses.iter().all(|l| l.is_finite()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fig. 4 in miniature (the full run is `diffusion-theorems exp bottleneck-2d`): the 2-D
/// network 2 → 64 → 1 → 64 → 2 (σ in the encoder) trained on the GPU for 300 Adam steps on the
/// three-component GMM; its 500 DDIM samples lie on the last step's decoder curve (distance
/// < 1e-10, the f64 rounding scale) and local PCA (k = 20, τ = 0.95) gives dimension 1 at
/// every anchor, while fresh target samples give dimension 2 at most anchors.
#[test]
fn trained_2d_bottleneck_samples_lie_on_a_curve() {
    use diffusion_theorems::denoisers::training::{train, LossWeighting, RunOptions, TrainConfig};
    use diffusion_theorems::experiments::bottleneck_2d::schedule;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::stats::intrinsic_dimension::local_pca;
    use diffusion_theorems::targets::Target;
    use diffusion_theorems::theorems::linear_gaussian::fig2_pair;
    let gpu = common::gpu();
    let (target, _) = fig2_pair().unwrap();
    let schedule = schedule().unwrap();
    let sigmas: Vec<f64> = (1..=schedule.steps())
        .map(|l| schedule.denoiser_noise(l))
        .collect();
    let mut rng = Rng::new(69, 0);
    let init = BottleneckNet::random(Architecture::paper_2d(1, 64, SigmaInput::Encoder), &mut rng)
        .unwrap();
    let config = TrainConfig {
        batch: 256,
        steps: 300,
        chunk: 100,
        adam: AdamConfig::default(),
        seed: 69,
        sigmas: sigmas.clone(),
        weighting: LossWeighting::Uniform,
    };
    let net = train(gpu, &init, &target, &config, &RunOptions::default())
        .unwrap()
        .network()
        .unwrap();
    let noise = Mat::from_fn(500, 2, |_, _| rng.normal());
    let samples = Ddim { schedule }.sample(&net, &noise).unwrap();
    let curve = bm::DecoderCurve::new(&net, sigmas[0], 50.0, 4001).unwrap();
    for p in (0..500).step_by(5) {
        let x = linalg::row(&samples, p);
        let (upper, _) = curve.distance(&x).unwrap();
        assert!(upper < 1e-10, "sample {p} at distance {upper}");
    }
    let gen = local_pca(&samples, 20, 2, 0.95).unwrap();
    assert_eq!(gen.mean_dimension, 1.0, "{gen:?}");
    let reference = target.sample(&mut rng, 500);
    let tgt = local_pca(&reference, 20, 2, 0.95).unwrap();
    assert!(tgt.fraction_one < 0.2, "{tgt:?}");
}

/// Reproducibility: every verify row of `bottleneck_manifold` passes and reproduces its recorded numbers —
/// cases, power, and the geometric means over all cases of the tolerance and of the planted
/// variant's residual (`tests/common/pins/bottleneck_manifold.json`). A changed allowance or negative control in any
/// case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("bottleneck_manifold");
}
