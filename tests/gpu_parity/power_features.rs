//! The random-feature power kernel.

use super::*;

/// The power-feature kernel writes `[1 | (c_j Z_ij)^k]` within the bound of
/// `gpu::power_features` (Z rounded to f32 on upload, so `|ΔZ| ≤ u|Z|`):
/// `k|v|^{k−1}(c_j u|Z_ij| + 2u|v|) + (k − 1)u|v|^k`, doubled, on random Z with |c_j Z_ij| ≤ 1,
/// for k = 1, 3, 27 and a shape that is not a multiple of the workgroup; outputs poisoned first.
#[test]
fn power_feature_kernel_matches_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::power_features::power_features;
    use diffusion_theorems::numerics::F32_UNIT_ROUNDOFF as U;
    let gpu = gpu();
    let mut rng = Rng::new(0x90e7, 0);
    let (n, w) = (77usize, 13usize);
    let z = Mat::from_fn(n, w, |_, _| 3.0 * rng.normal());
    let scales: Vec<f64> = (0..w)
        .map(|j| 1.0 / (0..n).map(|i| z[(i, j)].abs()).fold(0.0, f64::max))
        .collect();
    let gz = GpuMat::upload(gpu, "z", &z).unwrap();
    for power in [1usize, 3, 27] {
        let out = power_features(gpu, &gz, &scales, power)
            .unwrap()
            .download(gpu)
            .unwrap();
        let k = power as i32;
        for i in 0..n {
            assert_eq!(out[(i, 0)], 1.0);
            for j in 0..w {
                let v = scales[j] * z[(i, j)];
                let exact = v.powi(k);
                let a = v.abs();
                let bound = 2.0
                    * (f64::from(k)
                        * a.powi(k - 1)
                        * (scales[j] * U * z[(i, j)].abs() + 2.0 * U * a)
                        + f64::from(k - 1) * U * a.powi(k))
                    + f64::from(f32::MIN_POSITIVE);
                let got = out[(i, j + 1)];
                assert!(
                    (got - exact).abs() <= bound,
                    "k={power} [{i},{j}]: {got} vs {exact} (bound {bound})"
                );
            }
        }
    }
    assert!(power_features(gpu, &gz, &scales[..3], 3).is_err());
    assert!(power_features(gpu, &gz, &scales, 0).is_err());
}
