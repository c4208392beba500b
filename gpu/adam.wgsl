// Adam (Kingma & Ba) on one flat f32 tensor, bias-corrected: the optimizer of both GPU MLP
// trainers (src/gpu/mlp, src/gpu/dense), one invocation per parameter. The Rust wrapper and its
// f64 reference with the rounding bound are src/gpu/adam.rs.

// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr·(m·c₁)/(√(v·c₂) + eps), c_i = 1/(1 − β_iᵗ)
struct AdamParams {
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    c1: f32,
    c2: f32,
    pad3: f32,
    pad4: f32,
}

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read> ad_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> ad_theta: array<f32>;
@group(0) @binding(3) var<storage, read_write> ad_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> ad_v: array<f32>;

@compute @workgroup_size(64)
fn mlp_adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= ap.count) {
        return;
    }
    let g = ad_grad[i];
    let m = ap.beta1 * ad_m[i] + (1.0 - ap.beta1) * g;
    let v = ap.beta2 * ad_v[i] + (1.0 - ap.beta2) * g * g;
    ad_m[i] = m;
    ad_v[i] = v;
    ad_theta[i] = ad_theta[i] - ap.lr * (m * ap.c1) / (sqrt(v * ap.c2) + ap.eps);
}
