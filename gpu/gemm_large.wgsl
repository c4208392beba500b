// The 128×128 register-blocked GEMM kernel (compiled after gemm_epilogue.wgsl): workgroup
// (x, y, s) computes the 128×128 block of C at rows 128y…, columns 128x… over k slice s; each of
// its 16×16 invocations (tx, ty) accumulates 8×8 entries in registers — rows 4ty…4ty+3 and
// 64+4ty…, columns 4tx…4tx+3 and 64+4tx… — from 16-wide k-slabs of op(A) (128×16) and op(B)
// (16×128) staged in workgroup memory, the 16 steps of a slab written out (large_step) so the
// accumulators are only ever indexed by constants and live in registers.
//
// Global loads are vec4 where an operand's stored rows are a multiple of 4 long (params.vec_a,
// params.vec_b; a quad then lies wholly inside or wholly outside the matrix and the k slice,
// whose ends are multiples of 16 or k itself), else scalar; every load is bounds-checked against
// m, n and the slice's k range (tile padding reads nothing). The operands are bound as vec4
// arrays: GpuMat pads its buffers to a multiple of 4 words, so every word of the matrix lies
// inside the array. Each entry of C is summed sequentially over its slice's k, as in gemm.wgsl.
//
// Workgroup tiles are k-major, [kk][outer], so an invocation reads its 8 rows (or 8 columns) of
// one k-step as two vec4s: the 32 invocations of a subgroup read 2 distinct A quads (broadcast)
// and 16 consecutive B quads (conflict-free). A k-row holds 33 quads, one of padding: loads that
// scatter a quad along k (A stored m×k, B stored n×k) then hit 32 words in 16 banks apart from
// 2-way collisions, where an unpadded row (128 ≡ 0 mod 32 banks) would collide 4-way.

@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;

const LARGE: u32 = 128u;
const LARGE_ROW: u32 = 33u; // quads per k-row of a staged tile: 32 + 1 padding

var<workgroup> large_a: array<vec4<f32>, 528>; // op(A) tile: (kk, row) at [kk·33 + row/4][row%4]
var<workgroup> large_b: array<vec4<f32>, 528>; // op(B) tile: (kk, col) at [kk·33 + col/4][col%4]
var<private> large_acc: array<vec4<f32>, 16>;  // [2i + h]: row i of 8, column quad h of 2

// Word `i` (scalar) and the quad of words i…i+3 (i a multiple of 4) of A (which = 0) or B (1).
fn large_word(which: u32, i: u32) -> f32 {
    if (which == 0u) {
        return a4[i / 4u][i % 4u];
    }
    return b4[i / 4u][i % 4u];
}

fn large_quad(which: u32, i: u32) -> vec4<f32> {
    if (which == 0u) {
        return a4[i / 4u];
    }
    return b4[i / 4u];
}

// Writes entry (kk, o) of the staged tile of A (which = 0) or B (1), or the quad (kk, o…o+3).
fn large_put(which: u32, kk: u32, o: u32, v: f32) {
    if (which == 0u) {
        large_a[kk * LARGE_ROW + o / 4u][o % 4u] = v;
    } else {
        large_b[kk * LARGE_ROW + o / 4u][o % 4u] = v;
    }
}

fn large_put4(which: u32, kk: u32, o: u32, v: vec4<f32>) {
    if (which == 0u) {
        large_a[kk * LARGE_ROW + o / 4u] = v;
    } else {
        large_b[kk * LARGE_ROW + o / 4u] = v;
    }
}

