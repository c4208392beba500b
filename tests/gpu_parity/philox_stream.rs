//! The GPU Philox stream against the CPU stream.

use super::*;

/// The GPU Philox stream equals the CPU stream: words and f32 uniforms bit for bit, normals
/// within the WGSL-spec accuracy bound `philox::NORMAL_ABS_ERROR_F32`; including a block range
/// that crosses 2³² (the counter's carry into its high word).
#[test]
fn philox_gpu_stream_is_bit_identical_to_cpu() {
    let gpu = gpu();
    for (stream, first) in [
        (PhiloxStream::new(0, 0), 0u64),
        (PhiloxStream::new(0xDEAD_BEEF_0123_4567, 7), 1000),
        (PhiloxStream::new(42, 3), (1u64 << 32) - 100),
    ] {
        let n = 1000u32;
        let (words, normals) = philox::philox_fill(gpu, stream, first, n).unwrap();
        let mut worst = 0.0f64;
        for i in 0..n as usize {
            let b = first + i as u64;
            let cpu = stream.block(b);
            assert_eq!(words[i], cpu, "block {b} of {stream:?}");
            for l in 0..4 {
                let u32f = (2 * (words[i][l] >> 9) + 1) as f32 / 16_777_216.0;
                assert_eq!(f64::from(u32f), word_to_uniform(cpu[l]));
            }
            let z = stream.normals(b);
            for l in 0..4 {
                let err = (f64::from(normals[i][l]) - z[l]).abs();
                assert!(
                    err <= philox::NORMAL_ABS_ERROR_F32,
                    "block {b} lane {l}: {err}"
                );
                worst = worst.max(err);
            }
        }
        eprintln!("{}: max |z_gpu − z_cpu| = {worst:.3e}", gpu.backend_name());
    }
}
