//! Wrapper of `gpu/philox_fill.wgsl`: blocks of a Philox stream drawn on the GPU, to check that
//! the GPU stream is the CPU stream of [`crate::rng`].

use super::uniforms::FillParams;
use super::{grid_for, shaders, Gpu, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::rng::PhiloxStream;

/// Bound on `|z_gpu − z_cpu|` for one Box–Muller normal, from the accuracy WGSL guarantees for
/// f32 (spec §"Floating Point Accuracy"): `log` within 3 ULP (absolute 2⁻²¹ on [0.5, 2]),
/// `sqrt` within 1 ULP, `cos`/`sin` within `2⁻¹¹` absolute over [−π, π]:
/// * `v = −2 ln u`: `|Δv| ≤ 2·(2⁻²¹ + 3·2⁻²³·|ln 2⁻²⁴|) ≤ 1.3·10⁻⁵`;
/// * `r = √v ≤ 5.77`: `|Δr| ≤ √|Δv| ≤ 3.7·10⁻³` in the worst case v → 0 (else `|Δv|/2r`);
/// * `z = −r cos a`: `|Δz| ≤ |Δr| + r·(2⁻¹¹ + 2π·2⁻²⁴)` ≤ `3.7·10⁻³ + 2.9·10⁻³`.
///
/// Real adapters do far better (the parity test prints the observed error); this is the bound
/// any conforming adapter meets.
pub const NORMAL_ABS_ERROR_F32: f64 = 6.6e-3;

/// Blocks drawn on the GPU: the four words of each block and its four normals.
pub type PhiloxBlocks = (Vec<[u32; 4]>, Vec<[f32; 4]>);

/// The words and normals of blocks `[first_block, first_block + n_blocks)` of `stream`,
/// computed on the GPU.
pub fn philox_fill(
    gpu: &Gpu,
    stream: PhiloxStream,
    first_block: u64,
    n_blocks: u32,
) -> Result<PhiloxBlocks> {
    if n_blocks == 0 {
        return Err(Error::InvalidArgument {
            what: "n_blocks".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    let groups = grid_for(
        n_blocks.div_ceil(WORKGROUP_SIZE),
        gpu.limits().max_compute_workgroups_per_dimension,
    );
    let key = stream.key();
    let params = FillParams {
        seed_lo: key[0],
        seed_hi: key[1],
        stream: stream.stream,
        n_blocks,
        first_block_lo: first_block as u32,
        first_block_hi: (first_block >> 32) as u32,
        groups_x: groups[0],
        pad: 0,
    };
    let params = gpu.uniform("philox params", &params);
    let words = gpu.output("philox words", 4 * n_blocks as usize)?;
    let normals = gpu.output("philox normals", 4 * n_blocks as usize)?;
    gpu.dispatch(&shaders::PHILOX_FILL, &[&params, &words, &normals], groups)?;
    let w: Vec<u32> = gpu.read(&words, 4 * n_blocks as usize)?;
    let z: Vec<f32> = gpu.read(&normals, 4 * n_blocks as usize)?;
    Ok((
        w.chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        z.chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
    ))
}
