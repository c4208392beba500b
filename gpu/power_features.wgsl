// Random-feature map of the polynomial denoiser (Levine–Weiss §3.2): given Z = Y Rᵀ (N × w,
// row-major) and per-column scales c_j, writes Φ̃ (N × (w + 1)) with Φ̃_i0 = 1 and
// Φ̃_i(j+1) = (c_j Z_ij)^k — the scales make |c_j Z_ij| ≤ 1 so no power overflows for any k.
// One invocation per output entry, over a 2-D grid of 64-wide workgroups.

struct PowerParams {
    rows: u32,
    width: u32,
    power: u32,
    grid_x: u32,
}

@group(0) @binding(0) var<uniform> params: PowerParams;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> phi: array<f32>;

@compute @workgroup_size(64)
fn power_features(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    let cols = params.width + 1u;
    if (e >= params.rows * cols) {
        return;
    }
    let i = e / cols;
    let j = e % cols;
    if (j == 0u) {
        phi[e] = 1.0;
        return;
    }
    let v = scales[j - 1u] * z[i * params.width + j - 1u];
    var p = 1.0;
    for (var q = 0u; q < params.power; q = q + 1u) {
        p = p * v;
    }
    phi[e] = p;
}
