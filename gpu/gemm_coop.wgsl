// Tensor-core GEMM: the product of the GEMM family (parameters, bindings and the store with its
// epilogues from gemm_epilogue.wgsl, the operand readers gemm_a/gemm_b from gemm.wgsl, both
// compiled after this file, whose `enable` directives must come first) with the operands
// rounded to f16 and multiplied on 16×16×16 cooperative matrices, accumulating in f32.
// Only compiled where the adapter offers EXPERIMENTAL_COOPERATIVE_MATRIX with 16×16×16
// f16×f16→f32, SHADER_F16 and SUBGROUP (src/gpu/gemm.rs, `Precision::F16TensorCores`).
//
// Workgroup (x, y, s) computes the 64×64 block of C at rows 64y…, columns 64x… over split-K
// slice s (gemm_k_range), with 128
// invocations = 4 subgroups of 32; subgroup s owns the 32×32 quadrant (s / 2, s % 2) as 2×2
// accumulators. The k dimension is walked in 32-wide slabs: every invocation stages 16 entries
// of A (64×32) and 16 of B (32×64) in workgroup memory as f16 (zero-padded outside the matrix,
// transposed layouts read by gemm_a/gemm_b), then each subgroup loads its 16×16 tiles and
// multiplies-adds. At the end each accumulator goes through a per-subgroup 16×16 f32 staging tile
// so that every entry goes through gemm_store (bounds check, split-K partial or epilogue) as in
// the f32 kernels.

enable f16;
enable wgpu_cooperative_matrix;

const COOP_BLOCK: u32 = 64u;
const COOP_K: u32 = 32u;

var<workgroup> coop_a: array<f16, 2048>;    // 64 × 32, [row · 32 + kk]
var<workgroup> coop_b: array<f16, 2048>;    // 32 × 64, [kk · 64 + col]
var<workgroup> coop_out: array<f32, 1024>;  // 4 subgroups × 16 × 16

@compute @workgroup_size(128)
fn gemm_coop(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) lanes: u32,
) {
    let row0 = wid.y * COOP_BLOCK;
    let col0 = wid.x * COOP_BLOCK;
    let quad_row = (sg / 2u) * 32u;
    let quad_col = (sg % 2u) * 32u;
    var acc00 = coop_mat16x16<f32, C>();
    var acc01 = coop_mat16x16<f32, C>();
    var acc10 = coop_mat16x16<f32, C>();
    var acc11 = coop_mat16x16<f32, C>();
    let ks = gemm_k_range(wid.z);
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + COOP_K) {
        for (var q = 0u; q < 16u; q = q + 1u) {
            let e = li + q * 128u;
            coop_a[e] = f16(gemm_a(row0 + e / COOP_K, k0 + e % COOP_K, ks.y));
            coop_b[e] = f16(gemm_b(k0 + e / COOP_BLOCK, col0 + e % COOP_BLOCK, ks.y));
        }
        workgroupBarrier();
        for (var kk = 0u; kk < COOP_K; kk = kk + 16u) {
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[quad_row * COOP_K + kk], COOP_K);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(
                &coop_a[(quad_row + 16u) * COOP_K + kk],
                COOP_K,
            );
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&coop_b[kk * COOP_BLOCK + quad_col], COOP_BLOCK);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(
                &coop_b[kk * COOP_BLOCK + quad_col + 16u],
                COOP_BLOCK,
            );
            acc00 = coopMultiplyAdd(a0, b0, acc00);
            acc01 = coopMultiplyAdd(a0, b1, acc01);
            acc10 = coopMultiplyAdd(a1, b0, acc10);
            acc11 = coopMultiplyAdd(a1, b1, acc11);
        }
        workgroupBarrier();
    }
    let staging = sg * 256u;
    for (var t = 0u; t < 4u; t = t + 1u) {
        switch t {
            case 0u: { coopStoreT(acc00, &coop_out[staging], 16u); }
            case 1u: { coopStoreT(acc01, &coop_out[staging], 16u); }
            case 2u: { coopStoreT(acc10, &coop_out[staging], 16u); }
            default: { coopStoreT(acc11, &coop_out[staging], 16u); }
        }
        workgroupBarrier();
        for (var e = lane; e < 256u; e = e + lanes) {
            let row = row0 + quad_row + (t / 2u) * 16u + e / 16u;
            let col = col0 + quad_col + (t % 2u) * 16u + e % 16u;
            gemm_store(row, col, wid.z, coop_out[staging + e]);
        }
        workgroupBarrier();
    }
}
