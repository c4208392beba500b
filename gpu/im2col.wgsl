// The data-movement kernels of a convolution computed through the GEMM family (gpu::conv::im2col):
// stride 1, "same" output size, zero or circular padding, odd kernel side s, r = s/2, NCHW
// tensors as in gpu/conv.wgsl. A chunk of `images` images starting at image `first_image` of the
// batch is laid out as matrices with one row per output pixel n = (b, i, j), b < images:
//   Colᵀ[n, (c,p,q)] = X[first_image + b, c, π(i+p−r), π(j+q−r)]   (0 when zero padding drops it),
//   Yᵀ[n, o]         = Y[first_image + b, o, i, j],
// so that the forward map is Yᵀ = Colᵀ·Wᵀ (W the weights as a Cout × Cin·s² matrix) and the
// gradients are dW = dYᵀᵀ·Colᵀ, dColᵀ = dYᵀ·W — all three products run by the GEMM family. The
// input gradient is then the adjoint of im2col, a gather (no atomics): every input pixel sums
// the s² entries of dColᵀ that read it,
//   dX[first_image + b, c, i', j'] = Σ_{p,q} dColᵀ[(b, π(i'−p+r), π(j'−q+r)), (c,p,q)],
// π(i'−p+r) being the one output row whose tap p reads row i' (a term zero padding has no such
// row for is dropped), likewise for columns. Every kernel is one invocation per written entry over a 2-D grid of 64-wide
// workgroups; no kernel here rounds (copies and zeros), except col2im's s² − 1 f32 additions.
//
// Padding is computed on unsigned, non-negative values only: `%` of a negative integer is
// undefined in GLSL, which the GL backend translates to.

struct Im2colParams {
    // images in this chunk
    images: u32,
    // index of the chunk's first image in the batch (X, Y, dY, dX hold the whole batch)
    first_image: u32,
    in_channels: u32,
    out_channels: u32,
    height: u32,
    width: u32,
    // the odd kernel side s
    kernel: u32,
    // 1 for circular padding, 0 for zero padding
    circular: u32,
}

@group(0) @binding(0) var<uniform> params: Im2colParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// (⌊r/n⌋ + 1)·n: a multiple of n larger than r, added before every remainder so that it acts
// on a non-negative value.
fn wrap_shift(n: u32) -> u32 {
    return (params.kernel / 2u / n + 1u) * n;
}

// The input index read by output index i at kernel offset p along a side of length n:
// π(i + p − r); n (out of range) when zero padding drops it.
fn tap(i: u32, p: u32, n: u32) -> u32 {
    let r = params.kernel / 2u;
    if (params.circular == 1u) {
        return (i + p + wrap_shift(n) - r) % n;
    }
    let v = i + p;
    if (v < r) {
        return n;
    }
    if (v - r >= n) {
        return n;
    }
    return v - r;
}

// The output index whose tap p reads input index s: π(s − p + r); n when zero padding has no
// such output (under circular padding there is exactly one, under zero padding at most one).
fn untap(s: u32, p: u32, n: u32) -> u32 {
    let r = params.kernel / 2u;
    if (params.circular == 1u) {
        return (s + wrap_shift(n) + r - p) % n;
    }
    let v = s + r;
    if (v < p) {
        return n;
    }
    if (v - p >= n) {
        return n;
    }
    return v - p;
}

// src = X (the whole batch), dst = Colᵀ (images·H·W × Cin·s², row-major).
@compute @workgroup_size(64)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(gid, groups);
    let s = params.kernel;
    let taps = s * s;
    let cols = params.in_channels * taps;
    let plane = params.height * params.width;
    if (e >= params.images * plane * cols) {
        return;
    }
    let row = e / cols;
    let l = e % cols;
    let b = row / plane;
    let i = (row % plane) / params.width;
    let j = row % params.width;
    let c = l / taps;
    let p = (l % taps) / s;
    let q = l % s;
    let ii = tap(i, p, params.height);
    let jj = tap(j, q, params.width);
    var v = 0.0;
    if (ii < params.height && jj < params.width) {
        v = src[((params.first_image + b) * params.in_channels + c) * plane
            + ii * params.width + jj];
    }
    dst[e] = v;
}

// src = Yᵀ (images·H·W × Cout), dst = Y (the whole batch, NCHW): the forward layout.
@compute @workgroup_size(64)
fn rows_to_nchw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(gid, groups);
    let plane = params.height * params.width;
    let per_image = params.out_channels * plane;
    if (e >= params.images * per_image) {
        return;
    }
    let b = e / per_image;
    let o = (e / plane) % params.out_channels;
    let ij = e % plane;
    dst[params.first_image * per_image + e] = src[(b * plane + ij) * params.out_channels + o];
}

// src = dY (the whole batch, NCHW), dst = dYᵀ (images·H·W × Cout): the backward layout.
@compute @workgroup_size(64)
fn nchw_to_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(gid, groups);
    let plane = params.height * params.width;
    if (e >= params.images * plane * params.out_channels) {
        return;
    }
    let row = e / params.out_channels;
    let o = e % params.out_channels;
    let b = row / plane;
    let ij = row % plane;
    dst[e] = src[((params.first_image + b) * params.out_channels + o) * plane + ij];
}

// src = dColᵀ (images·H·W × Cin·s²), dst = dX (the whole batch, NCHW): the gather that is
// im2col's adjoint, the s² taps summed in order (p, q).
@compute @workgroup_size(64)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(gid, groups);
    let s = params.kernel;
    let taps = s * s;
    let cols = params.in_channels * taps;
    let plane = params.height * params.width;
    let per_image = params.in_channels * plane;
    if (e >= params.images * per_image) {
        return;
    }
    let b = e / per_image;
    let c = (e / plane) % params.in_channels;
    let si = (e % plane) / params.width;
    let sj = e % params.width;
    var acc = 0.0;
    for (var p = 0u; p < s; p = p + 1u) {
        let i = untap(si, p, params.height);
        if (i >= params.height) {
            continue;
        }
        for (var q = 0u; q < s; q = q + 1u) {
            let j = untap(sj, q, params.width);
            if (j >= params.width) {
                continue;
            }
            acc = acc + src[(b * plane + i * params.width + j) * cols + c * taps + p * s + q];
        }
    }
    dst[params.first_image * per_image + e] = acc;
}
