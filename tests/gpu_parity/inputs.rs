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
