//! `gpu/embedding.wgsl` (the σ embedding: a feature map plus a linear map of the sinusoidal
//! features of log σ, broadcast over the image, and its parameter gradients) against the f64
//! reference of `gpu::embedding`, whose bounds follow the kernels' operations, outputs poisoned
//! first; the gradients against central differences of the f64 map; typed errors.
//!
//! Bugs planted by hand (each reverted; the test that caught it): `embed_add` reading another
//! image's features, `embed_grad` skipping pixel 0 (`embedding_matches_f64_reference`); log₁₀ σ
//! for ln σ (`sigma_features_are_the_stated_sinusoids`); the reference's ∂W column 0 off by 10⁻³
//! (the central-difference test and the parity test).

use super::common::gpu;
use diffusion_theorems::gpu::embedding::{
    embed_add, embed_add_reference, embed_grad, embed_grad_reference, frequency, sigma_features,
    EmbeddingShape,
};
use diffusion_theorems::rng::Rng;

fn shape(batch: usize, channels: usize, height: usize, width: usize, f: usize) -> EmbeddingShape {
    EmbeddingShape {
        batch,
        channels,
        height,
        width,
        frequencies: f,
    }
}

/// Random operands: X, σ (log-uniform over [10⁻³, 10²]), W, β, G.
#[allow(clippy::type_complexity)]
fn operands(
    rng: &mut Rng,
    s: &EmbeddingShape,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let x = (0..s.len()).map(|_| rng.normal()).collect();
    let sigmas = (0..s.batch)
        .map(|_| 10f64.powf(-3.0 + 5.0 * rng.uniform()))
        .collect();
    let w = (0..s.weight_len()).map(|_| rng.normal()).collect();
    let b = (0..s.channels).map(|_| rng.normal()).collect();
    let g = (0..s.len()).map(|_| rng.normal()).collect();
    (x, sigmas, w, b, g)
}

/// Forward and parameter gradients on odd shapes (batch × channels × height × width, F):
/// 3×5×5×7 F = 4, 1×2×1×1 F = 1, 2×3×4×3 F = 6 — every entry within its derived bound.
#[test]
fn embedding_matches_f64_reference() {
    let mut rng = Rng::new(0xe3b0, 0);
    for s in [
        shape(3, 5, 5, 7, 4),
        shape(1, 2, 1, 1, 1),
        shape(2, 3, 4, 3, 6),
    ] {
        let (x, sigmas, w, b, g) = operands(&mut rng, &s);
        let what = format!("{s:?}");
        super::assert_within_slice(
            &format!("forward {what}"),
            &embed_add(gpu(), &s, &x, &sigmas, &w, &b).unwrap(),
            &embed_add_reference(&s, &x, &sigmas, &w, &b).unwrap(),
        );
        let got = embed_grad(gpu(), &s, &sigmas, &g).unwrap();
        let (r, e) = embed_grad_reference(&s, &sigmas, &g).unwrap();
        super::assert_within_slice(
            &format!("∇W {what}"),
            &got.weight,
            &(r.weight.clone(), e.weight.clone()),
        );
        super::assert_within_slice(&format!("∇β {what}"), &got.bias, &(r.bias, e.bias));
    }
}

