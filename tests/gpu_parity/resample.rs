//! `gpu/resample.wgsl` (average pooling, nearest upsampling and their gradients by an integer
//! factor) against the f64 reference of `gpu::resample`, within its derived per-entry bounds,
//! outputs poisoned first; and the gradients as adjoints of the maps.
//!
//! Bugs planted by hand in the bilinear kernels (each reverted; the test that caught it): the
//! even output row dropping its left neighbour (`bilinear_up2_kernels_match_f64_reference`,
//! `bilinear_up2_matches_pytorch_example`; not the GPU adjoint check, the bug being in both
//! kernels alike); the adjoint's tap loop stopping one short (`…kernels_match…`,
//! `bilinear_up2_gradient_is_the_adjoint`); the reference adjoint's weight ¼ → ½
//! (`…gradient_is_the_adjoint`, `…kernels_match…`).

use super::common::gpu;
use diffusion_theorems::gpu::resample::{resample, resample_reference, Resample, ResampleShape};
use diffusion_theorems::rng::Rng;

const MAPS: [Resample; 4] = [
    Resample::AveragePool,
    Resample::AveragePoolGrad,
    Resample::UpsampleNearest,
    Resample::UpsampleNearestGrad,
];

fn shape(planes: usize, height: usize, width: usize, factor: usize) -> ResampleShape {
    ResampleShape {
        planes,
        height,
        width,
        factor,
    }
}

/// Every map on standard normal inputs: factor 2 on 3 planes of 6×10, factor 3 on 2 planes of
/// 9×6, factor 1 (the identity, scale 1) on 5×7 — within `γ_{f²+3}·scale·Σ|x|` (pooling) and
/// `γ₃·|scale·x|` (upsampling) of the f64 reference, every entry written.
#[test]
fn resample_kernels_match_f64_reference() {
    let mut rng = Rng::new(0x2e5a, 0);
    for s in [shape(3, 6, 10, 2), shape(2, 9, 6, 3), shape(1, 5, 7, 1)] {
        for map in MAPS {
            let x: Vec<f64> = (0..s.planes * s.height * s.width)
                .map(|_| rng.normal())
                .collect();
            let got = resample(gpu(), &s, map, &x).unwrap();
            let (reference, bound) = resample_reference(&s, map, &x).unwrap();
            let (h, w) = s.output_side(map);
            assert_eq!(got.len(), s.planes * h * w, "{s:?} {map:?}");
            for (l, ((g, r), e)) in got.iter().zip(&reference).zip(&bound).enumerate() {
                assert!(
                    (g - r).abs() <= *e,
                    "{s:?} {map:?} entry {l}: {g} vs {r} (bound {e})"
                );
            }
        }
    }
}

/// The gradients are the adjoints: `⟨Px, y⟩ = ⟨x, Pᵀy⟩` and `⟨Ux, y⟩ = ⟨x, Uᵀy⟩` for the f64
/// references (each side the same products summed in a different order: within
/// `2γ_T·Σ|x||y|·scale`, T the entries summed), and the unscaled upsampling is not the adjoint of
/// average pooling (the control: off by f²).
#[test]
fn resample_gradients_are_adjoints() {
    let mut rng = Rng::new(0x2e5b, 0);
    let s = shape(2, 6, 8, 2);
    let small = s.planes * s.height * s.width / 4;
    let large = s.planes * s.height * s.width;
    let x: Vec<f64> = (0..large).map(|_| rng.normal()).collect();
    let y: Vec<f64> = (0..small).map(|_| rng.normal()).collect();
    let up = shape(2, 3, 4, 2);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let magnitude: f64 =
        x.iter().map(|v| v.abs()).sum::<f64>() * y.iter().map(|v| v.abs()).sum::<f64>();
    let t = (2 * large) as f64;
    let bound = 2.0 * t * f64::EPSILON * magnitude;
    let (px, _) = resample_reference(&s, Resample::AveragePool, &x).unwrap();
    let (pty, _) = resample_reference(&up, Resample::AveragePoolGrad, &y).unwrap();
    assert!((dot(&px, &y) - dot(&x, &pty)).abs() <= bound);
    let (uy, _) = resample_reference(&up, Resample::UpsampleNearest, &y).unwrap();
    let (utx, _) = resample_reference(&s, Resample::UpsampleNearestGrad, &x).unwrap();
    assert!((dot(&uy, &x) - dot(&y, &utx)).abs() <= bound);
    // control: U itself as "the gradient of P" is off by f² = 4
    assert!((dot(&px, &y) - dot(&x, &uy)).abs() > 1e6 * bound);
}

