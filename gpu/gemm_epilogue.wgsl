// The GEMM family's shared part: parameters, the output and epilogue bindings, the epilogues and
// the store every kernel ends with (prepended to gemm.wgsl, gemm_large.wgsl and gemm_split.wgsl).
//
// Matrix product with a fused epilogue, row-major f32, op = identity or transpose:
//   t = α·op(A)·op(B) + β·D                          (D read only when β ≠ 0)
//   epilogue 0 (activation):       C = φ(t + bias)   bias: none, per row (m) or per column (n)
//   epilogue 1 (derivative mask):  C = t ⊙ φ'(H)     φ' from the stored activation output H
//   epilogue 2 (power):            C = (s_col ⊙ t)^k per-column scale s (n), integer k ≥ 1
//   epilogue 3 (split-K partial):  c[slice·m·n + i·n + j] = Σ_{l ∈ slice} op(A)_il op(B)_lj
// C, D and H are m×n, op(A) is m×k, op(B) is k×n. A is stored m×k (or k×m when trans_a = 1),
// B is stored k×n (or n×k when trans_b = 1). φ: 0 identity, 1 tanh, 2 ReLU, 3 leaky ReLU(slope).
// The plain product is epilogue 0 with no bias and φ = identity.
//
// Split-K: k is cut into `splits` contiguous slices of whole 16-wide k-steps, slice s covering
// steps [⌊s·N/S⌋, ⌊(s+1)·N/S⌋) of the N = ⌈k/16⌉ (workgroup z = s). With S = 1 the one slice
// is all of k. Each entry of a slice is summed sequentially over the slice's k; the slices'
// partial sums are added in slice order by gemm_split_reduce (gemm_split.wgsl), which then
// applies α, β·D and the epilogue (error bounds in src/gpu/gemm.rs).

const GEMM_KSTEP: u32 = 16u;
const GEMM_PARTIAL: u32 = 3u;

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    epilogue: u32,  // 0 activation, 1 derivative mask, 2 power, 3 split-K partial
    act: u32,       // φ (epilogues 0 and 1)
    bias_mode: u32, // epilogue 0: 0 none, 1 per row, 2 per column
    slope: f32,     // leaky ReLU slope
    power: u32,     // epilogue 2: k
    splits: u32,    // S ≥ 1, the number of k slices
    vec_a: u32,     // gemm_large: A's stored rows are a multiple of 4 long (vec4 loads)
    vec_b: u32,     // gemm_large: B's stored rows are a multiple of 4 long (vec4 loads)
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read_write> c: array<f32>; // C, or the S·m·n partials
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read> vec_e: array<f32>; // bias (epilogue 0) or scale s (2)
@group(0) @binding(4) var<storage, read> aux: array<f32>;   // H (epilogue 1)

// [k_begin, k_end) of split-K slice `slice` (module comment).
fn gemm_k_range(slice: u32) -> vec2<u32> {
    let steps = (params.k + GEMM_KSTEP - 1u) / GEMM_KSTEP;
    let begin = GEMM_KSTEP * (slice * steps / params.splits);
    let end = GEMM_KSTEP * ((slice + 1u) * steps / params.splits);
    return vec2<u32>(min(begin, params.k), min(end, params.k));
}

// φ(z); tanh is `stable_tanh` (gpu/tanh.wgsl), which cannot overflow.
fn gemm_activation(z: f32) -> f32 {
    switch params.act {
        case 1u: { return stable_tanh(z); }
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

// Stores the sum `acc` of entry (row, col) over k slice `slice`: the raw partial sum in split-K's
// first pass, else the epilogue's value in C. Entries outside m×n (tile padding) are dropped.
fn gemm_store(row: u32, col: u32, slice: u32, acc: f32) {
    if (row >= params.m || col >= params.n) {
        return;
    }
    let idx = row * params.n + col;
    if (params.epilogue == GEMM_PARTIAL) {
        c[slice * params.m * params.n + idx] = acc;
    } else {
        c[idx] = gemm_epilogue(row, col, acc);
    }
}
