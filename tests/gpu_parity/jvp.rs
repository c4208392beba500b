//! The denoiser value-and-JVP kernels.

use super::*;

/// The denoiser JVP kernels (affine, soft threshold, cubic power map, tanh MLP, GMM Bayes
/// denoiser) match their f64 reference `f(y)` and `∇f(y)z` within the derived f32 bounds of
/// `JvpDenoiser::reference`, on random inputs and Rademacher probes, for batch sizes that are
/// not multiples of the workgroup, d from 1 to 40, points near the threshold included.
#[test]
fn denoiser_jvp_kernels_match_f64_reference() {
    use diffusion_theorems::denoisers::divergence::rademacher_probes;
    use diffusion_theorems::denoisers::Mlp;
    use diffusion_theorems::gpu::denoiser_jvp::{
        denoiser_jvp, denoiser_jvp_reference, JvpDenoiser,
    };
    use diffusion_theorems::theorems::sure;
    let gpu = gpu();
    let mut rng = Rng::new(0x7a1f, 0);
    for (d, n, sigma) in [
        (1usize, 1usize, 1.0),
        (3, 70, 0.3),
        (8, 129, 1.0),
        (40, 65, 2.0),
    ] {
        let target = random_gmm(&mut rng, d, 4).unwrap();
        let (bayes, soft, mlp, power) = sure::default_denoisers(&target, sigma, &mut rng).unwrap();
        let affine = sure::random_affine(&mut rng, d).unwrap();
        let wide = Mlp::random(&mut rng, d, 200).unwrap();
        let mut points = Mat::from_fn(n, d, |_, _| 3.0 * rng.normal());
        points[(0, 0)] = soft.threshold() * 1.000_000_01; // on the threshold's f32 rounding edge
        let probes = rademacher_probes(PhiloxStream::new(0x7a1f, d as u32), n, d);
        let dens = [
            JvpDenoiser::from(&affine),
            JvpDenoiser::from(&soft),
            JvpDenoiser::from(&power),
            JvpDenoiser::from(&mlp),
            JvpDenoiser::from(&wide),
            JvpDenoiser::from(&bayes),
        ];
        for den in dens {
            let out = denoiser_jvp(gpu, &den, &points, &probes, sigma).unwrap();
            let mut worst: f64 = 0.0;
            let reference = denoiser_jvp_reference(&den, &points, &probes, sigma).unwrap();
            for e in 0..n * d {
                let (g, r, b) = (out.values[e], reference.values[e], reference.value_bound[e]);
                assert!(
                    (g - r).abs() <= b,
                    "d={d} {den:?} f[{e}]: {g} vs {r} (bound {b})"
                );
                let (g, r, b) = (out.jvp[e], reference.jvp[e], reference.jvp_bound[e]);
                assert!(
                    (g - r).abs() <= b,
                    "d={d} {den:?} Jz[{e}]: {g} vs {r} (bound {b})"
                );
                if b > 0.0 {
                    worst = worst.max((g - r).abs() / b);
                }
            }
            println!(
                "d={d} {}: worst |gpu − f64|/bound = {worst:.3}",
                format!("{den:?}").split('(').next().unwrap_or("")
            );
        }
    }
}
