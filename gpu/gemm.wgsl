// The 16×16-tiled and 64×64 register-blocked GEMM kernels, with scalar loads (compiled after
// gemm_epilogue.wgsl, which holds the parameters, the epilogues and the store). Workgroup z is
// the split-K slice. Every entry of C is summed sequentially over its slice's k (f32 error
// ≤ γ_k of the absolute products before the epilogue; the epilogues' own roundings and the
// split-K argument are derived in src/gpu/gemm.rs).

@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;

const GEMM_TILE: u32 = 16u;

var<workgroup> tile_a: array<f32, 256>;
var<workgroup> tile_b: array<f32, 256>;

// op(A)[row, kk], zero outside rows < m and k < k_end.
fn gemm_a(row: u32, kk: u32, k_end: u32) -> f32 {
    if (row >= params.m || kk >= k_end) {
        return 0.0;
    }
    if (params.trans_a == 1u) {
        return a[kk * params.m + row];
    }
    return a[row * params.k + kk];
}

// op(B)[kk, col], zero outside k < k_end and columns < n.
fn gemm_b(kk: u32, col: u32, k_end: u32) -> f32 {
    if (kk >= k_end || col >= params.n) {
        return 0.0;
    }
    if (params.trans_b == 1u) {
        return b[col * params.k + kk];
    }
    return b[kk * params.n + col];
}

// Tiled kernel: workgroup (x, y, s) computes the 16×16 tile of C at rows 16y…, columns 16x… over
// k slice s: the slice is walked in 16-wide slabs staged in workgroup memory, each thread
// accumulating one entry of C sequentially over k. Out-of-range tile entries are zero-padded.
@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.y * GEMM_TILE + lid.y;
    let col = wid.x * GEMM_TILE + lid.x;
    let ks = gemm_k_range(wid.z);
    var acc = 0.0;
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + GEMM_KSTEP) {
        tile_a[lid.y * GEMM_TILE + lid.x] = gemm_a(row, k0 + lid.x, ks.y);
        tile_b[lid.y * GEMM_TILE + lid.x] = gemm_b(k0 + lid.y, col, ks.y);
        workgroupBarrier();
        for (var i = 0u; i < GEMM_TILE; i = i + 1u) {
            acc = acc + tile_a[lid.y * GEMM_TILE + i] * tile_b[i * GEMM_TILE + lid.x];
        }
        workgroupBarrier();
    }
    gemm_store(row, col, wid.z, acc);
}

// Register-blocked variant for large products: workgroup (x, y, s) computes the 64×64 block of C
// at rows 64y…, columns 64x… over k slice s; each of its 16×16 invocations accumulates a 4×4
// sub-block in registers, reading 16-wide k-slabs of A (64×16) and B (16×64) staged in workgroup
// memory. Each entry of C is still summed sequentially over k, so the tiled kernel's error bound
// holds.

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
    let ks = gemm_k_range(wid.z);
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = 0.0;
    }
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + GEMM_KSTEP) {
        for (var q = 0u; q < 4u; q = q + 1u) {
            let e = li + q * 256u;
            block_a[e] = gemm_a(row0 + e / GEMM_KSTEP, k0 + e % GEMM_KSTEP, ks.y);
            block_b[e] = gemm_b(k0 + e / BLOCK, col0 + e % BLOCK, ks.y);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < GEMM_KSTEP; kk = kk + 1u) {
            var a_reg: array<f32, 4>;
            var b_reg: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a_reg[i] = block_a[(lid.y * 4u + i) * GEMM_KSTEP + kk];
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
        gemm_store(row0 + lid.y * 4u + e / 4u, col0 + lid.x * 4u + e % 4u, wid.z, sums[e]);
    }
}