/// The features are `sin(ω_j ln σ)`, `cos(ω_j ln σ)` with `ω_j = 10000^{−j/F}`: at σ = 1 they
/// are F zeros then F ones; at σ = e they are `sin ω_j`, `cos ω_j`, with `ω₀ = 1`,
/// `ω₂ = 10000^{−1/2} = 0.01` for F = 4; `sin² + cos² = 1` for each frequency at any σ.
#[test]
fn sigma_features_are_the_stated_sinusoids() {
    let f = 4;
    let at_one = sigma_features(1.0, f).unwrap();
    assert_eq!(at_one, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(frequency(0, f), 1.0);
    assert!((frequency(2, f) - 0.01).abs() <= 4.0 * f64::EPSILON * 0.01);
    let at_e = sigma_features(std::f64::consts::E, f).unwrap();
    for j in 0..f {
        let w = frequency(j, f);
        assert!((at_e[j] - w.sin()).abs() <= 4.0 * f64::EPSILON, "sin {j}");
        assert!(
            (at_e[f + j] - w.cos()).abs() <= 4.0 * f64::EPSILON,
            "cos {j}"
        );
    }
    let e = sigma_features(0.037, f).unwrap();
    for j in 0..f {
        assert!((e[j] * e[j] + e[f + j] * e[f + j] - 1.0).abs() <= 8.0 * f64::EPSILON);
    }
}

/// The references' gradients are those of the loss `L = Σ G ⊙ Z`: `∂L/∂W[c,k]` and `∂L/∂β_c`
/// against central differences of the f64 forward with step h = 10⁻³ (L is affine in W and β,
/// so the difference is exact up to rounding: each L, a sum of n products, errs by at most
/// `(n + 16)ε·Σ|G||Z|` with the forward's few roundings, divided by 2h; plus `10⁻⁹·|∇|` for the
/// perturbed entry's own rounding, `ε|w|/h` relative); `∂L/∂X = G` likewise at a few pixels.
#[test]
fn embedding_gradients_match_central_differences() {
    let mut rng = Rng::new(0xe3b1, 0);
    let s = shape(2, 3, 3, 4, 3);
    let (x, sigmas, w, b, g) = operands(&mut rng, &s);
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> (f64, f64) {
        let (z, _) = embed_add_reference(&s, x, &sigmas, w, b).unwrap();
        let l = z.iter().zip(&g).map(|(a, c)| a * c).sum();
        let m: f64 = z.iter().zip(&g).map(|(a, c)| (a * c).abs()).sum();
        (l, m)
    };
    let h = 1e-3;
    let (grads, _) = embed_grad_reference(&s, &sigmas, &g).unwrap();
    let check = |got: f64, plus: (f64, f64), minus: (f64, f64), what: &str| {
        let fd = (plus.0 - minus.0) / (2.0 * h);
        let n = s.len() as f64 + 16.0;
        let tol = n * f64::EPSILON * (plus.1 + minus.1) / (2.0 * h) + 1e-9 * got.abs();
        assert!((got - fd).abs() <= tol, "{what}: {got} vs {fd} (tol {tol})");
    };
    for k in 0..s.weight_len() {
        let (mut wp, mut wm) = (w.clone(), w.clone());
        wp[k] += h;
        wm[k] -= h;
        check(
            grads.weight[k],
            loss(&x, &wp, &b),
            loss(&x, &wm, &b),
            &format!("W {k}"),
        );
    }
    for c in 0..s.channels {
        let (mut bp, mut bm) = (b.clone(), b.clone());
        bp[c] += h;
        bm[c] -= h;
        check(
            grads.bias[c],
            loss(&x, &w, &bp),
            loss(&x, &w, &bm),
            &format!("β {c}"),
        );
    }
    for i in [0, 17, s.len() - 1] {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += h;
        xm[i] -= h;
        check(
            g[i],
            loss(&xp, &w, &b),
            loss(&xm, &w, &b),
            &format!("X {i}"),
        );
    }
}

/// σ ≤ 0, NaN or ∞ is a typed error naming the image and the value; so are a zero dimension,
/// wrong lengths and non-finite operands.
#[test]
fn embedding_bad_inputs_are_typed_errors() {
    let s = shape(2, 3, 2, 2, 2);
    let x = vec![0.5; s.len()];
    let w = vec![0.1; s.weight_len()];
    let b = vec![0.2; 3];
    for bad in [0.0, -1.5, f64::NAN, f64::INFINITY] {
        let e = embed_add(gpu(), &s, &x, &[1.0, bad], &w, &b)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("image 1") && e.contains(&format!("{bad}")),
            "{e}"
        );
        let e = embed_grad(gpu(), &s, &[bad, 1.0], &x)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("image 0") && e.contains(&format!("{bad}")),
            "{e}"
        );
        let e = sigma_features(bad, 2).unwrap_err().to_string();
        assert!(e.contains(&format!("{bad}")), "{e}");
    }
    let e = embed_add(gpu(), &shape(2, 3, 2, 2, 0), &x, &[1.0, 1.0], &w, &b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("frequencies"), "{e}");
    let e = embed_add(gpu(), &s, &x, &[1.0, 1.0], &w[..11], &b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("11") && e.contains("12"), "{e}");
    let e = embed_add(gpu(), &s, &x, &[1.0], &w, &b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("noise levels"), "{e}");
    let mut nan = x.clone();
    nan[5] = f64::NAN;
    let e = embed_grad(gpu(), &s, &[1.0, 1.0], &nan)
        .unwrap_err()
        .to_string();
    assert!(e.contains('5') && e.contains("NaN"), "{e}");
}
