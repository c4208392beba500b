//! `jacobian_geometry`: the optimal denoiser's Jacobian is σ⁻²Cov[x|y] (Kadkhodaie et al. §3,
//! eq. 8–9; Sugolov Prop. 3) — its spectrum by two routes, the disk manifold's tangent space and
//! dimension, the rescaled image's MSE, and homogeneity of bias-free denoisers. See
//! theorems/jacobian_geometry.md.

use crate::common;

use diffusion_theorems::theorems::jacobian_geometry as jg;
use diffusion_theorems::theorems::Depth;

/// Prints the cases (calibration aid).
#[test]
fn figures_print() {
    let t = std::time::Instant::now();
    let g = jg::gram_cases(Depth::Default).unwrap();
    println!("gram {:?}", t.elapsed());
    for c in &g {
        println!("{:?}", c);
    }
    let t = std::time::Instant::now();
    let m = jg::manifold_cases(Depth::Default).unwrap();
    println!("manifold {:?}", t.elapsed());
    for c in &m {
        println!("{:?}", c);
    }
    let held = jg::manifold_cases_of(&[1, 2, 3, 4, 5], &[0.005, 0.01, 0.02, 0.04, 0.08]).unwrap();
    for c in &held {
        println!(
            "held {:.3} sine/σ {:.3} planted {:.3} (tr−5)/σ {:.3} gap {:?}",
            c.sigma,
            c.sine / c.sigma,
            c.planted_sine,
            (c.trace - 5.0) / c.sigma,
            c.gap
        );
    }
    let t = std::time::Instant::now();
    let r = jg::rescaled_cases(Depth::Default).unwrap();
    println!("rescaled {:?}", t.elapsed());
    for c in &r {
        println!("{:?}", c);
    }
    let t = std::time::Instant::now();
    let b = jg::bias_free_cases(Depth::Default).unwrap();
    println!("bias {:?}", t.elapsed());
    for c in &b {
        println!("{:?}", c);
    }
    let _ = common::gpu;
}
