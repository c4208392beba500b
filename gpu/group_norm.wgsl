// GroupNorm (Wu & He) of NCHW f32 tensors and its gradients, the U-Net's normalisation. With
// C channels in G groups of C/G, each (image b, group g) normalises its n = (C/G)·H·W entries:
//   μ = Σx/n,  s = √(Σ(x − μ)²/n + eps),  z = (x − μ)/s,  y = γ_c·z + β_c.
// Backward, with dy given and dz = γ_c·dy:
//   A = Σ dz/n,  B = Σ dz·z/n  (per (b, g)),   dx = (dz − A − z·B)/s,
//   dγ_c = Σ_{b,hw} dy·z,  dβ_c = Σ_{b,hw} dy.
// Statistics: one invocation per (b, g) summing in index order; elementwise maps: one
// invocation per entry; affine gradients: one invocation per channel. Rounding: gpu::group_norm.

struct NormParams {
    batch: u32,
    channels: u32,
    groups: u32,
    // H·W
    plane: u32,
    eps: f32,
    // workgroups along x of the 2-D grid (the flat index is gid.x + gid.y·grid_x·64)
    grid_x: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: NormParams;
// x (stats, apply, grad_stats, grad_input, grad_affine)
@group(0) @binding(1) var<storage, read> x: array<f32>;
// dy (grad_*), unused by the forward entry points
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// γ then β (2·C entries)
@group(0) @binding(3) var<storage, read> affine: array<f32>;
// per (b, g): μ, s, A, B (4 per group)
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
// y, dx, or [dγ | dβ]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// Every entry point statically uses every binding (phony reads), so the automatic layouts of
// the five entry points are the same and one binding list serves them all.
fn keep_bindings() {
    _ = x[0];
    _ = dy[0];
    _ = affine[0];
    _ = stats[0];
    _ = out[0];
}

fn flat(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * params.grid_x * 64u;
}

fn group_size() -> u32 {
    return (params.channels / params.groups) * params.plane;
}

// The first entry of group (b, g) (a group's channels are contiguous in NCHW).
fn group_base(bg: u32) -> u32 {
    return bg * group_size();
}

// The (b, g) and channel of entry e.
fn group_of(e: u32) -> u32 {
    return e / group_size();
}

fn channel_of(e: u32) -> u32 {
    return (e / params.plane) % params.channels;
}

@compute @workgroup_size(64)
fn group_norm_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
    keep_bindings();
    let bg = flat(gid);
    if (bg >= params.batch * params.groups) {
        return;
    }
    let n = group_size();
    let base = group_base(bg);
    var sum = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        sum = sum + x[base + i];
    }
    let mean = sum / f32(n);
    var squares = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let d = x[base + i] - mean;
        squares = squares + d * d;
    }
    stats[4u * bg] = mean;
    stats[4u * bg + 1u] = sqrt(squares / f32(n) + params.eps);
}

@compute @workgroup_size(64)
fn group_norm_apply(@builtin(global_invocation_id) gid: vec3<u32>) {
    keep_bindings();
    let e = flat(gid);
    if (e >= params.batch * params.channels * params.plane) {
        return;
    }
    let bg = group_of(e);
    let c = channel_of(e);
    let z = (x[e] - stats[4u * bg]) / stats[4u * bg + 1u];
    out[e] = affine[c] * z + affine[params.channels + c];
}

@compute @workgroup_size(64)
fn group_norm_grad_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
    keep_bindings();
    let bg = flat(gid);
    if (bg >= params.batch * params.groups) {
        return;
    }
    let n = group_size();
    let base = group_base(bg);
    let mean = stats[4u * bg];
    let s = stats[4u * bg + 1u];
    var a = 0.0;
    var b = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let e = base + i;
        let dz = affine[channel_of(e)] * dy[e];
        let z = (x[e] - mean) / s;
        a = a + dz;
        b = b + dz * z;
    }
    stats[4u * bg + 2u] = a / f32(n);
    stats[4u * bg + 3u] = b / f32(n);
}

@compute @workgroup_size(64)
fn group_norm_grad_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    keep_bindings();
    let e = flat(gid);
    if (e >= params.batch * params.channels * params.plane) {
        return;
    }
    let bg = group_of(e);
    let c = channel_of(e);
    let s = stats[4u * bg + 1u];
    let z = (x[e] - stats[4u * bg]) / s;
    let dz = affine[c] * dy[e];
    out[e] = (dz - stats[4u * bg + 2u] - z * stats[4u * bg + 3u]) / s;
}

@compute @workgroup_size(64)
fn group_norm_grad_affine(@builtin(global_invocation_id) gid: vec3<u32>) {
    keep_bindings();
    let c = flat(gid);
    if (c >= params.channels) {
        return;
    }
    let g = c / (params.channels / params.groups);
    var dgamma = 0.0;
    var dbeta = 0.0;
    for (var b = 0u; b < params.batch; b = b + 1u) {
        let bg = b * params.groups + g;
        let mean = stats[4u * bg];
        let s = stats[4u * bg + 1u];
        let base = (b * params.channels + c) * params.plane;
        for (var i = 0u; i < params.plane; i = i + 1u) {
            let z = (x[base + i] - mean) / s;
            dgamma = dgamma + dy[base + i] * z;
            dbeta = dbeta + dy[base + i];
        }
    }
    out[c] = dgamma;
    out[params.channels + c] = dbeta;
}
