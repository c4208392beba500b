// The kernels besides the GEMMs of the GPU MLP trainers (the one-hidden-layer dense trainer,
// src/gpu/dense/, and the bottleneck-MLP trainer, src/gpu/mlp/), row-major f32, samples as rows.
// Compiled after gpu/philox.wgsl (dense_gather draws the noise).

// ---- gather: the batch's clean rows X_b[r] = data[perm[start + r]] and noisy inputs
//      Y_b = α·X_b + σ·ε, ε from Philox: element e = r·dim + j of batch `batch` is normal
//      e mod 4 of block (lo = e / 4, hi = batch) of stream (seed, stream) — one invocation per
//      block of four elements (src/gpu/dense.rs regenerates the same ε on the CPU). -------------
struct GatherParams {
    rows: u32,
    dim: u32,
    start: u32,
    batch: u32,
    stream: u32,
    seed_lo: u32,
    seed_hi: u32,
    grid_x: u32,
    alpha: f32,
    sigma: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> ga_perm: array<u32>;
@group(0) @binding(2) var<storage, read> ga_data: array<f32>;
@group(0) @binding(3) var<storage, read_write> ga_x: array<f32>;
@group(0) @binding(4) var<storage, read_write> ga_y: array<f32>;

@compute @workgroup_size(64)
fn dense_gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let blk = gid.x + gid.y * gp.grid_x * 64u;
    let total = gp.rows * gp.dim;
    if (blk * 4u >= total) {
        return;
    }
    let w = philox_block(vec2<u32>(gp.seed_lo, gp.seed_hi), gp.stream, vec2<u32>(blk, gp.batch));
    let z = philox_normals(w);
    for (var l = 0u; l < 4u; l = l + 1u) {
        let e = blk * 4u + l;
        if (e < total) {
            let r = e / gp.dim;
            let j = e % gp.dim;
            let x = ga_data[ga_perm[gp.start + r] * gp.dim + j];
            ga_x[e] = x;
            ga_y[e] = gp.alpha * x + gp.sigma * z[l];
        }
    }
}

// ---- residual of the weighted denoising loss (1/rows)·Σ_r w_r‖x̂_r − x_r‖² through the output
//      layer's activation φ (read off its output X̂ = φ(Z), as the GEMM's derivative mask does):
//      G = ((scale·w_r)·(X̂ − X))·φ'(X̂) (scale = 2/rows; for identity φ and w_r = 1 this is
//      scale·(X̂ − X) exactly), and w_r·‖x̂_r − x_r‖² into row_sq[offset + r] — one workgroup
//      per row: 64 strided partial sums, then a tree, then the weight. ------------------------
struct ResidualParams {
    rows: u32,
    dim: u32,
    offset: u32,
    act: u32,     // φ of the output layer: 0 identity, 1 tanh, 2 ReLU, 3 leaky ReLU(slope ≥ 0)
    scale: f32,
    slope: f32,
    pad0: f32,
    pad1: f32,
}

@group(0) @binding(0) var<uniform> rp: ResidualParams;
@group(0) @binding(1) var<storage, read> rs_xhat: array<f32>;
@group(0) @binding(2) var<storage, read> rs_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> rs_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> rs_row_sq: array<f32>;
@group(0) @binding(5) var<storage, read> rs_w: array<f32>;

var<workgroup> rs_partial: array<f32, 64>;

// φ'(z) from h = φ(z): tanh 1 − h², ReLU [h > 0], leaky 1 or slope by the sign of h (slope ≥ 0).
fn rs_derivative_from_output(h: f32) -> f32 {
    switch rp.act {
        case 1u: { return 1.0 - h * h; }
        case 2u: { return select(0.0, 1.0, h > 0.0); }
        case 3u: { return select(rp.slope, 1.0, h > 0.0); }
        default: { return 1.0; }
    }
}

@compute @workgroup_size(64)
fn dense_residual(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.x;
    var acc = 0.0;
    if (r < rp.rows) {
        let sw = rp.scale * rs_w[r];
        for (var j = lid.x; j < rp.dim; j = j + 64u) {
            let e = r * rp.dim + j;
            let res = rs_xhat[e] - rs_x[e];
            rs_g[e] = (sw * res) * rs_derivative_from_output(rs_xhat[e]);
            acc = acc + res * res;
        }
    }
    rs_partial[lid.x] = acc;
    workgroupBarrier();
    for (var width = 32u; width > 0u; width = width / 2u) {
        if (lid.x < width) {
            rs_partial[lid.x] = rs_partial[lid.x] + rs_partial[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u && r < rp.rows) {
        rs_row_sq[rp.offset + r] = rs_w[r] * rs_partial[0];
    }
}

// ---- column sums: out[j] = Σ_r M[r, j] (r < rows, sequential), one invocation per column:
//      the bias gradients db = colsum(dZ) of both trainers, and (one column) the losses' sums. --------------------------------------------
struct ColumnSumParams {
    rows: u32,
    cols: u32,
    grid_x: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> cp: ColumnSumParams;
@group(0) @binding(1) var<storage, read> cs_m: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_out: array<f32>;

@compute @workgroup_size(64)
fn dense_column_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x + gid.y * cp.grid_x * 64u;
    if (j >= cp.cols) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < cp.rows; r = r + 1u) {
        acc = acc + cs_m[r * cp.cols + j];
    }
    cs_out[j] = acc;
}
