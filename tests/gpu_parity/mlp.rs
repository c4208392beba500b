//! The MLP trainer (GEMMs with epilogues, the residual and column-sum kernels) and Adam.

use super::*;

/// A random batch for an n-dimensional network: x ~ N(0, I), σ log-uniform in [0.01, 10],
/// y = x + σg, the feature ln σ, loss weights uniform in [0, 3].
fn mlp_batch(rng: &mut Rng, m: usize, n: usize) -> diffusion_theorems::gpu::mlp::Batch {
    let x = Mat::from_fn(m, n, |_, _| rng.normal());
    let sigma: Vec<f64> = (0..m)
        .map(|_| 10f64.powf(3.0 * rng.uniform() - 2.0))
        .collect();
    let y = Mat::from_fn(m, n, |i, j| x[(i, j)] + sigma[i] * rng.normal());
    let weight = (0..m).map(|_| 3.0 * rng.uniform()).collect();
    diffusion_theorems::gpu::mlp::Batch {
        y,
        feature: sigma.iter().map(|s| s.ln()).collect(),
        x,
        weight,
    }
}

/// `gpu::mlp::GpuTrainer`'s forward (GEMMs with the bias + activation epilogue, the σ feature
/// as a rank-1 addend), loss (the residual kernel with the output mask and row weights, the
/// column sum) and backward (weight, σ-weight and input gradients, the derivative-mask
/// epilogue, bias column sums) against the f64 reference, on random weights and batches, every
/// activation and σ input, within the first-order f32 running error bounds of
/// `gpu::mlp::reference_with_bounds`.
#[test]
fn mlp_forward_backward_match_f64_reference() {
    use diffusion_theorems::denoisers::bottleneck::{
        Activation, Architecture, BottleneckNet, SigmaInput,
    };
    use diffusion_theorems::denoisers::training::gpu_layers;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::mlp::{reference_with_bounds, GpuTrainer};
    let gpu = gpu();
    let mut rng = Rng::new(66, 0);
    let cases = [
        Architecture::paper_2d(1, 64, SigmaInput::Encoder),
        Architecture::paper_2d(2, 17, SigmaInput::EncoderAndDecoder),
        Architecture::paper_per_step(5, 3),
        Architecture {
            dim: 4,
            encoder: vec![9, 7],
            bottleneck: 2,
            decoder: vec![11],
            hidden: Activation::Tanh,
            code: Activation::Relu,
            output: Activation::Tanh,
            sigma: SigmaInput::Encoder,
        },
    ];
    for arch in cases {
        let n = arch.dim;
        let net = BottleneckNet::random(arch.clone(), &mut rng).unwrap();
        let batch = mlp_batch(&mut rng, 37, n);
        let layers = gpu_layers(&net);
        let trainer = GpuTrainer::new(gpu, &layers, 37, AdamConfig::default()).unwrap();
        let (out, loss, grad) = trainer.evaluate(&batch).unwrap();
        let r = reference_with_bounds(&layers, &batch).unwrap();
        let (r_out, b_out, r_loss, b_loss) = (&r.output, &r.output_bound, r.loss, r.loss_bound);
        let (r_grad, b_grad) = (&r.gradient, &r.gradient_bound);
        for i in 0..37 {
            for j in 0..n {
                assert!(
                    (out[(i, j)] - r_out[(i, j)]).abs() <= b_out[(i, j)],
                    "{arch:?} out[{i},{j}] {} vs {} (bound {})",
                    out[(i, j)],
                    r_out[(i, j)],
                    b_out[(i, j)]
                );
            }
        }
        assert!(
            (loss - r_loss).abs() <= b_loss,
            "loss {loss} vs {r_loss} ({b_loss})"
        );
        let worst = (0..grad.len())
            .map(|k| (grad[k] - r_grad[k]).abs() / b_grad[k])
            .fold(0.0, f64::max);
        let largest = r_grad.iter().fold(0.0f64, |a, g| a.max(g.abs()));
        eprintln!("{arch:?}: worst gradient error/bound {worst:.3}, max |grad| {largest:.3e}");
        for k in 0..grad.len() {
            assert!(
                (grad[k] - r_grad[k]).abs() <= b_grad[k],
                "{arch:?} grad[{k}] {} vs {} (bound {})",
                grad[k],
                r_grad[k],
                b_grad[k]
            );
        }
    }
}

