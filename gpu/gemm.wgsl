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

// Register-blocked variant for large products: workgroup (x, y) computes the 64×64 block of C at
// rows 64y…, columns 64x…; each of its 16×16 invocations accumulates a 4×4 sub-block in
// registers, reading 16-wide k-slabs of A (64×16) and B (16×64) staged in workgroup memory. Each
// entry of C is still summed sequentially over k, so the naive kernel's error bound holds.

const BLOCK: u32 = 64u;

var<workgroup> block_a: array<f32, 1024>; // 64 × 16, [row · 16 + kk]
var<workgroup> block_b: array<f32, 1024>; // 16 × 64, [kk · 64 + col]

@compute @workgroup_size(16, 16)
fn gemm_blocked(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * BLOCK;
    let col0 = wid.x * BLOCK;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = 0.0;
    }
    let slabs = (params.k + GEMM_TILE - 1u) / GEMM_TILE;
    for (var s = 0u; s < slabs; s = s + 1u) {
        for (var q = 0u; q < 4u; q = q + 1u) {
            let e = li + q * 256u;
            block_a[e] = gemm_a(row0 + e / GEMM_TILE, s * GEMM_TILE + e % GEMM_TILE);
            block_b[e] = gemm_b(s * GEMM_TILE + e / BLOCK, col0 + e % BLOCK);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < GEMM_TILE; kk = kk + 1u) {
            var a_reg: array<f32, 4>;
            var b_reg: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a_reg[i] = block_a[(lid.y * 4u + i) * GEMM_TILE + kk];
                b_reg[i] = block_b[kk * BLOCK + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i * 4u + j] = acc[i * 4u + j] + a_reg[i] * b_reg[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let row = row0 + lid.y * 4u + i;
            let col = col0 + lid.x * 4u + j;
            if (row < params.m && col < params.n) {
                var out = params.alpha * acc[i * 4u + j];
                if (params.beta != 0.0) {
                    out = out + params.beta * d[row * params.n + col];
                }
                c[row * params.n + col] = out;
            }
        }
    }
}
