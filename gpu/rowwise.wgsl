// Row-wise reductions of an m×n row-major f32 matrix X, a broadcast row add and a streaming
// copy (see src/gpu/rowwise.rs for the error bounds; column sums are dense.wgsl's
// dense_column_sum).
//
// The row kernels run one workgroup of 256 invocations per row (any n: each invocation walks
// the columns j ≡ lid (mod 256), then a tree reduction in workgroup memory), with the row index
// `wid.x + wid.y·grid_x` so more than 65535 rows fit the grid. They read X through an affine
// column shift
//     z_ij = scale·x_ij + shift·v_j          (v of length n, read only when shift ≠ 0)
// so the empirical denoiser's logits (α/σ²)S_ij − (α²/2σ²)‖x_j‖² need no extra pass.
//   row_logsumexp      lse_i = m_i + log Σ_j exp(z_ij − m_i),  m_i = max_j z_ij
//   row_softmax        p_ij  = exp(z_ij − m_i) / Σ_k exp(z_ik − m_i)
//   row_softmax_stats  (m_i, s_i) of one column block, s_i = Σ_j exp(z_ij − m_i); with
//                      accumulate = 1 merged into the running pair already in `out`:
//                      m = max(m', m_i), s = s'·exp(m' − m) + s_i·exp(m_i − m)
//   row_softmax_apply  in place, with the merged pair: x_ij ← exp(z_ij − m_i) / s_i
//   row_max_abs        max_j |x_ij|
//   add_row_vector     x_ij ← x_ij + shift·v_j, in place (one invocation per element)
//   copy_vec4          dst ← src, 16 bytes per invocation (the bandwidth probe)

const ROW_WG: u32 = 256u;
const NEG_MAX: f32 = -3.4028235e38;

struct RowParams {
    rows: u32,
    cols: u32,
    grid_x: u32,
    accumulate: u32,
    scale: f32,
    shift: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> rp: RowParams;

// row_logsumexp, row_softmax, row_softmax_stats
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 256>;

fn row_of(wid: vec3<u32>) -> u32 {
    return wid.x + wid.y * rp.grid_x;
}

fn z_at(i: u32, j: u32) -> f32 {
    var z = rp.scale * x[i * rp.cols + j];
    if (rp.shift != 0.0) {
        z = z + rp.shift * v[j];
    }
    return z;
}

fn reduce_max(lid: u32, value: f32) -> f32 {
    red[lid] = value;
    workgroupBarrier();
    for (var stride = ROW_WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            red[lid] = max(red[lid], red[lid + stride]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(lid: u32, value: f32) -> f32 {
    red[lid] = value;
    workgroupBarrier();
    for (var stride = ROW_WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            red[lid] = red[lid] + red[lid + stride];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// (m_i, s_i) of row i of z.
fn row_stats(i: u32, lid: u32) -> vec2<f32> {
    var m = NEG_MAX;
    for (var j = lid; j < rp.cols; j = j + ROW_WG) {
        m = max(m, z_at(i, j));
    }
    m = reduce_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < rp.cols; j = j + ROW_WG) {
        s = s + exp(z_at(i, j) - m);
    }
    s = reduce_sum(lid, s);
    return vec2<f32>(m, s);
}

@compute @workgroup_size(256)
fn row_logsumexp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = row_of(wid);
    if (i >= rp.rows) {
        return;
    }
    let st = row_stats(i, lid);
    if (lid == 0u) {
        out[i] = st.x + log(st.y);
    }
}

@compute @workgroup_size(256)
fn row_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = row_of(wid);
    if (i >= rp.rows) {
        return;
    }
    let st = row_stats(i, lid);
    for (var j = lid; j < rp.cols; j = j + ROW_WG) {
        out[i * rp.cols + j] = exp(z_at(i, j) - st.x) / st.y;
    }
}

@compute @workgroup_size(256)
fn row_softmax_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = row_of(wid);
    if (i >= rp.rows) {
        return;
    }
    let st = row_stats(i, lid);
    if (lid == 0u) {
        if (rp.accumulate == 1u) {
            let m_prev = out[2u * i];
            let s_prev = out[2u * i + 1u];
            let m = max(m_prev, st.x);
            out[2u * i] = m;
            out[2u * i + 1u] = s_prev * exp(m_prev - m) + st.y * exp(st.x - m);
        } else {
            out[2u * i] = st.x;
            out[2u * i + 1u] = st.y;
        }
    }
}

// row_softmax_apply: the block itself is rewritten in place.
@group(0) @binding(1) var<storage, read_write> ap_x: array<f32>;
@group(0) @binding(2) var<storage, read> ap_v: array<f32>;
@group(0) @binding(3) var<storage, read> ap_stats: array<f32>;

@compute @workgroup_size(256)
fn row_softmax_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = row_of(wid);
    if (i >= rp.rows) {
        return;
    }
    let m = ap_stats[2u * i];
    let s = ap_stats[2u * i + 1u];
    for (var j = lid; j < rp.cols; j = j + ROW_WG) {
        let e = i * rp.cols + j;
        var z = rp.scale * ap_x[e];
        if (rp.shift != 0.0) {
            z = z + rp.shift * ap_v[j];
        }
        ap_x[e] = exp(z - m) / s;
    }
}

// row_max_abs
@group(0) @binding(1) var<storage, read> rd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> rd_out: array<f32>;

@compute @workgroup_size(256)
fn row_max_abs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = row_of(wid);
    if (i >= rp.rows) {
        return;
    }
    var m = 0.0;
    for (var j = lid; j < rp.cols; j = j + ROW_WG) {
        m = max(m, abs(rd_x[i * rp.cols + j]));
    }
    m = reduce_max(lid, m);
    if (lid == 0u) {
        rd_out[i] = m;
    }
}

// add_row_vector
@group(0) @binding(1) var<storage, read> av_v: array<f32>;
@group(0) @binding(2) var<storage, read_write> av_x: array<f32>;

@compute @workgroup_size(256)
fn add_row_vector(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * rp.grid_x * ROW_WG;
    if (e >= rp.rows * rp.cols) {
        return;
    }
    av_x[e] = av_x[e] + rp.shift * av_v[e % rp.cols];
}

// copy_vec4: rp.rows = number of vec4 words.
@group(0) @binding(1) var<storage, read> cp_src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> cp_dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * rp.grid_x * ROW_WG;
    if (e >= rp.rows) {
        return;
    }
    cp_dst[e] = cp_src[e];
}
