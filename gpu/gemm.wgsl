// Matrix product with a fused epilogue, row-major f32, op = identity or transpose:
//   t = α·op(A)·op(B) + β·D                          (D read only when β ≠ 0)
//   epilogue 0 (activation):       C = φ(t + bias)   bias: none, per row (m) or per column (n)
//   epilogue 1 (derivative mask):  C = t ⊙ φ'(H)     φ' from the stored activation output H
//   epilogue 2 (power):            C = (s_col ⊙ t)^k per-column scale s (n), integer k ≥ 1
// C, D and H are m×n, op(A) is m×k, op(B) is k×n. A is stored m×k (or k×m when trans_a = 1),
// B is stored k×n (or n×k when trans_b = 1). φ: 0 identity, 1 tanh, 2 ReLU, 3 leaky ReLU(slope).
// The plain product is epilogue 0 with no bias and φ = identity. Every entry of C is summed
// sequentially over k (f32 error ≤ γ_k of the absolute products before the epilogue; the
// epilogues' own roundings are derived in src/gpu/gemm.rs).

const GEMM_TILE: u32 = 16u;

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    epilogue: u32,  // 0 activation, 1 derivative mask, 2 power
    act: u32,       // φ (epilogues 0 and 1)
    bias_mode: u32, // epilogue 0: 0 none, 1 per row, 2 per column
    slope: f32,     // leaky ReLU slope
    power: u32,     // epilogue 2: k
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> d: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> vec_e: array<f32>; // bias (epilogue 0) or scale s (2)
@group(0) @binding(6) var<storage, read> aux: array<f32>;   // H (epilogue 1)

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

// φ(z); tanh as sign(z)(1 − e^{−2|z|})/(1 + e^{−2|z|}), which cannot overflow.
fn gemm_activation(z: f32) -> f32 {
    switch params.act {
        case 1u: {
            let e = exp(-2.0 * abs(z));
            return sign(z) * ((1.0 - e) / (1.0 + e));
        }
        case 2u: { return max(z, 0.0); }
        case 3u: { return select(params.slope * z, z, z > 0.0); }
        default: { return z; }
    }
}

// φ'(z) from h = φ(z): tanh 1 − h², ReLU [h > 0], leaky 1 or slope by the sign of h (slope ≥ 0).
fn gemm_derivative_from_output(h: f32) -> f32 {
    switch params.act {
        case 1u: { return 1.0 - h * h; }
        case 2u: { return select(0.0, 1.0, h > 0.0); }
        case 3u: { return select(params.slope, 1.0, h > 0.0); }
        default: { return 1.0; }
    }
}

fn gemm_epilogue(row: u32, col: u32, acc: f32) -> f32 {
    let idx = row * params.n + col;
    var t = params.alpha * acc;
    if (params.beta != 0.0) {
        t = t + params.beta * d[idx];
    }
    switch params.epilogue {
        case 1u: {
            return t * gemm_derivative_from_output(aux[idx]);
        }
        case 2u: {
            let v = vec_e[col] * t;
            var p = v;
            for (var q = 1u; q < params.power; q = q + 1u) {
                p = p * v;
            }
            return p;
        }
        default: {
            if (params.bias_mode == 1u) {
                t = t + vec_e[row];
            } else if (params.bias_mode == 2u) {
                t = t + vec_e[col];
            }
            return gemm_activation(t);
        }
    }
}

// Tiled kernel: workgroup (x, y) computes the 16×16 tile of C at rows 16y…, columns 16x…: the k
// dimension is walked in 16-wide slabs staged in workgroup memory, each thread accumulating one
// entry of C sequentially over k. Out-of-range tile entries are zero-padded.
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
        c[row * params.n + col] = gemm_epilogue(row, col, acc);
    }
}

// Register-blocked variant for large products: workgroup (x, y) computes the 64×64 block of C at
// rows 64y…, columns 64x…; each of its 16×16 invocations accumulates a 4×4 sub-block in
// registers, reading 16-wide k-slabs of A (64×16) and B (16×64) staged in workgroup memory. Each
// entry of C is still summed sequentially over k, so the tiled kernel's error bound holds.

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
    // The epilogue is too large for the compiler to unroll 16 copies of it: it reads a copy of
    // the accumulators, so `acc` itself is only ever indexed by unrolled loops and stays in
    // registers through the k loop (10 % on llvmpipe).
    var sums: array<f32, 16>;
    for (var e = 0u; e < 16u; e = e + 1u) {
        sums[e] = acc[e];
    }
    for (var e = 0u; e < 16u; e = e + 1u) {
        let row = row0 + lid.y * 4u + e / 4u;
        let col = col0 + lid.x * 4u + e % 4u;
        if (row < params.m && col < params.n) {
            c[row * params.n + col] = gemm_epilogue(row, col, sums[e]);
        }
    }
}
