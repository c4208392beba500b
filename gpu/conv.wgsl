// 2-D convolution, stride 1, "same" output size, zero or circular padding, and its two
// gradients (Levine–Weiss §2.1's U-Nets, Kadkhodaie et al.'s BF-CNN), in f32, one invocation per
// output entry over a 2-D grid of 64-wide workgroups. Tensors are dense NCHW, row-major:
//   input  X[b, c, i, j]  (batch × in_channels × height × width),
//   weight K[o, c, p, q]  (out_channels × in_channels × kernel × kernel, kernel odd, r = kernel/2),
//   output Y[b, o, i, j]  (batch × out_channels × height × width).
// Forward (cross-correlation):  Y[b,o,i,j] = Σ_{c,p,q} K[o,c,p,q] · X[b, c, π(i+p−r), π(j+q−r)],
// π the padding's index map: zero padding drops a term whose index leaves the image, circular
// padding wraps it modulo the side. The gradients of L with G = ∂L/∂Y:
//   ∂L/∂X[b,c,i,j] = Σ_{o,p,q} K[o,c,p,q] · G[b, o, π(i−p+r), π(j−q+r)]   (conv_input_grad),
//   ∂L/∂K[o,c,p,q] = Σ_{b,i,j} G[b,o,i,j] · X[b, c, π(i+p−r), π(j+q−r)]   (conv_weight_grad).
// Each entry is one dot product accumulated in order, so its f32 error is at most
// γ_{n+2}·Σ|terms| for its n terms (the inputs' roundings to f32 included): gpu::conv's doc.

struct ConvParams {
    batch: u32,
    in_channels: u32,
    out_channels: u32,
    height: u32,
    width: u32,
    kernel: u32,
    // 1 for circular padding, 0 for zero padding
    circular: u32,
    // workgroups along x of the 2-D grid (the flat index is gid.x + gid.y·grid_x·64)
    grid_x: u32,
}

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> first: array<f32>;
@group(0) @binding(2) var<storage, read> second: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

// The padded index of `k` along a side of length `n`: wrapped when circular, −1 (the term is
// dropped) when it leaves [0, n) under zero padding. Every k here is at least −r (r the kernel's
// radius), so adding (⌊r/n⌋ + 1)·n makes it positive before the remainder: `%` of a negative
// integer is undefined in GLSL, which the GL backend translates to.
fn padded(k: i32, n: u32) -> i32 {
    let side = i32(n);
    if (params.circular == 1u) {
        let shift = (i32(params.kernel / 2u) / side + 1) * side;
        return i32(u32(k + shift) % n);
    }
    if (k < 0 || k >= side) {
        return -1;
    }
    return k;
}

fn flat_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * params.grid_x * 64u;
}

// first = X, second = K, result = Y.
@compute @workgroup_size(64)
fn conv_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = flat_index(gid);
    let plane = params.height * params.width;
    if (e >= params.batch * params.out_channels * plane) {
        return;
    }
    let b = e / (params.out_channels * plane);
    let o = (e / plane) % params.out_channels;
    let i = i32((e % plane) / params.width);
    let j = i32(e % params.width);
    let r = i32(params.kernel / 2u);
    let s = params.kernel;
    var acc = 0.0;
    for (var c = 0u; c < params.in_channels; c = c + 1u) {
        let x_base = (b * params.in_channels + c) * plane;
        let k_base = (o * params.in_channels + c) * s * s;
        for (var p = 0u; p < s; p = p + 1u) {
            let ii = padded(i + i32(p) - r, params.height);
            if (ii < 0) {
                continue;
            }
            for (var q = 0u; q < s; q = q + 1u) {
                let jj = padded(j + i32(q) - r, params.width);
                if (jj < 0) {
                    continue;
                }
                acc = acc + second[k_base + p * s + q]
                    * first[x_base + u32(ii) * params.width + u32(jj)];
            }
        }
    }
    result[e] = acc;
}

// first = G (∂L/∂Y), second = K, result = ∂L/∂X.
@compute @workgroup_size(64)
fn conv_input_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = flat_index(gid);
    let plane = params.height * params.width;
    if (e >= params.batch * params.in_channels * plane) {
        return;
    }
    let b = e / (params.in_channels * plane);
    let c = (e / plane) % params.in_channels;
    let i = i32((e % plane) / params.width);
    let j = i32(e % params.width);
    let r = i32(params.kernel / 2u);
    let s = params.kernel;
    var acc = 0.0;
    for (var o = 0u; o < params.out_channels; o = o + 1u) {
        let g_base = (b * params.out_channels + o) * plane;
        let k_base = (o * params.in_channels + c) * s * s;
        for (var p = 0u; p < s; p = p + 1u) {
            let ii = padded(i - i32(p) + r, params.height);
            if (ii < 0) {
                continue;
            }
            for (var q = 0u; q < s; q = q + 1u) {
                let jj = padded(j - i32(q) + r, params.width);
                if (jj < 0) {
                    continue;
                }
                acc = acc + second[k_base + p * s + q]
                    * first[g_base + u32(ii) * params.width + u32(jj)];
            }
        }
    }
    result[e] = acc;
}

// first = X, second = G (∂L/∂Y), result = ∂L/∂K (this dispatch's batch images only).
@compute @workgroup_size(64)
fn conv_weight_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = flat_index(gid);
    let s = params.kernel;
    if (e >= params.out_channels * params.in_channels * s * s) {
        return;
    }
    let o = e / (params.in_channels * s * s);
    let c = (e / (s * s)) % params.in_channels;
    let p = i32((e % (s * s)) / s);
    let q = i32(e % s);
    let r = i32(s / 2u);
    let plane = params.height * params.width;
    var acc = 0.0;
    for (var b = 0u; b < params.batch; b = b + 1u) {
        let x_base = (b * params.in_channels + c) * plane;
        let g_base = (b * params.out_channels + o) * plane;
        for (var i = 0u; i < params.height; i = i + 1u) {
            let ii = padded(i32(i) + p - r, params.height);
            if (ii < 0) {
                continue;
            }
            for (var j = 0u; j < params.width; j = j + 1u) {
                let jj = padded(i32(j) + q - r, params.width);
                if (jj < 0) {
                    continue;
                }
                acc = acc + second[g_base + i * params.width + j]
                    * first[x_base + u32(ii) * params.width + u32(jj)];
            }
        }
    }
    result[e] = acc;
}

// The ReLU of the convolutional trainers and its derivative mask, in one kernel:
// result[e] = first[e] where second[e] > 0, else 0, for the batch · out_channels · plane entries
// of a layer's output. Forward: first = second = Z gives ReLU(Z) exactly; backward:
// first = ∂L/∂A, second = A = ReLU(Z) gives ∂L/∂Z (A > 0 exactly where Z > 0).
@compute @workgroup_size(64)
fn conv_relu_mask(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = flat_index(gid);
    if (e >= params.batch * params.out_channels * params.height * params.width) {
        return;
    }
    result[e] = select(0.0, first[e], second[e] > 0.0);
}
