// Monte Carlo estimate of E[x | y] for y = x + σg by self-normalised importance sampling with
// the prior as proposal: x_j ~ p (a Gaussian mixture, drawn here with Philox), weights
// w_j = exp(−‖y − x_j‖²/2σ²). Workgroup (c, q) handles query q and the samples
// [c·G, (c+1)·G) of the stream, G = samples_per_group; thread t takes every 64th of them.
// The host merges the groups' partial sums (each with its own shift M).
// Compiled after gpu/philox.wgsl.
//
// Output per (query, group) (stride 3 + 3d floats), all sums scaled by exp(−M):
//   [M, S0 = Σw, T0 = Σw², S1 = Σw x (d), T1 = Σw² x (d), T2 = Σw² x² (d)]
// from which the host forms x̂ = S1/S0 and the delta-method variance
//   Var x̂_i ≈ Σ_j w_j² (x_ji − x̂_i)² / S0² = (T2_i − 2x̂_i T1_i + x̂_i² T0) / S0².
//
// Sample j uses blocks [j·B, (j+1)·B) of stream `stream`, B = 1 + ceil(d/4): the first word
// of block j·B picks the component (inversion of the cumulative weights); the next blocks'
// normals z give x = μ_k + F_k z.

const MC_MAX_DIM: u32 = 16u;
const MC_THREADS: u32 = 64u;
const MC_FIELDS: u32 = 50u; // 2 + 3 * MC_MAX_DIM

struct McParams {
    n_queries: u32,
    dim: u32,
    n_components: u32,
    n_samples: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    inv_two_sigma2: f32,
    samples_per_group: u32,
    groups_per_query: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: McParams;
@group(0) @binding(1) var<storage, read> queries: array<f32>;        // Q × d
@group(0) @binding(2) var<storage, read> means: array<f32>;          // K × d
@group(0) @binding(3) var<storage, read> factors: array<f32>;        // K × d × d (F_k, row-major, zero-padded)
@group(0) @binding(4) var<storage, read> cumulative_weights: array<f32>; // K
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;     // Q × groups × (3 + 3d)

var<workgroup> shared_max: array<f32, MC_THREADS>;
var<workgroup> shared_sums: array<f32, 3200>; // MC_THREADS * MC_FIELDS

@compute @workgroup_size(64)
fn mc_posterior(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let q = wid.y;
    let group = wid.x;
    let begin = group * params.samples_per_group;
    let end = min(begin + params.samples_per_group, params.n_samples);
    let d = params.dim;
    let seed = vec2<u32>(params.seed_lo, params.seed_hi);
    let blocks_per_sample = 1u + (d + 3u) / 4u;
    var x: array<f32, MC_MAX_DIM>;
    var z: array<f32, MC_MAX_DIM>;
    var acc: array<f32, MC_FIELDS>; // S0, T0, S1[16], T1[16], T2[16]
    for (var f = 0u; f < MC_FIELDS; f = f + 1u) {
        acc[f] = 0.0;
    }
    var running_max = -3.4028235e38;
    for (var j = begin + t; j < end; j = j + MC_THREADS) {
        let first = j * blocks_per_sample;
        let pick = philox_uniform(philox_block(seed, params.stream, vec2<u32>(first, 0u)).x);
        var k = params.n_components - 1u;
        for (var c = 0u; c < params.n_components; c = c + 1u) {
            if (pick < cumulative_weights[c]) {
                k = c;
                break;
            }
        }
        for (var b = 0u; b * 4u < d; b = b + 1u) {
            let nz = philox_normals(philox_block(seed, params.stream, vec2<u32>(first + 1u + b, 0u)));
            for (var l = 0u; l < 4u; l = l + 1u) {
                if (b * 4u + l < d) {
                    z[b * 4u + l] = nz[l];
                }
            }
        }
        var dist2 = 0.0;
        for (var i = 0u; i < d; i = i + 1u) {
            var xi = means[k * d + i];
            for (var l = 0u; l < d; l = l + 1u) {
                xi = xi + factors[(k * d + i) * d + l] * z[l];
            }
            x[i] = xi;
            let r = queries[q * d + i] - xi;
            dist2 = dist2 + r * r;
        }
        let logw = -dist2 * params.inv_two_sigma2;
        if (logw > running_max) {
            let rescale = exp(running_max - logw);
            let rescale2 = rescale * rescale;
            acc[0] = acc[0] * rescale;
            acc[1] = acc[1] * rescale2;
            for (var i = 0u; i < d; i = i + 1u) {
                acc[2u + i] = acc[2u + i] * rescale;
                acc[2u + MC_MAX_DIM + i] = acc[2u + MC_MAX_DIM + i] * rescale2;
                acc[2u + 2u * MC_MAX_DIM + i] = acc[2u + 2u * MC_MAX_DIM + i] * rescale2;
            }
            running_max = logw;
        }
        let w = exp(logw - running_max);
        let w2 = w * w;
        acc[0] = acc[0] + w;
        acc[1] = acc[1] + w2;
        for (var i = 0u; i < d; i = i + 1u) {
            acc[2u + i] = acc[2u + i] + w * x[i];
            acc[2u + MC_MAX_DIM + i] = acc[2u + MC_MAX_DIM + i] + w2 * x[i];
            acc[2u + 2u * MC_MAX_DIM + i] = acc[2u + 2u * MC_MAX_DIM + i] + w2 * x[i] * x[i];
        }
    }
    // Workgroup max of the per-thread shifts, then rescale and tree-sum.
    shared_max[t] = running_max;
    workgroupBarrier();
    for (var stride = MC_THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            shared_max[t] = max(shared_max[t], shared_max[t + stride]);
        }
        workgroupBarrier();
    }
    let m = shared_max[0];
    workgroupBarrier();
    var scale = 0.0;
    if (running_max > -3.0e38) {
        scale = exp(running_max - m);
    }
    let scale2 = scale * scale;
    shared_sums[t * MC_FIELDS] = acc[0] * scale;
    shared_sums[t * MC_FIELDS + 1u] = acc[1] * scale2;
    for (var f = 2u; f < MC_FIELDS; f = f + 1u) {
        var s = scale2;
        if (f < 2u + MC_MAX_DIM) {
            s = scale;
        }
        shared_sums[t * MC_FIELDS + f] = acc[f] * s;
    }
    workgroupBarrier();
    for (var stride = MC_THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            for (var f = 0u; f < MC_FIELDS; f = f + 1u) {
                shared_sums[t * MC_FIELDS + f] =
                    shared_sums[t * MC_FIELDS + f] + shared_sums[(t + stride) * MC_FIELDS + f];
            }
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let base = (q * params.groups_per_query + group) * (3u + 3u * d);
        sums[base] = m;
        sums[base + 1u] = shared_sums[0];
        sums[base + 2u] = shared_sums[1];
        for (var i = 0u; i < d; i = i + 1u) {
            sums[base + 3u + i] = shared_sums[2u + i];
            sums[base + 3u + d + i] = shared_sums[2u + MC_MAX_DIM + i];
            sums[base + 3u + 2u * d + i] = shared_sums[2u + 2u * MC_MAX_DIM + i];
        }
    }
}
