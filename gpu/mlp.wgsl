// Dense-layer kernels of the bottleneck MLP (src/gpu/mlp.rs), row-major f32, batch of m rows.
// All parameters live in one flat buffer `theta` (per layer: W out×in row-major, then b), the
// gradient in `grad` with the same layout. A layer's input is A_eff = [a | s] where the optional
// last column s (one value per row, the σ feature ln σ) is read from its own buffer.
// Activations: 0 identity, 1 tanh (as 1 − 2/(e^{2z} + 1), z clamped to ±15), 2 ReLU, 3 leaky.

struct LayerParams {
    m: u32,          // batch rows
    n_out: u32,      // outputs of the layer
    k: u32,          // inputs including the σ column
    k_main: u32,     // inputs read from `a` (k or k − 1)
    act: u32,        // activation of this layer (forward, loss) or of the previous (input grad)
    w_offset: u32,   // offset of W in theta / grad
    slope: f32,      // leaky slope
    scale: f32,      // loss: 2/m
}

@group(0) @binding(0) var<uniform> lp: LayerParams;

fn act_apply(kind: u32, slope: f32, z: f32) -> f32 {
    switch kind {
        case 1u: {
            let e = exp(2.0 * clamp(z, -15.0, 15.0));
            return 1.0 - 2.0 / (e + 1.0);
        }
        case 2u: { return max(z, 0.0); }
        case 3u: { return select(slope * z, z, z > 0.0); }
        default: { return z; }
    }
}

fn act_derivative(kind: u32, slope: f32, z: f32) -> f32 {
    switch kind {
        case 1u: {
            let t = act_apply(1u, slope, z);
            return 1.0 - t * t;
        }
        case 2u: { return select(0.0, 1.0, z > 0.0); }
        case 3u: { return select(slope, 1.0, z > 0.0); }
        default: { return 1.0; }
    }
}

// ---- forward: z = A_eff Wᵀ + b, out = φ(z) — a tiled GEMM with a fused bias + activation
//      epilogue. Workgroup (x, y) computes the 16×16 tile of z at rows 16y…, outputs 16x…,
//      walking the inputs in 16-wide slabs staged in workgroup memory; each thread accumulates
//      its entry sequentially over the inputs (f32 error ≤ γ_{k+2}(|W||a| + |b|)). ----------------
@group(0) @binding(1) var<storage, read> fw_a: array<f32>;
@group(0) @binding(2) var<storage, read> fw_s: array<f32>;
@group(0) @binding(3) var<storage, read> fw_theta: array<f32>;
@group(0) @binding(4) var<storage, read_write> fw_z: array<f32>;
@group(0) @binding(5) var<storage, read_write> fw_out: array<f32>;

const MLP_TILE: u32 = 16u;
var<workgroup> fw_tile_a: array<f32, 256>;
var<workgroup> fw_tile_w: array<f32, 256>;

// A_eff[r, c]: the layer input with the σ column appended, zero outside.
fn fw_input(r: u32, c: u32) -> f32 {
    if (r >= lp.m || c >= lp.k) {
        return 0.0;
    }
    if (c < lp.k_main) {
        return fw_a[r * lp.k_main + c];
    }
    return fw_s[r];
}

fn fw_weight(o: u32, c: u32) -> f32 {
    if (o >= lp.n_out || c >= lp.k) {
        return 0.0;
    }
    return fw_theta[lp.w_offset + o * lp.k + c];
}

@compute @workgroup_size(16, 16)
fn mlp_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.y * MLP_TILE + lid.y;
    let o = wid.x * MLP_TILE + lid.x;
    var acc = 0.0;
    let slabs = (lp.k + MLP_TILE - 1u) / MLP_TILE;
    for (var sl = 0u; sl < slabs; sl = sl + 1u) {
        fw_tile_a[lid.y * MLP_TILE + lid.x] = fw_input(r, sl * MLP_TILE + lid.x);
        fw_tile_w[lid.y * MLP_TILE + lid.x] = fw_weight(wid.x * MLP_TILE + lid.y, sl * MLP_TILE + lid.x);
        workgroupBarrier();
        for (var i = 0u; i < MLP_TILE; i = i + 1u) {
            acc = acc + fw_tile_a[lid.y * MLP_TILE + i] * fw_tile_w[lid.x * MLP_TILE + i];
        }
        workgroupBarrier();
    }
    if (r < lp.m && o < lp.n_out) {
        let z = acc + fw_theta[lp.w_offset + lp.n_out * lp.k + o];
        fw_z[r * lp.n_out + o] = z;
        fw_out[r * lp.n_out + o] = act_apply(lp.act, lp.slope, z);
    }
}

