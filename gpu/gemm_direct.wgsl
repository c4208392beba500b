// The direct GEMM kernel for software adapters (compiled after gemm_epilogue.wgsl, which holds
// the parameters, the epilogues and the store): no workgroup memory and no barrier. On a CPU
// (llvmpipe) workgroup memory is ordinary memory, so staging k-slabs in it only adds copies,
// and every barrier switches between the workgroup's invocations; the caches do the staging.
// Workgroup z is the split-K slice. Every entry of C is summed sequentially over its slice's k,
// as in the tiled kernels (same error bound, src/gpu/gemm/mod.rs).

@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;

// Workgroup (x, y, s) computes the 64×64 block of C at rows 64y…, columns 64x… over k slice s;
// invocation (i, j) of its 16×16 the rows 64y + 4j + r (r < 4) and the columns 64x + i + 16q
// (q < 4), so neighbouring invocations read neighbouring columns of B. Rows and columns past
// m and n read a clamped in-range entry and are not stored; an invocation with none in range
// returns at once.
@compute @workgroup_size(16, 16)
fn gemm_direct(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * 64u + lid.y * 4u;
    let col0 = wid.x * 64u + lid.x;
    if (row0 >= params.m || col0 >= params.n) {
        return;
    }
    let ks = gemm_k_range(wid.z);
    // op(A)[r, kk] = a[r·a_row + kk·a_k], op(B)[kk, c] = b[kk·b_k + c·b_col]
    var a_row = params.k;
    var a_k = 1u;
    if (params.trans_a == 1u) {
        a_row = 1u;
        a_k = params.m;
    }
    var b_k = params.n;
    var b_col = 1u;
    if (params.trans_b == 1u) {
        b_k = 1u;
        b_col = params.k;
    }
    var a_base: array<u32, 4>;
    var b_base: array<u32, 4>;
    for (var r = 0u; r < 4u; r = r + 1u) {
        a_base[r] = min(row0 + r, params.m - 1u) * a_row;
        b_base[r] = min(col0 + 16u * r, params.n - 1u) * b_col;
    }
    var acc: array<f32, 16>;
    for (var e = 0u; e < 16u; e = e + 1u) {
        acc[e] = 0.0;
    }
    for (var kk = ks.x; kk < ks.y; kk = kk + 1u) {
        var a_reg: array<f32, 4>;
        var b_reg: array<f32, 4>;
        for (var r = 0u; r < 4u; r = r + 1u) {
            a_reg[r] = a[a_base[r] + kk * a_k];
            b_reg[r] = b[b_base[r] + kk * b_k];
        }
        for (var r = 0u; r < 4u; r = r + 1u) {
            for (var q = 0u; q < 4u; q = q + 1u) {
                acc[r * 4u + q] = acc[r * 4u + q] + a_reg[r] * b_reg[q];
            }
        }
    }
    var sums: array<f32, 16>;
    for (var e = 0u; e < 16u; e = e + 1u) {
        sums[e] = acc[e];
    }
    for (var e = 0u; e < 16u; e = e + 1u) {
        gemm_store(row0 + e / 4u, col0 + 16u * (e % 4u), wid.z, sums[e]);
    }
}
