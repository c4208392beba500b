// The σ (time) embedding of a feature map, in f32, one invocation per output entry over a 2-D
// grid of 64-wide workgroups (gpu::embedding's doc). With Ẽ the batch × (2F + 1) matrix of each
// image's sinusoidal features of log σ followed by a constant 1 (computed on the host in f64:
// WGSL's sin and cos are only specified to 2⁻¹¹ absolute), and P = [W | b] the channels × (2F + 1)
// linear map with its bias as the last column:
//   embed_add:  Z[b, c, i, j] = X[b, c, i, j] + Σ_k P[c, k]·Ẽ[b, k]
//               (first = X, second = Ẽ, result = Z, fourth = P);
//   embed_grad: ∇P[c, k] = Σ_b Ẽ[b, k]·(Σ_{i,j} G[b, c, i, j])   (G = ∂L/∂Z; ∂L/∂X = G)
//               (first = G, second = Ẽ, result = ∇P, channels × (2F + 1)).
// Sums are accumulated in order (the bounds of gpu::embedding follow them operation by operation).

struct EmbedParams {
    batch: u32,
    channels: u32,
    // height × width
    plane: u32,
    // 2F + 1: the features and the constant 1
    features: u32,
    // workgroups along x of the 2-D grid (the flat index is gid.x + gid.y·grid_x·64)
    grid_x: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: EmbedParams;
@group(0) @binding(1) var<storage, read> first: array<f32>;
@group(0) @binding(2) var<storage, read> second: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<storage, read> fourth: array<f32>;

@compute @workgroup_size(64)
fn embed_add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    if (e >= params.batch * params.channels * params.plane) {
        return;
    }
    let b = e / (params.channels * params.plane);
    let c = (e / params.plane) % params.channels;
    var acc = 0.0;
    for (var k = 0u; k < params.features; k = k + 1u) {
        acc = acc + fourth[c * params.features + k] * second[b * params.features + k];
    }
    result[e] = first[e] + acc;
}

@compute @workgroup_size(64)
fn embed_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    if (e >= params.channels * params.features) {
        return;
    }
    let c = e / params.features;
    let k = e % params.features;
    var acc = 0.0;
    for (var b = 0u; b < params.batch; b = b + 1u) {
        let base = (b * params.channels + c) * params.plane;
        var s = 0.0;
        for (var p = 0u; p < params.plane; p = p + 1u) {
            s = s + first[base + p];
        }
        acc = acc + s * second[b * params.features + k];
    }
    result[e] = acc;
}
