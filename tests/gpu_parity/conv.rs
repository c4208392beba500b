//! `gpu/conv.wgsl` (2-D convolution, stride 1, zero and circular padding, and its input and
//! weight gradients) against the f64 references of `gpu::conv::reference`, within their derived
//! per-entry bounds `γ_{n+2}(f32)·Σ|terms|` (module doc of `gpu::conv`), outputs poisoned first.

use super::common::gpu;
use diffusion_theorems::gpu::conv::reference::{
    conv2d_input_grad_reference, conv2d_reference, conv2d_weight_grad_reference,
};
use diffusion_theorems::gpu::conv::{
    conv2d, conv2d_in_chunks, conv2d_input_grad, conv2d_input_grad_in_chunks, conv2d_weight_grad,
    conv2d_weight_grad_in_chunks, ConvShape, Padding,
};
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

/// The three kernels on odd, non-square shapes (batch × in × out × height × width × kernel):
/// 3×3 kernels on 7×9 images, a 5×5 kernel on 5×4, a 1×1 kernel (a per-pixel channel mix), and
/// a 5×5 kernel on a 3×3 image (circular padding wraps it more than once; zero padding drops
/// most of it) — each with both paddings, on standard normal inputs.
#[test]
fn conv_kernels_match_f64_reference() {
    let mut rng = Rng::new(0xc0_4d, 0);
    let mut worst = 0.0f64;
    for dims in [
        [2, 3, 5, 7, 9, 3],
        [1, 2, 1, 5, 4, 5],
        [3, 4, 2, 6, 5, 1],
        [2, 1, 2, 3, 3, 5],
    ] {
        for padding in [Padding::Zero, Padding::Circular] {
            let s = shape(dims, padding);
            let x = normals(&mut rng, s.input_len());
            let k = normals(&mut rng, s.weight_len());
            let g = normals(&mut rng, s.output_len());
            let what = format!("{dims:?} {padding:?}");
            worst = worst.max(super::assert_within_slice(
                &format!("forward {what}"),
                &conv2d(gpu(), &s, &x, &k).unwrap(),
                &conv2d_reference(&s, &x, &k).unwrap(),
            ));
            worst = worst.max(super::assert_within_slice(
                &format!("input gradient {what}"),
                &conv2d_input_grad(gpu(), &s, &g, &k).unwrap(),
                &conv2d_input_grad_reference(&s, &g, &k).unwrap(),
            ));
            worst = worst.max(super::assert_within_slice(
                &format!("weight gradient {what}"),
                &conv2d_weight_grad(gpu(), &s, &x, &g).unwrap(),
                &conv2d_weight_grad_reference(&s, &x, &g).unwrap(),
            ));
        }
    }
    println!("largest |gpu − f64|/bound over the conv kernels: {worst:.3e}");
}

/// A batch cut into chunks (5 images in chunks of 2: the route a batch larger than one storage
/// binding takes) gives the same as the f64 reference for all three kernels; the weight
/// gradient's chunks are summed in f64.
#[test]
fn conv_batch_cut_into_chunks_matches_f64_reference() {
    let mut rng = Rng::new(0xc0_4e, 0);
    let s = shape([5, 2, 3, 6, 7, 3], Padding::Circular);
    let x = normals(&mut rng, s.input_len());
    let k = normals(&mut rng, s.weight_len());
    let g = normals(&mut rng, s.output_len());
    super::assert_within_slice(
        "forward in chunks",
        &conv2d_in_chunks(gpu(), &s, &x, &k, 2).unwrap(),
        &conv2d_reference(&s, &x, &k).unwrap(),
    );
    super::assert_within_slice(
        "input gradient in chunks",
        &conv2d_input_grad_in_chunks(gpu(), &s, &g, &k, 2).unwrap(),
        &conv2d_input_grad_reference(&s, &g, &k).unwrap(),
    );
    super::assert_within_slice(
        "weight gradient in chunks",
        &conv2d_weight_grad_in_chunks(gpu(), &s, &x, &g, 2).unwrap(),
        &conv2d_weight_grad_reference(&s, &x, &g).unwrap(),
    );
}