/// The `mlp_adam` kernel against one f64 Adam step from the same f32 inputs, at steps 1 and 1000.
#[test]
fn mlp_adam_step_matches_f64_reference() {
    use diffusion_theorems::gpu::adam::{adam_reference, adam_step, AdamConfig};
    let gpu = gpu();
    let mut rng = Rng::new(67, 0);
    let p = 1000;
    let theta: Vec<f64> = rng.normals(p);
    let grad: Vec<f64> = rng.normals(p).iter().map(|g| 0.1 * g).collect();
    let m: Vec<f64> = rng.normals(p).iter().map(|g| 0.01 * g).collect();
    let v: Vec<f64> = rng.normals(p).iter().map(|g| 1e-4 * g * g).collect();
    let adam = AdamConfig {
        lr: 3e-3,
        ..AdamConfig::default()
    };
    for step in [1, 1000] {
        let (t2, m2, v2) = adam_step(gpu, &adam, step, &theta, &grad, &m, &v).unwrap();
        let (rt, rm, rv, bt, bm, bv) = adam_reference(&adam, step, &theta, &grad, &m, &v);
        for k in 0..p {
            assert!(
                (t2[k] - rt[k]).abs() <= bt[k],
                "θ[{k}] {} vs {} ({})",
                t2[k],
                rt[k],
                bt[k]
            );
            assert!(
                (m2[k] - rm[k]).abs() <= bm[k],
                "m[{k}] {} vs {} ({})",
                m2[k],
                rm[k],
                bm[k]
            );
            assert!(
                (v2[k] - rv[k]).abs() <= bv[k],
                "v[{k}] {} vs {} ({})",
                v2[k],
                rv[k],
                bv[k]
            );
        }
    }
}

/// `GpuTrainer::new` and `reference_with_bounds` refuse bad layer stacks with typed errors that
/// name the problem: no layers, a broken width chain, an output narrower than the input, a
/// negative leaky slope (the derivative mask reads φ' off the sign of φ(z)), a zero batch; and
/// a batch of the wrong row count.
#[test]
fn mlp_trainer_refuses_bad_input() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::adam::AdamConfig;
    use diffusion_theorems::gpu::mlp::{reference_with_bounds, GpuTrainer, MlpLayer};
    let gpu = gpu();
    let mut rng = Rng::new(70, 0);
    let layer = |o: usize, i: usize, activation: Activation, sigma: bool| MlpLayer {
        weight: Mat::from_fn(o, i, |_, _| 0.5),
        bias: vec![0.1; o],
        activation,
        sigma,
    };
    let tanh = Activation::Tanh;
    let good = vec![
        layer(4, 3, tanh, true),
        layer(2, 4, Activation::Identity, false),
    ];
    let adam = AdamConfig::default();
    let message =
        |layers: &[MlpLayer], batch: usize| match GpuTrainer::new(gpu, layers, batch, adam) {
            Ok(_) => panic!("accepted {layers:?} with batch {batch}"),
            Err(e) => e.to_string(),
        };
    assert!(message(&[], 4).contains("at least one layer"));
    let broken = [layer(4, 3, tanh, true), layer(2, 5, tanh, false)];
    assert!(message(&broken, 4).contains("layer 1"));
    let narrow = [layer(4, 3, tanh, true), layer(1, 4, tanh, false)];
    assert!(message(&narrow, 4).contains("output"));
    let leaky = [
        layer(4, 3, Activation::LeakyRelu { slope: -0.1 }, true),
        layer(2, 4, tanh, false),
    ];
    assert!(message(&leaky, 4).contains("slope"));
    assert!(message(&good, 0).contains("batch"));
    let trainer = GpuTrainer::new(gpu, &good, 4, adam).unwrap();
    let wrong_rows = mlp_batch(&mut rng, 5, 2);
    assert!(trainer.evaluate(&wrong_rows).is_err());
    assert!(reference_with_bounds(&leaky, &wrong_rows).is_err());
    assert!(reference_with_bounds(&good, &mlp_batch(&mut rng, 5, 2)).is_ok());
}