/// Bad shapes and inputs are typed errors naming the value: a side not divisible by the
/// pooling factor, a zero factor, a wrong length, a NaN.
#[test]
fn resample_bad_inputs_are_typed_errors() {
    let x = vec![1.0; 2 * 5 * 6];
    let e = resample(gpu(), &shape(2, 5, 6, 2), Resample::AveragePool, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("5×6") && e.contains("factor 2"), "{e}");
    assert!(resample(gpu(), &shape(2, 5, 6, 2), Resample::UpsampleNearest, &x).is_ok());
    let e = resample(gpu(), &shape(2, 5, 6, 0), Resample::UpsampleNearest, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("factor"), "{e}");
    let e = resample(gpu(), &shape(2, 5, 6, 1), Resample::AveragePool, &x[..59])
        .unwrap_err()
        .to_string();
    assert!(e.contains("59"), "{e}");
    let mut nan = x.clone();
    nan[3] = f64::NAN;
    assert!(resample(gpu(), &shape(2, 5, 6, 1), Resample::AveragePool, &nan).is_err());
}

/// The bilinear ×2 reference reproduces PyTorch's `F.interpolate(x, scale_factor=2,
/// mode='bilinear', align_corners=False)` on `[[1, 2], [3, 4]]` (values printed by PyTorch, exact
/// in binary), and the kernel gives the same values exactly (every weight and sum is a multiple
/// of 1/16 of small integers).
#[test]
fn bilinear_up2_matches_pytorch_example() {
    let s = shape(1, 2, 2, 2);
    let x = [1.0, 2.0, 3.0, 4.0];
    #[rustfmt::skip]
    let expected = [
        1.0, 1.25, 1.75, 2.0,
        1.5, 1.75, 2.25, 2.5,
        2.5, 2.75, 3.25, 3.5,
        3.0, 3.25, 3.75, 4.0,
    ];
    let (reference, _) = resample_reference(&s, Resample::UpsampleBilinear, &x).unwrap();
    assert_eq!(reference, expected);
    let got = resample(gpu(), &s, Resample::UpsampleBilinear, &x).unwrap();
    assert_eq!(got, expected);
}

/// Bilinear ×2 upsampling and its adjoint on standard normal inputs of odd and degenerate sides
/// (6 planes — batch 2 × 3 channels — of 5×7, 1×1, 1×4, 4×1, 3 planes of 2×3), every entry
/// within `(γ_{n+2} + γ_n(f64))·Σ|w·x|` of the f64 reference (n = 4 forward, 16 adjoint; module
/// doc of `gpu::resample`), outputs poisoned first so an unwritten entry fails.
#[test]
fn bilinear_up2_kernels_match_f64_reference() {
    let mut rng = Rng::new(0x2e5c, 0);
    for (planes, h, w) in [(6, 5, 7), (1, 1, 1), (2, 1, 4), (2, 4, 1), (3, 2, 3)] {
        for (map, s) in [
            (Resample::UpsampleBilinear, shape(planes, h, w, 2)),
            (
                Resample::UpsampleBilinearGrad,
                shape(planes, 2 * h, 2 * w, 2),
            ),
        ] {
            let x: Vec<f64> = (0..s.planes * s.height * s.width)
                .map(|_| rng.normal())
                .collect();
            let got = resample(gpu(), &s, map, &x).unwrap();
            let reference = resample_reference(&s, map, &x).unwrap();
            let (oh, ow) = s.output_side(map);
            assert_eq!(got.len(), s.planes * oh * ow, "{s:?} {map:?}");
            super::assert_within_slice(&format!("{s:?} {map:?}"), &got, &reference);
        }
    }
}

