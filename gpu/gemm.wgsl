// Tiled matrix product C = α·op(A)·op(B) + β·D, row-major f32, op = identity or transpose.
// C and D are m×n, op(A) is m×k, op(B) is k×n. A is stored m×k (or k×m when trans_a = 1),
// B is stored k×n (or n×k when trans_b = 1). Workgroup (x, y) computes the 16×16 tile of C at
// rows 16y…, columns 16x…: the k dimension is walked in 16-wide slabs staged in workgroup
// memory, each thread accumulating one entry of C sequentially over k (f32 error ≤ γ_{k+2} of
// the absolute products; see src/gpu/gemm.rs). Out-of-range tile entries are zero-padded.

const GEMM_TILE: u32 = 16u;

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> d: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

var<workgroup> tile_a: array<f32, 256>;
var<workgroup> tile_b: array<f32, 256>;

fn gemm_a(row: u32, kk: u32) -> f32 {
    if (row >= params.m || kk >= params.k) {
        return 0.0;
    }
    if (params.trans_a == 1u) {
        return a[kk * params.m + row];
    }
    return a[row * params.k + kk];
}

fn gemm_b(kk: u32, col: u32) -> f32 {
    if (kk >= params.k || col >= params.n) {
        return 0.0;
    }
    if (params.trans_b == 1u) {
        return b[col * params.k + kk];
    }
    return b[kk * params.n + col];
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.y * GEMM_TILE + lid.y;
    let col = wid.x * GEMM_TILE + lid.x;
    var acc = 0.0;
    let slabs = (params.k + GEMM_TILE - 1u) / GEMM_TILE;
    for (var s = 0u; s < slabs; s = s + 1u) {
        tile_a[lid.y * GEMM_TILE + lid.x] = gemm_a(row, s * GEMM_TILE + lid.x);
        tile_b[lid.y * GEMM_TILE + lid.x] = gemm_b(s * GEMM_TILE + lid.y, col);
        workgroupBarrier();
        for (var i = 0u; i < GEMM_TILE; i = i + 1u) {
            acc = acc + tile_a[lid.y * GEMM_TILE + i] * tile_b[i * GEMM_TILE + lid.x];
        }
        workgroupBarrier();
    }
    if (row < params.m && col < params.n) {
        var out = params.alpha * acc;
        if (params.beta != 0.0) {
            out = out + params.beta * d[row * params.n + col];
        }
        c[row * params.n + col] = out;
    }
}
