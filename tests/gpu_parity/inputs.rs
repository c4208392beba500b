//! Typed errors for inputs the kernels cannot take.

use super::*;

/// Inputs the kernels cannot take are typed errors, not panics.
#[test]
fn kernels_refuse_bad_input_with_typed_errors() {
    let gpu = gpu();
    let mut rng = Rng::new(1, 1);
    let target = random_gmm(&mut rng, 2, 2).unwrap();
    let bad_cols = Mat::zeros(3, 5);
    assert!(gmm::gmm_posterior(gpu, &target, &bad_cols, 1.0).is_err());
    assert!(gmm::gmm_posterior(gpu, &target, &Mat::zeros(3, 2), -1.0).is_err());
    let mut nan = Mat::zeros(2, 2);
    nan[(1, 1)] = f64::NAN;
    let e = gmm::gmm_posterior(gpu, &target, &nan, 1.0).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
    assert!(monte_carlo::mc_posterior_mean(
        gpu,
        &target,
        &Mat::zeros(1, 2),
        1.0,
        0,
        PhiloxStream::new(0, 0)
    )
    .is_err());
    // d = 16: 5 Philox blocks per sample, so 900 million samples overrun the u32 counter
    let wide = random_gmm(&mut rng, 16, 1).unwrap();
    let e = monte_carlo::mc_posterior_mean(
        gpu,
        &wide,
        &Mat::zeros(1, 16),
        1.0,
        900_000_000,
        PhiloxStream::new(0, 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("900000000"), "{e}");
    let big = random_gmm(&mut rng, 17, 1).unwrap();
    assert!(monte_carlo::mc_posterior_mean(
        gpu,
        &big,
        &Mat::zeros(1, 17),
        1.0,
        10,
        PhiloxStream::new(0, 0)
    )
    .is_err());
}

/// The JVP kernel's denoiser is given by its parameters; parameters whose shapes disagree (an
/// MLP whose W₂ is not d×h, an affine W that is not square) or a negative threshold are typed
/// errors naming the parameter, before anything is uploaded — and the reference refuses them
/// the same way.
#[test]
fn jvp_denoiser_with_inconsistent_parameters_is_refused() {
    use diffusion_theorems::error::Error;
    use diffusion_theorems::gpu::denoiser_jvp::{denoiser_jvp, JvpDenoiser};
    let gpu = gpu();
    let (w1, b1, b2) = (Mat::zeros(4, 3), vec![0.0; 4], vec![0.0; 3]);
    let w2_wrong = Mat::zeros(3, 5);
    let points = Mat::zeros(2, 3);
    let mlp = JvpDenoiser::Mlp {
        w1: &w1,
        b1: &b1,
        w2: &w2_wrong,
        b2: &b2,
    };
    match denoiser_jvp(gpu, &mlp, &points, &points, 1.0) {
        Err(Error::DimensionMismatch { what, .. }) => assert!(what.contains("MLP W2"), "{what}"),
        other => panic!(
            "expected a DimensionMismatch, got {:?}",
            other.map(|b| b.values)
        ),
    }
    assert!(mlp.reference(&[0.0; 3], &[0.0; 3], 1.0).is_err());
    let rectangular = Mat::zeros(3, 2);
    let affine = JvpDenoiser::Affine {
        weight: &rectangular,
        bias: &b2,
    };
    assert!(denoiser_jvp(gpu, &affine, &points, &points, 1.0).is_err());
    let negative = JvpDenoiser::SoftThreshold {
        threshold: -1.0,
        dim: 3,
    };
    let e = denoiser_jvp(gpu, &negative, &points, &points, 1.0).unwrap_err();
    assert!(e.to_string().contains("-1"), "{e}");
}
