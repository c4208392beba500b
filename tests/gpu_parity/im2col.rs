//! `gpu::conv::im2col` (the convolution as im2col + the GEMM family, col2im as a gather) against
//! the f64 references of `gpu::conv::reference` within their derived per-entry bounds
//! `γ_{n+2}(f32)·Σ|terms|` (module doc of `gpu::conv::im2col`: the GEMMs sum exactly the
//! reference's n terms for the forward map and the weight gradient, split-K and the chained
//! chunks included; the input gradient meets only `C_out + s² + 1` roundings, checked against
//! that tighter bound too), and against the direct kernel of `gpu/conv.wgsl`. Outputs and
//! workspaces start poisoned (NaN).
//!
//! Bugs planted by hand (each reverted; the test that caught it): the zero-padding test dropping
//! the last row and column (`im2col_conv_matches_f64_reference_and_the_direct_kernel`,
//! `im2col_batch_cut_into_chunks_matches_f64_reference`); col2im's circular wrap reversed (all three GEMM-backed tests); the chunks'
//! weight gradients overwriting instead of adding, the forward layout without the chunk offset
//! (`im2col_batch_cut_into_chunks_…` and
//! `im2col_plan_is_reusable_and_writes_only_what_is_asked`). `>= n` for `> n` in the padding test changed nothing (the
//! caller's range check drops that index): an equivalent mutant.

use super::common::gpu;
use diffusion_theorems::gpu::conv::im2col::{conv2d_im2col, conv2d_im2col_grads, Im2colConv};
use diffusion_theorems::gpu::conv::reference::{
    conv2d_input_grad_reference, conv2d_reference, conv2d_weight_grad_reference,
};
use diffusion_theorems::gpu::conv::{
    conv2d, conv2d_input_grad, conv2d_weight_grad, ConvShape, Padding,
};
use diffusion_theorems::gpu::gemm::GpuMat;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::numerics::gamma_f32;
use diffusion_theorems::rng::Rng;

fn shape(dims: [usize; 6], padding: Padding) -> ConvShape {
    let [batch, in_channels, out_channels, height, width, kernel] = dims;
    ConvShape {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel,
        padding,
    }
}