/// `⟨Bx, y⟩ = ⟨x, Bᵀy⟩` in f64 for the references (the adjoint's taps are written out from the
/// factor-2 form, not transposed from the forward's, so this checks one against the other):
/// within `2γ_T(f64)·Σ|x||y|` with T the entries summed on either side (each side's products and
/// sums in a different order; every weight ≤ 1). The same identity for the GPU's f32 results,
/// within the sum of both sides' f32 bounds `Σ_l e_l|y_l|` plus the f64 dot's rounding; and the
/// control: nearest upsampling's adjoint in place of Bᵀ is rejected.
#[test]
fn bilinear_up2_gradient_is_the_adjoint() {
    let mut rng = Rng::new(0x2e5d, 0);
    let (planes, h, w) = (4, 5, 7);
    let small = shape(planes, h, w, 2);
    let large = shape(planes, 2 * h, 2 * w, 2);
    let x: Vec<f64> = (0..planes * h * w).map(|_| rng.normal()).collect();
    let y: Vec<f64> = (0..4 * planes * h * w).map(|_| rng.normal()).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let abs_sum = |a: &[f64]| a.iter().map(|v| v.abs()).sum::<f64>();
    let t = x.len() + y.len();
    let bound = 2.0 * (t as f64) * f64::EPSILON * abs_sum(&x) * abs_sum(&y);
    let (bx, _) = resample_reference(&small, Resample::UpsampleBilinear, &x).unwrap();
    let (bty, _) = resample_reference(&large, Resample::UpsampleBilinearGrad, &y).unwrap();
    let gap = (dot(&bx, &y) - dot(&x, &bty)).abs();
    assert!(gap <= bound, "f64: {gap} > {bound}");
    // control: nearest upsampling's adjoint (block sums) is not Bᵀ
    let (nty, _) = resample_reference(&large, Resample::UpsampleNearestGrad, &y).unwrap();
    let off = (dot(&bx, &y) - dot(&x, &nty)).abs();
    assert!(off > 1e6 * bound, "control: {off} vs {bound}");

    // the GPU's maps: |⟨B̂x, y⟩ − ⟨x, B̂ᵀy⟩| ≤ Σ e(Bx)|y| + Σ|x| e(Bᵀy) + the f64 dots' rounding
    let gx = resample(gpu(), &small, Resample::UpsampleBilinear, &x).unwrap();
    let gty = resample(gpu(), &large, Resample::UpsampleBilinearGrad, &y).unwrap();
    let (_, ex) = resample_reference(&small, Resample::UpsampleBilinear, &x).unwrap();
    let (_, ety) = resample_reference(&large, Resample::UpsampleBilinearGrad, &y).unwrap();
    let f32_bound = dot(&ex, &y.iter().map(|v| v.abs()).collect::<Vec<_>>())
        + dot(&ety, &x.iter().map(|v| v.abs()).collect::<Vec<_>>())
        + bound;
    let gap = (dot(&gx, &y) - dot(&x, &gty)).abs();
    assert!(gap <= f32_bound, "GPU: {gap} > {f32_bound}");
}

/// Bad shapes for the bilinear maps are typed errors naming the value: a factor other than 2,
/// an odd side given to the adjoint, a wrong length.
#[test]
fn bilinear_up2_bad_shapes_are_typed_errors() {
    let x = vec![1.0; 5 * 7];
    let e = resample(gpu(), &shape(1, 5, 7, 3), Resample::UpsampleBilinear, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("factor") && e.contains('3'), "{e}");
    let e = resample(
        gpu(),
        &shape(1, 5, 7, 2),
        Resample::UpsampleBilinearGrad,
        &x,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("5×7") && e.contains("factor 2"), "{e}");
    let e = resample(
        gpu(),
        &shape(1, 5, 7, 2),
        Resample::UpsampleBilinear,
        &x[..34],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("34"), "{e}");
    let e = resample_reference(&shape(1, 5, 7, 1), Resample::UpsampleBilinear, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("factor") && e.contains('1'), "{e}");
}
