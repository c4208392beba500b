// The diagonal-tile step of the tiled Cholesky factorisation of gpu::gaussian, in f32 on the GPU:
// one workgroup of 256 invocations factors one n×n tile A = L·Lᵀ in place and inverts L.
//   cholesky_tile:      right-looking, column j = 0 … n−1:  L_jj = √A_jj,  L_ij = A_ij/L_jj (i > j),
//                       A_ik ← A_ik − L_ij·L_kj (j < k ≤ i); only the lower triangle of `tile` is
//                       read and written (its upper triangle keeps A). diagonal[j] = L_jj, or the
//                       pivot A_jj itself where it is ≤ 0 or not a number (the tile is not positive
//                       definite in f32; the host refuses it, and the factorisation goes on with a
//                       pivot of 1 so that no invocation divides by 0).
//   invert_lower_tile:  W = L⁻¹ by forward substitution, invocation t solving columns t, t + 256, …:
//                       W_cc = 1/L_cc,  W_ic = −(Σ_{k=c}^{i−1} L_ik·W_kc)/L_ii (i > c),  W_ic = 0 (i < c).
// Every step of a column ends at a storage barrier, so each invocation reads what the others
// wrote; each row (factor) or column (inverse) is written by one invocation only.

struct CholeskyParams {
    // the tile's side
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: CholeskyParams;
// A, overwritten by L in its lower triangle (row-major n×n)
@group(0) @binding(1) var<storage, read_write> tile: array<f32>;
// W = L⁻¹ (row-major n×n, zero above the diagonal)
@group(0) @binding(2) var<storage, read_write> inverse: array<f32>;
// L_jj, or the offending pivot
@group(0) @binding(3) var<storage, read_write> diagonal: array<f32>;

const WORKERS: u32 = 256u;

// Both entry points statically use every binding, so their automatic layouts agree.
fn keep_bindings() {
    _ = tile[0];
    _ = inverse[0];
    _ = diagonal[0];
}

@compute @workgroup_size(256)
fn cholesky_tile(@builtin(local_invocation_index) t: u32) {
    keep_bindings();
    let n = params.n;
    for (var j = 0u; j < n; j = j + 1u) {
        let a = tile[j * n + j];
        var pivot = 1.0;
        if (a > 0.0) {
            pivot = sqrt(a);
        }
        storageBarrier();
        if (t == 0u) {
            tile[j * n + j] = pivot;
            diagonal[j] = select(a, pivot, a > 0.0);
        }
        for (var i = j + 1u + t; i < n; i = i + WORKERS) {
            tile[i * n + j] = tile[i * n + j] / pivot;
        }
        storageBarrier();
        for (var i = j + 1u + t; i < n; i = i + WORKERS) {
            let l_ij = tile[i * n + j];
            for (var k = j + 1u; k <= i; k = k + 1u) {
                tile[i * n + k] = tile[i * n + k] - l_ij * tile[k * n + j];
            }
        }
        storageBarrier();
    }
}

@compute @workgroup_size(256)
fn invert_lower_tile(@builtin(local_invocation_index) t: u32) {
    keep_bindings();
    let n = params.n;
    for (var c = t; c < n; c = c + WORKERS) {
        for (var i = 0u; i < c; i = i + 1u) {
            inverse[i * n + c] = 0.0;
        }
        inverse[c * n + c] = 1.0 / tile[c * n + c];
        for (var i = c + 1u; i < n; i = i + 1u) {
            var s = 0.0;
            for (var k = c; k < i; k = k + 1u) {
                s = s + tile[i * n + k] * inverse[k * n + c];
            }
            inverse[i * n + c] = -s / tile[i * n + i];
        }
    }
}
