//! Wrapper of `gpu/power_features.wgsl`: `Φ̃ = [1 | (c_j Z_ij)^k]` for a resident Z = Y Rᵀ.
//!
//! f32 error: the scaled entry `v = c_j Z_ij` carries the relative error of c_j (u) and the
//! multiplication (u) on top of Z's own error ΔZ; k − 1 further multiplications give
//! `|Δ(v^k)| ≤ k·|v|^{k−1}·(c_j|ΔZ_ij| + 2u|v|) + (k − 1)u·|v|^k` to first order (|v| ≤ 1).

use super::gemm::GpuMat;
use super::uniforms::PowerParams;
use super::{grid_for, shaders, Gpu, WORKGROUP_SIZE};
use crate::error::{Error, Result};

/// `Φ̃` (N × (w + 1)) from Z (N × w), the per-column scales c (w) and the power k ≥ 1.
pub fn power_features(gpu: &Gpu, z: &GpuMat, scales: &[f64], power: usize) -> Result<GpuMat> {
    let (rows, width) = z.shape();
    if scales.len() != width {
        return Err(Error::DimensionMismatch {
            what: "feature scales".into(),
            expected: width,
            got: scales.len(),
        });
    }
    if power == 0 {
        return Err(Error::InvalidArgument {
            what: "feature power k".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    crate::error::ensure_finite("feature scales", scales)?;
    let out = GpuMat::poisoned(gpu, "power features", rows, width + 1)?;
    let n = (rows * (width + 1)) as u32;
    let groups = grid_for(
        n.div_ceil(WORKGROUP_SIZE),
        gpu.limits().max_compute_workgroups_per_dimension,
    );
    let params = PowerParams {
        rows: rows as u32,
        width: width as u32,
        power: power as u32,
        grid_x: groups[0],
    };
    let params = gpu.uniform("power params", &params);
    let scales: Vec<f32> = scales.iter().map(|&v| v as f32).collect();
    let scales = gpu.input("power scales", &scales)?;
    gpu.dispatch(
        &shaders::POWER_FEATURES,
        &[&params, z.buffer(), &scales, out.buffer()],
        groups,
    )?;
    Ok(out)
}