// Stages the 16×128 k-major slab of op(A) (which = 0: rows outer0…outer0+127 of op(A), of
// outer_len = m) or of op(B) (which = 1: columns, outer_len = n) for k in [k0, k0 + 16), zero
// outside the matrix and the slice's end k_end. k_major: the stored matrix has k as its row
// index (Aᵀ stored k×m, B stored k×n), so the slab's outer index is the contiguous one; else k
// is. vec: the stored row length is a multiple of 4 (256 invocations move 512 quads, else 2048
// words).
fn large_stage(which: u32, li: u32, outer0: u32, outer_len: u32, k0: u32, k_end: u32,
               k_major: bool, vec: bool) {
    let ld = select(params.k, outer_len, k_major);
    if (vec) {
        for (var q = 0u; q < 2u; q = q + 1u) {
            let e = li + 256u * q;
            if (k_major) {
                let kk = e / 32u;
                let o = 4u * (e % 32u);
                var v = vec4<f32>(0.0);
                if (k0 + kk < k_end && outer0 + o < outer_len) {
                    v = large_quad(which, (k0 + kk) * ld + outer0 + o);
                }
                large_put4(which, kk, o, v);
            } else {
                let o = e / 4u;
                let kk = 4u * (e % 4u);
                var v = vec4<f32>(0.0);
                if (outer0 + o < outer_len && k0 + kk < k_end) {
                    v = large_quad(which, (outer0 + o) * ld + k0 + kk);
                }
                for (var j = 0u; j < 4u; j = j + 1u) {
                    large_put(which, kk + j, o, v[j]);
                }
            }
        }
    } else {
        for (var q = 0u; q < 8u; q = q + 1u) {
            let e = li + 256u * q;
            let kk = select(e % 16u, e / 128u, k_major);
            let o = select(e / 16u, e % 128u, k_major);
            var v = 0.0;
            if (outer0 + o < outer_len && k0 + kk < k_end) {
                let i = select((outer0 + o) * ld + k0 + kk, (k0 + kk) * ld + outer0 + o, k_major);
                v = large_word(which, i);
            }
            large_put(which, kk, o, v);
        }
    }
}

// One k-step of the slab: the rank-1 update of the invocation's 8×8 block.
fn large_step(kk: u32, tx: u32, ty: u32) {
    let a0 = large_a[kk * LARGE_ROW + ty];
    let a1 = large_a[kk * LARGE_ROW + 16u + ty];
    let b0 = large_b[kk * LARGE_ROW + tx];
    let b1 = large_b[kk * LARGE_ROW + 16u + tx];
    large_acc[0] += a0.x * b0;
    large_acc[1] += a0.x * b1;
    large_acc[2] += a0.y * b0;
    large_acc[3] += a0.y * b1;
    large_acc[4] += a0.z * b0;
    large_acc[5] += a0.z * b1;
    large_acc[6] += a0.w * b0;
    large_acc[7] += a0.w * b1;
    large_acc[8] += a1.x * b0;
    large_acc[9] += a1.x * b1;
    large_acc[10] += a1.y * b0;
    large_acc[11] += a1.y * b1;
    large_acc[12] += a1.z * b0;
    large_acc[13] += a1.z * b1;
    large_acc[14] += a1.w * b0;
    large_acc[15] += a1.w * b1;
}

@compute @workgroup_size(16, 16)
fn gemm_large(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * LARGE;
    let col0 = wid.x * LARGE;
    let ks = gemm_k_range(wid.z);
    large_acc = array<vec4<f32>, 16>();
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + GEMM_KSTEP) {
        large_stage(0u, li, row0, params.m, k0, ks.y, params.trans_a == 1u, params.vec_a == 1u);
        large_stage(1u, li, col0, params.n, k0, ks.y, params.trans_b == 0u, params.vec_b == 1u);
        workgroupBarrier();
        large_step(0u, lid.x, lid.y); large_step(1u, lid.x, lid.y);
        large_step(2u, lid.x, lid.y); large_step(3u, lid.x, lid.y);
        large_step(4u, lid.x, lid.y); large_step(5u, lid.x, lid.y);
        large_step(6u, lid.x, lid.y); large_step(7u, lid.x, lid.y);
        large_step(8u, lid.x, lid.y); large_step(9u, lid.x, lid.y);
        large_step(10u, lid.x, lid.y); large_step(11u, lid.x, lid.y);
        large_step(12u, lid.x, lid.y); large_step(13u, lid.x, lid.y);
        large_step(14u, lid.x, lid.y); large_step(15u, lid.x, lid.y);
        workgroupBarrier();
    }
    // A copy for the epilogue's loop, so `large_acc` is never indexed dynamically.
    var sums = large_acc;
    for (var e = 0u; e < 16u; e = e + 1u) {
        let i = e / 2u;
        let row = row0 + (i / 4u) * 64u + lid.y * 4u + i % 4u;
        let col = col0 + (e % 2u) * 64u + lid.x * 4u;
        for (var j = 0u; j < 4u; j = j + 1u) {
            gemm_store(row, col + j, wid.z, sums[e][j]);
        }
    }
}
