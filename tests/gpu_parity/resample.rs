//! `gpu/resample.wgsl` (average pooling, nearest upsampling and their gradients by an integer
//! factor) against the f64 reference of `gpu::resample`, within its derived per-entry bounds,
//! outputs poisoned first; and the gradients as adjoints of the maps.

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