/// A second route to the references' index maps: the gradients are the adjoints of the forward
/// map, `⟨conv(X, K), G⟩ = ⟨X, ∂_X⟩ = ⟨K, ∂_K⟩`, each side the same set of products `K·X·G`
/// summed in a different order, so in f64 they agree within `2γ_T·Σ|K||X||G|` (T the number of
/// products plus the outer sum's length). A wrong sign of the radius in the input gradient, or a
/// padding map applied on the wrong side, breaks it. Both paddings, odd shapes.
#[test]
fn conv_gradients_are_adjoints_of_the_forward_map() {
    let mut rng = Rng::new(0xc0_4f, 0);
    for dims in [[2, 3, 2, 5, 7, 3], [1, 2, 3, 4, 3, 5]] {
        for padding in [Padding::Zero, Padding::Circular] {
            let s = shape(dims, padding);
            let x = normals(&mut rng, s.input_len());
            let k = normals(&mut rng, s.weight_len());
            let g = normals(&mut rng, s.output_len());
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
            let abs = |v: &[f64]| v.iter().map(|t| t.abs()).collect::<Vec<_>>();
            let (y, _) = conv2d_reference(&s, &x, &k).unwrap();
            let (dx, _) = conv2d_input_grad_reference(&s, &g, &k).unwrap();
            let (dk, _) = conv2d_weight_grad_reference(&s, &x, &g).unwrap();
            let (y_abs, _) = conv2d_reference(&s, &abs(&x), &abs(&k)).unwrap();
            let magnitude = dot(&y_abs, &abs(&g));
            let products = s.output_len() * s.in_channels * s.kernel * s.kernel;
            let t = (products + s.output_len() + s.input_len() + s.weight_len()) as f64;
            let u = f64::EPSILON / 2.0;
            let bound = 2.0 * (t * u / (1.0 - t * u)) * magnitude;
            let forward = dot(&y, &g);
            let what = format!("{dims:?} {padding:?}");
            assert!(
                (forward - dot(&x, &dx)).abs() <= bound,
                "input adjoint {what}: {forward} vs {} (bound {bound})",
                dot(&x, &dx)
            );
            assert!(
                (forward - dot(&k, &dk)).abs() <= bound,
                "weight adjoint {what}: {forward} vs {} (bound {bound})",
                dot(&k, &dk)
            );
            // the control: a wrongly centred input gradient (Y[i] read at i + p − r instead of
            // i − p + r is the forward map's own index, i.e. the adjoint of the flipped kernel)
            let flipped: Vec<f64> = (0..s.weight_len())
                .map(|l| {
                    let (block, pq) = (l / (s.kernel * s.kernel), l % (s.kernel * s.kernel));
                    let (p, q) = (pq / s.kernel, pq % s.kernel);
                    let mirrored = (s.kernel - 1 - p) * s.kernel + (s.kernel - 1 - q);
                    k[block * s.kernel * s.kernel + mirrored]
                })
                .collect();
            let (dx_wrong, _) = conv2d_input_grad_reference(&s, &g, &flipped).unwrap();
            assert!(
                (forward - dot(&x, &dx_wrong)).abs() > 1e3 * bound,
                "{what}: the flipped kernel's gradient passed"
            );
        }
    }
}

/// Bad shapes and operands are typed errors naming the value: an even kernel, a zero
/// dimension, an operand of the wrong length, a NaN, an entry beyond f32's range.
#[test]
fn conv_bad_inputs_are_typed_errors() {
    let s = shape([1, 1, 1, 3, 3, 3], Padding::Zero);
    let (x, k) = (vec![1.0; 9], vec![1.0; 9]);
    let even = shape([1, 1, 1, 3, 3, 2], Padding::Zero);
    let e = conv2d(gpu(), &even, &x, &[1.0; 4]).unwrap_err().to_string();
    assert!(e.contains("odd") && e.contains('2'), "{e}");
    let empty = shape([1, 0, 1, 3, 3, 3], Padding::Zero);
    let e = conv2d(gpu(), &empty, &[], &[]).unwrap_err().to_string();
    assert!(e.contains("in_channels"), "{e}");
    let e = conv2d(gpu(), &s, &x[..8], &k).unwrap_err().to_string();
    assert!(e.contains("input") && e.contains('8'), "{e}");
    let mut nan = x.clone();
    nan[4] = f64::NAN;
    let e = conv2d_input_grad(gpu(), &s, &nan, &k)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gradient"), "{e}");
    let mut huge = k.clone();
    huge[7] = 1e39;
    let e = conv2d_weight_grad(gpu(), &s, &x, &huge)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1000000000000000000000000000000000000000") || e.contains("1e39"),
        "{e}"
    );
    assert!(conv2d_reference(&even, &x, &[1.0; 4]).is_err());
}