// ---- loss: dz_L = φ'(z_L)·(2/m)·w_row·(out − x), sq = w_row·(out − x)²; one thread per entry --
@group(0) @binding(1) var<storage, read> ls_out: array<f32>;
@group(0) @binding(2) var<storage, read> ls_z: array<f32>;
@group(0) @binding(3) var<storage, read> ls_x: array<f32>;
@group(0) @binding(4) var<storage, read_write> ls_dz: array<f32>;
@group(0) @binding(5) var<storage, read_write> ls_sq: array<f32>;
@group(0) @binding(6) var<storage, read> ls_w: array<f32>;

@compute @workgroup_size(64)
fn mlp_loss_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= lp.m * lp.n_out) {
        return;
    }
    let r = ls_out[i] - ls_x[i];
    let w = ls_w[i / lp.n_out];
    ls_sq[i] = w * (r * r);
    ls_dz[i] = act_derivative(lp.act, lp.slope, ls_z[i]) * lp.scale * (w * r);
}

// ---- weight gradient: grad[W] = dzᵀ A_eff, grad[b] = Σ_r dz; one thread per (out, in + 1) --
@group(0) @binding(1) var<storage, read> wg_dz: array<f32>;
@group(0) @binding(2) var<storage, read> wg_a: array<f32>;
@group(0) @binding(3) var<storage, read> wg_s: array<f32>;
@group(0) @binding(4) var<storage, read_write> wg_grad: array<f32>;

@compute @workgroup_size(8, 8)
fn mlp_weight_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let o = gid.y;
    if (c > lp.k || o >= lp.n_out) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < lp.m; r = r + 1u) {
        var a = 1.0;
        if (c < lp.k_main) {
            a = wg_a[r * lp.k_main + c];
        } else if (c < lp.k) {
            a = wg_s[r];
        }
        acc = acc + wg_dz[r * lp.n_out + o] * a;
    }
    if (c < lp.k) {
        wg_grad[lp.w_offset + o * lp.k + c] = acc;
    } else {
        wg_grad[lp.w_offset + lp.n_out * lp.k + o] = acc;
    }
}

// ---- input gradient fused with the previous layer's activation derivative:
//      dz_prev[r, c] = φ'_prev(z_prev[r, c])·Σ_o dz[r, o] W[o, c], c < k_main -------------------
@group(0) @binding(1) var<storage, read> ig_dz: array<f32>;
@group(0) @binding(2) var<storage, read> ig_theta: array<f32>;
@group(0) @binding(3) var<storage, read> ig_zprev: array<f32>;
@group(0) @binding(4) var<storage, read_write> ig_out: array<f32>;

@compute @workgroup_size(8, 8)
fn mlp_input_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    if (c >= lp.k_main || r >= lp.m) {
        return;
    }
    var acc = 0.0;
    for (var o = 0u; o < lp.n_out; o = o + 1u) {
        acc = acc + ig_dz[r * lp.n_out + o] * ig_theta[lp.w_offset + o * lp.k + c];
    }
    ig_out[r * lp.k_main + c] = act_derivative(lp.act, lp.slope, ig_zprev[r * lp.k_main + c]) * acc;
}

// ---- sum of a buffer of m values into out[0] (one workgroup: strided partial sums, then a
//      tree in workgroup memory) ----------------------------------------------------------------
@group(0) @binding(1) var<storage, read> sum_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_out: array<f32>;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn mlp_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = 0.0;
    for (var i = lid.x; i < lp.m; i = i + 64u) {
        acc = acc + sum_in[i];
    }
    partial[lid.x] = acc;
    workgroupBarrier();
    for (var width = 32u; width > 0u; width = width / 2u) {
        if (lid.x < width) {
            partial[lid.x] = partial[lid.x] + partial[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        sum_out[0] = partial[0];
    }
}

// ---- Adam (Kingma & Ba): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
//      θ ← θ − lr·(m·c₁)/(√(v·c₂) + eps), c_i = 1/(1 − β_iᵗ) ---------------------------------
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
