//! `gpu/group_norm.wgsl` (GroupNorm and its gradients) against the f64 reference of
//! `gpu::group_norm`, whose per-entry bounds follow the kernel's operations (module doc),
//! outputs poisoned first; and the gradients against central differences of the f64 map.

use super::common::gpu;
use diffusion_theorems::gpu::group_norm::{
    group_norm, group_norm_backward, group_norm_backward_reference, group_norm_reference,
    GroupNormShape,
};
use diffusion_theorems::rng::Rng;

fn shape(
    batch: usize,
    channels: usize,
    groups: usize,
    height: usize,
    width: usize,
) -> GroupNormShape {
    GroupNormShape {
        batch,
        channels,
        groups,
        height,
        width,
        eps: 1e-5,
    }
}

/// Forward and backward on odd shapes (batch × channels × groups × height × width): 2×6×3×5×7,
/// 3×4×1×3×3 (one group: LayerNorm over the image), 1×5×5×4×3 (one channel per group:
/// InstanceNorm), inputs with an offset and scale per channel so the means are not 0.
#[test]
fn group_norm_matches_f64_reference() {
    let mut rng = Rng::new(0x6e0a, 0);
    let mut worst = 0.0f64;
    for s in [
        shape(2, 6, 3, 5, 7),
        shape(3, 4, 1, 3, 3),
        shape(1, 5, 5, 4, 3),
    ] {
        let plane = s.height * s.width;
        let x: Vec<f64> = (0..s.len())
            .map(|i| {
                0.5 * ((i / plane) % s.channels) as f64
                    + (1.0 + 0.3 * (i % 3) as f64) * rng.normal()
            })
            .collect();
        let gamma: Vec<f64> = (0..s.channels).map(|_| 1.0 + 0.5 * rng.normal()).collect();
        let beta: Vec<f64> = (0..s.channels).map(|_| rng.normal()).collect();
        let dy: Vec<f64> = (0..s.len()).map(|_| rng.normal()).collect();
        let what = format!("{s:?}");
        worst = worst.max(super::assert_within_slice(
            &format!("forward {what}"),
            &group_norm(gpu(), &s, &x, &gamma, &beta).unwrap(),
            &group_norm_reference(&s, &x, &gamma, &beta).unwrap(),
        ));
        let (dx, dgamma, dbeta) = group_norm_backward(gpu(), &s, &x, &gamma, &beta, &dy).unwrap();
        let (rdx, rdgamma, rdbeta) =
            group_norm_backward_reference(&s, &x, &gamma, &beta, &dy).unwrap();
        worst = worst.max(super::assert_within_slice(&format!("dx {what}"), &dx, &rdx));
        worst = worst.max(super::assert_within_slice(
            &format!("dγ {what}"),
            &dgamma,
            &rdgamma,
        ));
        worst = worst.max(super::assert_within_slice(
            &format!("dβ {what}"),
            &dbeta,
            &rdbeta,
        ));
    }
    println!("largest |gpu − f64|/bound over group norm: {worst:.3e}");
}

/// A second route to the backward reference: `⟨dy, GN(x + h·v) − GN(x − h·v)⟩/2h` (central
/// differences of the f64 forward map along a random direction v) against `⟨dx, v⟩`, and the
/// same for γ and β. The truncation error is `h²/6·|⟨dy, D³GN[v,v,v]⟩|`; at h = 10⁻⁴ with
/// unit-scale inputs and s ≥ 0.5 it is below 10⁻⁷, and the rounding of the differences below
/// 10⁻¹⁰ — a calibrated allowance of 10⁻⁶ relative (no closed-form bound on D³GN is used).
#[test]
fn group_norm_backward_reference_matches_central_differences() {
    let mut rng = Rng::new(0x6e0b, 0);
    let s = shape(2, 4, 2, 3, 5);
    let x: Vec<f64> = (0..s.len()).map(|_| rng.normal()).collect();
    let gamma: Vec<f64> = (0..s.channels).map(|_| 1.0 + 0.5 * rng.normal()).collect();
    let beta: Vec<f64> = (0..s.channels).map(|_| rng.normal()).collect();
    let dy: Vec<f64> = (0..s.len()).map(|_| rng.normal()).collect();
    let ((dx, _), (dgamma, _), (dbeta, _)) =
        group_norm_backward_reference(&s, &x, &gamma, &beta, &dy).unwrap();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let forward = |x: &[f64], g: &[f64], b: &[f64]| group_norm_reference(&s, x, g, b).unwrap().0;
    let h = 1e-4;
    let step = |base: &[f64], v: &[f64], sign: f64| -> Vec<f64> {
        base.iter().zip(v).map(|(a, d)| a + sign * h * d).collect()
    };
    let v: Vec<f64> = (0..s.len()).map(|_| rng.normal()).collect();
    let fd = (dot(&dy, &forward(&step(&x, &v, 1.0), &gamma, &beta))
        - dot(&dy, &forward(&step(&x, &v, -1.0), &gamma, &beta)))
        / (2.0 * h);
    let analytic = dot(&dx, &v);
    assert!(
        (fd - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
        "dx: {fd} vs {analytic}"
    );
    let w: Vec<f64> = (0..s.channels).map(|_| rng.normal()).collect();
    let fd = (dot(&dy, &forward(&x, &step(&gamma, &w, 1.0), &beta))
        - dot(&dy, &forward(&x, &step(&gamma, &w, -1.0), &beta)))
        / (2.0 * h);
    assert!(
        (fd - dot(&dgamma, &w)).abs() <= 1e-6 * (1.0 + fd.abs()),
        "dγ"
    );
    let fd = (dot(&dy, &forward(&x, &gamma, &step(&beta, &w, 1.0)))
        - dot(&dy, &forward(&x, &gamma, &step(&beta, &w, -1.0))))
        / (2.0 * h);
    assert!(
        (fd - dot(&dbeta, &w)).abs() <= 1e-6 * (1.0 + fd.abs()),
        "dβ"
    );
}

/// Bad shapes and operands are typed errors naming the value: channels not divisible by the
/// groups, eps ≤ 0, a zero dimension, γ of the wrong length, a NaN.
#[test]
fn group_norm_bad_inputs_are_typed_errors() {
    let x = vec![1.0; 2 * 6 * 4];
    let g = vec![1.0; 6];
    let e = group_norm(gpu(), &shape(2, 6, 4, 2, 2), &x, &g, &g)
        .unwrap_err()
        .to_string();
    assert!(e.contains("6 channels") && e.contains("4 groups"), "{e}");
    let mut bad_eps = shape(2, 6, 3, 2, 2);
    bad_eps.eps = 0.0;
    assert!(group_norm(gpu(), &bad_eps, &x, &g, &g)
        .unwrap_err()
        .to_string()
        .contains("eps"));
    assert!(group_norm(gpu(), &shape(0, 6, 3, 2, 2), &[], &g, &g).is_err());
    let e = group_norm(gpu(), &shape(2, 6, 3, 2, 2), &x, &g[..5], &g)
        .unwrap_err()
        .to_string();
    assert!(e.contains('γ') && e.contains('5'), "{e}");
    let mut nan = x.clone();
    nan[7] = f64::NAN;
    assert!(group_norm(gpu(), &shape(2, 6, 3, 2, 2), &nan, &g, &g).is_err());
}
