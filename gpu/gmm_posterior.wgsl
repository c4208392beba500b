// Batched closed forms of a Gaussian mixture's noisy density p_σ = Σ_k w_k N(μ_k, C_k),
// C_k = Σ_k + σ²I, for a batch of points y (one invocation per point):
//   logits_k       = log w_k − ½(d log 2π + log det C_k) − ½ δ_kᵀ C_k⁻¹ δ_k,   δ_k = y − μ_k
//   responsibility = softmax(logits)                    (online max-shift: log-sum-exp stable)
//   score          = −Σ_k ρ_k C_k⁻¹ δ_k                 (density route)
//   posterior mean = Σ_k ρ_k (μ_k + G_k δ_k),  G_k = Σ_k C_k⁻¹   (Bayes route, Wiener gain)
// The host passes C_k⁻¹, G_k and the log normalisers, computed in f64 and rounded to f32.

const MAX_DIM: u32 = 64u;

struct GmmParams {
    n_points: u32,
    dim: u32,
    n_components: u32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> params: GmmParams;
@group(0) @binding(1) var<storage, read> points: array<f32>;          // n × d
@group(0) @binding(2) var<storage, read> means: array<f32>;           // K × d
@group(0) @binding(3) var<storage, read> precisions: array<f32>;      // K × d × d, C_k⁻¹
@group(0) @binding(4) var<storage, read> gains: array<f32>;           // K × d × d, Σ_k C_k⁻¹
@group(0) @binding(5) var<storage, read> log_norms: array<f32>;       // K
@group(0) @binding(6) var<storage, read_write> responsibilities: array<f32>; // n × K
@group(0) @binding(7) var<storage, read_write> posterior_mean: array<f32>;   // n × d
@group(0) @binding(8) var<storage, read_write> score: array<f32>;            // n × d

@compute @workgroup_size(64)
fn gmm_posterior(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x + gid.y * params.groups_x * 64u;
    if (p >= params.n_points) {
        return;
    }
    let d = params.dim;
    let kk = params.n_components;
    var delta: array<f32, MAX_DIM>;
    var acc_score: array<f32, MAX_DIM>;
    var acc_mean: array<f32, MAX_DIM>;
    for (var i = 0u; i < d; i = i + 1u) {
        acc_score[i] = 0.0;
        acc_mean[i] = 0.0;
    }
    var running_max = -3.4028235e38;
    var running_sum = 0.0;
    for (var k = 0u; k < kk; k = k + 1u) {
        for (var i = 0u; i < d; i = i + 1u) {
            delta[i] = points[p * d + i] - means[k * d + i];
        }
        // quad = δᵀ C⁻¹ δ
        var quad = 0.0;
        for (var i = 0u; i < d; i = i + 1u) {
            var row = 0.0;
            for (var j = 0u; j < d; j = j + 1u) {
                row = row + precisions[(k * d + i) * d + j] * delta[j];
            }
            quad = quad + delta[i] * row;
        }
        let logit = log_norms[k] - 0.5 * quad;
        responsibilities[p * kk + k] = logit;
        if (logit > running_max) {
            let rescale = exp(running_max - logit);
            running_sum = running_sum * rescale;
            for (var i = 0u; i < d; i = i + 1u) {
                acc_score[i] = acc_score[i] * rescale;
                acc_mean[i] = acc_mean[i] * rescale;
            }
            running_max = logit;
        }
        let weight = exp(logit - running_max);
        running_sum = running_sum + weight;
        for (var i = 0u; i < d; i = i + 1u) {
            var prec_row = 0.0;
            var gain_row = 0.0;
            for (var j = 0u; j < d; j = j + 1u) {
                prec_row = prec_row + precisions[(k * d + i) * d + j] * delta[j];
                gain_row = gain_row + gains[(k * d + i) * d + j] * delta[j];
            }
            acc_score[i] = acc_score[i] - weight * prec_row;
            acc_mean[i] = acc_mean[i] + weight * (means[k * d + i] + gain_row);
        }
    }
    for (var i = 0u; i < d; i = i + 1u) {
        score[p * d + i] = acc_score[i] / running_sum;
        posterior_mean[p * d + i] = acc_mean[i] / running_sum;
    }
    for (var k = 0u; k < kk; k = k + 1u) {
        let logit = responsibilities[p * kk + k];
        responsibilities[p * kk + k] = exp(logit - running_max) / running_sum;
    }
}
