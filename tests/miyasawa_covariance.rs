//! `miyasawa_covariance`: Cov[x|y] = σ²(I + σ²∇²log p_σ(y)); ∇f* symmetric PSD = Cov/σ²;
//! MSE(f*) = σ² E tr∇f*. See theorems/miyasawa_covariance.md.

mod common;

use common::{case, config, Case};
use diffusion_theorems::rng::Rng;
use diffusion_theorems::theorems::{miyasawa_covariance as miyasawa, random_gmm};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn posterior_covariance_equals_sigma2_identity_plus_hessian(c in case(1..=16, 1..=6)) {
        let Case { target, sigma, y } = c;
        let check = miyasawa::covariance_vs_hessian(&target, &y, sigma).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn denoiser_jacobian_is_symmetric_psd_and_equals_covariance(c in case(1..=8, 1..=6)) {
        let Case { target, sigma, y } = c;
        let check = miyasawa::jacobian_symmetric_psd_equals_covariance(&target, &y, sigma).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }
}

/// MSE(f*) = σ² E tr∇f*(y) by Monte Carlo (4000 pairs per target, α = 1e-6 per check) over
/// random GMMs in d = 1, 3, 6 and σ = 0.1, 1, 3.
#[test]
fn mse_of_bayes_denoiser_equals_sigma2_expected_trace_jacobian() {
    let mut rng = Rng::new(0x3a5a, 7);
    for d in [1usize, 3, 6] {
        let target = random_gmm(&mut rng, d, 4).unwrap();
        for sigma in [0.1, 1.0, 3.0] {
            let (check, mse) =
                miyasawa::mse_equals_sigma2_trace_jacobian(&target, sigma, 4000, &mut rng).unwrap();
            assert!(check.passed(), "d={d} σ={sigma} MSE={mse}: {check:?}");
            assert!(mse > 0.0);
        }
    }
}