fn normals(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

/// `γ_n` in f64 (`u = 2⁻⁵³`), the reference's own rounding.
fn gamma_f64(n: usize) -> f64 {
    let nu = n as f64 * f64::EPSILON / 2.0;
    nu / (1.0 - nu)
}

/// The reference's bounds `(γ_{n+2}(f32) + γ_n(f64))·Σ|t|` rescaled to
/// `(γ_m(f32) + γ_n(f64))·Σ|t|`: the bound of a computation whose terms meet at most m roundings.
fn rescaled(bound: &[f64], n: usize, m: usize) -> Vec<f64> {
    let factor = (gamma_f32(m) + gamma_f64(n)) / (gamma_f32(n + 2) + gamma_f64(n));
    bound.iter().map(|b| b * factor).collect()
}

/// Asserts `|a − b| ≤ 2·bound` entry by entry: two results each within `bound` of one f64 value.
fn assert_agree(what: &str, a: &[f64], b: &[f64], bound: &[f64]) {
    for (l, ((x, y), e)) in a.iter().zip(b).zip(bound).enumerate() {
        assert!(
            (x - y).abs() <= 2.0 * e,
            "{what}: entry {l}: im2col {x} vs direct {y} (bound {})",
            2.0 * e
        );
    }
}

/// Forward, input gradient and weight gradient through im2col + GEMM on odd, non-square shapes
/// (batch × in × out × height × width × kernel): 3×3 kernels on 7×9 images, a 5×5 kernel on 5×4,
/// a 1×1 kernel, a 5×5 kernel on a 3×3 image (circular padding wraps more than once, zero padding
/// drops most taps), and 64 output channels (the GEMM's 64×64 blocks) — each with both paddings,
/// standard normal inputs: within the references' derived bounds, the input gradient within the
/// tighter `γ_{C_out+s²+1}`, and within twice the bound of the direct kernel's results.
#[test]
fn im2col_conv_matches_f64_reference_and_the_direct_kernel() {
    let mut rng = Rng::new(0x1c01, 0);
    let mut worst = 0.0f64;
    for dims in [
        [2, 3, 5, 7, 9, 3],
        [1, 2, 1, 5, 4, 5],
        [3, 4, 2, 6, 5, 1],
        [2, 1, 2, 3, 3, 5],
        [2, 9, 64, 11, 10, 3],
    ] {
        for padding in [Padding::Zero, Padding::Circular] {
            let s = shape(dims, padding);
            let x = normals(&mut rng, s.input_len());
            let k = normals(&mut rng, s.weight_len());
            let g = normals(&mut rng, s.output_len());
            let what = format!("{dims:?} {padding:?}");
            let forward = conv2d_reference(&s, &x, &k).unwrap();
            let input_grad = conv2d_input_grad_reference(&s, &g, &k).unwrap();
            let weight_grad = conv2d_weight_grad_reference(&s, &x, &g).unwrap();
            let y = conv2d_im2col(gpu(), &s, &x, &k, usize::MAX).unwrap();
            let (dx, dk) = conv2d_im2col_grads(gpu(), &s, &x, &k, &g, usize::MAX).unwrap();
            worst = worst.max(super::assert_within_slice(
                &format!("forward {what}"),
                &y,
                &forward,
            ));
            worst = worst.max(super::assert_within_slice(
                &format!("input gradient {what}"),
                &dx,
                &input_grad,
            ));
            worst = worst.max(super::assert_within_slice(
                &format!("weight gradient {what}"),
                &dk,
                &weight_grad,
            ));
            let plan = Im2colConv::new(gpu(), &s).unwrap();
            let n = s.out_channels * s.kernel * s.kernel;
            let tight = rescaled(&input_grad.1, n, plan.input_grad_roundings());
            super::assert_within_slice(
                &format!("input gradient, bound γ_(C_out+s²+1), {what}"),
                &dx,
                &(input_grad.0.clone(), tight),
            );
            assert_agree(
                &format!("forward {what}"),
                &y,
                &conv2d(gpu(), &s, &x, &k).unwrap(),
                &forward.1,
            );
            assert_agree(
                &format!("input gradient {what}"),
                &dx,
                &conv2d_input_grad(gpu(), &s, &g, &k).unwrap(),
                &input_grad.1,
            );
            assert_agree(
                &format!("weight gradient {what}"),
                &dk,
                &conv2d_weight_grad(gpu(), &s, &x, &g).unwrap(),
                &weight_grad.1,
            );
        }
    }
    println!("largest |im2col − f64|/bound: {worst:.3e}");
}

/// A batch cut into chunks (5 images in chunks of 2, and of 1: three and five chunks, the last
/// one shorter) — the route a batch larger than a storage binding takes — matches the f64
/// references; the weight gradient's chunks are chained on the GPU (β = 1), within the same
/// `γ_{B·H·W+2}` bound.
#[test]
fn im2col_batch_cut_into_chunks_matches_f64_reference() {
    let mut rng = Rng::new(0x1c02, 0);
    for padding in [Padding::Zero, Padding::Circular] {
        let s = shape([5, 2, 3, 6, 7, 3], padding);
        let x = normals(&mut rng, s.input_len());
        let k = normals(&mut rng, s.weight_len());
        let g = normals(&mut rng, s.output_len());
        for most in [2, 1] {
            let what = format!("{padding:?}, chunks of {most}");
            assert_eq!(
                Im2colConv::with_chunk(gpu(), &s, most)
                    .unwrap()
                    .chunks()
                    .len(),
                5usize.div_ceil(most)
            );
            super::assert_within_slice(
                &format!("forward {what}"),
                &conv2d_im2col(gpu(), &s, &x, &k, most).unwrap(),
                &conv2d_reference(&s, &x, &k).unwrap(),
            );
            let (dx, dk) = conv2d_im2col_grads(gpu(), &s, &x, &k, &g, most).unwrap();
            super::assert_within_slice(
                &format!("input gradient {what}"),
                &dx,
                &conv2d_input_grad_reference(&s, &g, &k).unwrap(),
            );
            super::assert_within_slice(
                &format!("weight gradient {what}"),
                &dk,
                &conv2d_weight_grad_reference(&s, &x, &g).unwrap(),
            );
        }
    }
}

/// One plan reused: a forward, then a backward asking only for dX, then only for dW, on resident
/// matrices (the workspaces rewritten each time), each within its reference's bound; an output
/// the pass does not compute stays poisoned (NaN).
#[test]
fn im2col_plan_is_reusable_and_writes_only_what_is_asked() {
    let mut rng = Rng::new(0x1c03, 0);
    let s = shape([3, 2, 4, 5, 6, 3], Padding::Circular);
    let x = normals(&mut rng, s.input_len());
    let k = normals(&mut rng, s.weight_len());
    let g = normals(&mut rng, s.output_len());
    let gpu = gpu();
    let plane = s.height * s.width;
    let mat = |v: &[f64], rows: usize, cols: usize| {
        GpuMat::upload(
            gpu,
            "operand",
            &Mat::from_fn(rows, cols, |i, j| v[i * cols + j]),
        )
        .unwrap()
    };
    let flat = |m: &GpuMat| -> Vec<f64> {
        let d = m.download(gpu).unwrap();
        (0..d.nrows())
            .flat_map(|i| (0..d.ncols()).map(move |j| (i, j)))
            .map(|ij| d[ij])
            .collect()
    };
    let xm = mat(&x, s.batch, s.in_channels * plane);
    let wm = mat(&k, s.out_channels, s.in_channels * 9);
    let gm = mat(&g, s.batch, s.out_channels * plane);
    let plan = Im2colConv::with_chunk(gpu, &s, 2).unwrap();
    let y = GpuMat::poisoned(gpu, "Y", s.batch, s.out_channels * plane).unwrap();
    let dx = GpuMat::poisoned(gpu, "dX", s.batch, s.in_channels * plane).unwrap();
    let dw = GpuMat::poisoned(gpu, "dW", s.out_channels, s.in_channels * 9).unwrap();
    plan.forward(gpu, &xm, &wm, &y).unwrap();
    plan.backward(gpu, &xm, &wm, &gm, Some(&dx), None).unwrap();
    assert!(flat(&dw).iter().all(|v| v.is_nan()), "dW written unasked");
    super::assert_within_slice(
        "input gradient alone",
        &flat(&dx),
        &conv2d_input_grad_reference(&s, &g, &k).unwrap(),
    );
    plan.backward(gpu, &xm, &wm, &gm, None, Some(&dw)).unwrap();
    super::assert_within_slice("forward", &flat(&y), &conv2d_reference(&s, &x, &k).unwrap());
    super::assert_within_slice(
        "weight gradient alone",
        &flat(&dw),
        &conv2d_weight_grad_reference(&s, &x, &g).unwrap(),
    );
}

/// Bad shapes are typed errors naming the value: an even kernel, a zero dimension, an operand
/// of the wrong length, a NaN, zero images per chunk, one image whose column matrix exceeds the
/// adapter's storage binding, resident matrices of the wrong shape, an output sharing its
/// input's buffer.
#[test]
fn im2col_bad_inputs_are_typed_errors() {
    let gpu = gpu();
    let s = shape([1, 1, 2, 3, 3, 3], Padding::Zero);
    let (x, k) = (vec![1.0; 9], vec![1.0; 18]);
    let even = shape([1, 1, 2, 3, 3, 2], Padding::Zero);
    let e = conv2d_im2col(gpu, &even, &x, &[1.0; 8], usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(e.contains("odd") && e.contains('2'), "{e}");
    let empty = shape([1, 1, 0, 3, 3, 3], Padding::Zero);
    let e = Im2colConv::new(gpu, &empty).unwrap_err().to_string();
    assert!(e.contains("out_channels"), "{e}");
    let e = conv2d_im2col(gpu, &s, &x[..8], &k, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(e.contains("input") && e.contains('8'), "{e}");
    let mut nan = vec![1.0; 18];
    nan[5] = f64::NAN;
    let e = conv2d_im2col_grads(gpu, &s, &x, &k, &nan, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gradient") && e.contains('5'), "{e}");
    let e = Im2colConv::with_chunk(gpu, &s, 0).unwrap_err().to_string();
    assert!(e.contains("chunk") && e.contains('0'), "{e}");
    // one 64×64 image whose column matrix (4096 rows × 9·C_in) exceeds a storage binding
    let words = (gpu.max_binding_bytes() / 4) as usize;
    let wide = shape([1, words / (4096 * 9) + 1, 1, 64, 64, 3], Padding::Zero);
    match Im2colConv::new(gpu, &wide) {
        Err(diffusion_theorems::error::Error::GpuLimit(e)) => {
            assert!(
                e.contains("column matrix") && e.contains(&words.to_string()),
                "{e}"
            )
        }
        other => panic!("expected a GpuLimit error, got {other:?}"),
    }
    let plan = Im2colConv::new(gpu, &s).unwrap();
    let xm = GpuMat::poisoned(gpu, "X", 1, 9).unwrap();
    let wrong = GpuMat::poisoned(gpu, "W", 2, 8).unwrap();
    let y = GpuMat::poisoned(gpu, "Y", 1, 18).unwrap();
    let e = plan.forward(gpu, &xm, &wrong, &y).unwrap_err().to_string();
    assert!(
        e.contains("weights") && e.contains("2×9") && e.contains("2×8"),
        "{e}"
    );
    let same = shape([1, 1, 1, 3, 3, 3], Padding::Circular);
    let plan = Im2colConv::new(gpu, &same).unwrap();
    let w = GpuMat::poisoned(gpu, "W", 1, 9).unwrap();
    let e = plan.forward(gpu, &xm, &w, &xm).unwrap_err().to_string();
    assert!(e.contains("output Y") && e.contains("shares"), "{e}");
    let e = plan
        .backward(gpu, &xm, &w, &xm, Some(&xm), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dX") && e.contains("shares"), "{e}");
}
