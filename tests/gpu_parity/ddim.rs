//! The DDIM sampling kernel.

use super::*;

/// The DDIM kernel (affine denoiser, all L steps in f32) matches the f64 reference within the
/// bound `ddim::ddim_affine_reference` propagates step by step (inputs rounded to f32, d-term dot
/// products, the update `kx + af`), on random Gaussians (d = 1, 3, 7), random normal noise, batch
/// sizes not multiples of 64, VE and VP schedules; a sample the DDIM CPU sampler also produces.
#[test]
fn ddim_kernel_matches_f64_reference() {
    use diffusion_theorems::denoisers::linear::OptimalAffine;
    use diffusion_theorems::diffusion::affine::{affine_ddim_steps, initial_state};
    use diffusion_theorems::diffusion::{Ddim, Sampler, Schedule};
    use diffusion_theorems::gpu::ddim;
    let gpu = gpu();
    let mut rng = Rng::new(0xdd1, 0);
    for (d, n, schedule) in [
        (1usize, 1usize, Schedule::ve_uniform(5.0, 7).unwrap()),
        (3, 130, Schedule::vp_cosine(0.99, 40).unwrap()),
        (7, 65, Schedule::ve_exponential(0.05, 0.1, 30).unwrap()),
    ] {
        let f = Mat::from_fn(d, d, |_, _| rng.normal());
        let cov = &f * f.transpose();
        let mean = rng.normals(d);
        let den = OptimalAffine::from_moments(&mean, &cov).unwrap();
        let noise = Mat::from_fn(n, d, |_, _| rng.normal());
        let x_l = initial_state(&schedule, &den, &noise).unwrap();
        let out = ddim::ddim_affine(gpu, &x_l, affine_ddim_steps(&schedule, &den)).unwrap();
        let (reference, bound) =
            ddim::ddim_affine_reference(&x_l, affine_ddim_steps(&schedule, &den)).unwrap();
        let cpu = Ddim {
            schedule: schedule.clone(),
        }
        .sample(&den, &noise)
        .unwrap();
        for p in 0..n {
            for j in 0..d {
                let err = (out[(p, j)] - reference[(p, j)]).abs();
                assert!(
                    err <= bound[(p, j)],
                    "d={d} ({p},{j}): {err} > {}",
                    bound[(p, j)]
                );
                assert!((cpu[(p, j)] - reference[(p, j)]).abs() <= 1e-3 * bound[(p, j)].max(1e-9));
            }
        }
    }
    let den = OptimalAffine::from_moments(&[0.0, 0.0], &Mat::zeros(2, 2)).unwrap();
    let s = Schedule::ve_uniform(1.0, 2).unwrap();
    assert!(initial_state(&s, &den, &Mat::zeros(3, 3)).is_err());
    let wrong_width = ddim::ddim_affine(gpu, &Mat::zeros(3, 3), affine_ddim_steps(&s, &den));
    assert!(wrong_width
        .unwrap_err()
        .to_string()
        .contains("denoiser weight"));
}
