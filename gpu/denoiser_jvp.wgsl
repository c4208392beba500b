// Denoiser evaluation and Jacobian-vector product: for each point p, with input y = points[p]
// and probe z = probes[p], writes f(y) and (∇f(y)) z to out[p] = [f (d), Jz (d)].
// One invocation per point; points are spread over a 2-D grid of 64-wide workgroups, flat index
// p = gid.x + gid.y · grid_x · 64. Each entry point is one architecture; all share the bindings
// (the `weights` layout is documented per entry point and produced by src/gpu/denoiser_jvp.rs).
// Hutchinson's divergence estimate zᵀ∇f(y)z and SURE's per-sample terms are formed on the host.

const JVP_MAX_HIDDEN: u32 = 256u;
const JVP_MAX_COMPONENTS: u32 = 32u;

struct JvpParams {
    n_points: u32,
    dim: u32,
    width: u32, // hidden width h (mlp), number of powers P (power map), components K (gmm)
    grid_x: u32,
}

@group(0) @binding(0) var<uniform> params: JvpParams;
@group(0) @binding(1) var<storage, read> points: array<f32>;   // n × d
@group(0) @binding(2) var<storage, read> probes: array<f32>;   // n × d
@group(0) @binding(3) var<storage, read> weights: array<f32>;  // per architecture
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // n × 2d

fn jvp_point(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * params.grid_x * 64u;
}

// weights = [W (d×d, row-major), b (d)]: f = W y + b, Jz = W z.
@compute @workgroup_size(64)
fn jvp_affine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = jvp_point(gid);
    if (p >= params.n_points) {
        return;
    }
    let d = params.dim;
    for (var i = 0u; i < d; i = i + 1u) {
        var f = weights[d * d + i];
        var jz = 0.0;
        for (var j = 0u; j < d; j = j + 1u) {
            let w = weights[i * d + j];
            f = f + w * points[p * d + j];
            jz = jz + w * probes[p * d + j];
        }
        out[p * 2u * d + i] = f;
        out[p * 2u * d + d + i] = jz;
    }
}

// weights = [τ]: f_i = sign(y_i) max(|y_i| − τ, 0), (Jz)_i = z_i 1{|y_i| > τ}.
@compute @workgroup_size(64)
fn jvp_soft_threshold(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = jvp_point(gid);
    if (p >= params.n_points) {
        return;
    }
    let d = params.dim;
    let tau = weights[0];
    for (var i = 0u; i < d; i = i + 1u) {
        let y = points[p * d + i];
        var f = 0.0;
        var jz = 0.0;
        if (abs(y) > tau) {
            f = sign(y) * (abs(y) - tau);
            jz = probes[p * d + i];
        }
        out[p * 2u * d + i] = f;
        out[p * 2u * d + d + i] = jz;
    }
}

// weights = [W_1, …, W_P (each d×d, row-major), b (d)]:
// f = b + Σ_q W_q y^{∘q}, Jz = Σ_q q W_q (y^{∘(q−1)} ∘ z).
@compute @workgroup_size(64)
fn jvp_power_map(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = jvp_point(gid);
    if (p >= params.n_points) {
        return;
    }
    let d = params.dim;
    let n_powers = params.width;
    for (var i = 0u; i < d; i = i + 1u) {
        var f = weights[n_powers * d * d + i];
        var jz = 0.0;
        for (var j = 0u; j < d; j = j + 1u) {
            let y = points[p * d + j];
            let z = probes[p * d + j];
            var power = 1.0; // y^{q−1}
            for (var q = 0u; q < n_powers; q = q + 1u) {
                let w = weights[(q * d + i) * d + j];
                jz = jz + w * f32(q + 1u) * power * z;
                power = power * y;
                f = f + w * power;
            }
        }
        out[p * 2u * d + i] = f;
        out[p * 2u * d + d + i] = jz;
    }
}

// weights = [W1 (h×d), b1 (h), W2 (d×h), b2 (d)]: with a = W1 y + b1, t = tanh(a),
// f = W2 t + b2 and Jz = W2 ((1 − t²) ∘ (W1 z)).
@compute @workgroup_size(64)
fn jvp_mlp(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = jvp_point(gid);
    if (p >= params.n_points) {
        return;
    }
    let d = params.dim;
    let h = params.width;
    var act: array<f32, JVP_MAX_HIDDEN>;
    var slope_z: array<f32, JVP_MAX_HIDDEN>;
    for (var k = 0u; k < h; k = k + 1u) {
        var a = weights[h * d + k];
        var s = 0.0;
        for (var j = 0u; j < d; j = j + 1u) {
            let w = weights[k * d + j];
            a = a + w * points[p * d + j];
            s = s + w * probes[p * d + j];
        }
        let t = stable_tanh(a);
        act[k] = t;
        slope_z[k] = (1.0 - t * t) * s;
    }
    let w2 = h * d + h;
    let b2 = w2 + d * h;
    for (var i = 0u; i < d; i = i + 1u) {
        var f = weights[b2 + i];
        var jz = 0.0;
        for (var k = 0u; k < h; k = k + 1u) {
            let w = weights[w2 + i * h + k];
            f = f + w * act[k];
            jz = jz + w * slope_z[k];
        }
        out[p * 2u * d + i] = f;
        out[p * 2u * d + d + i] = jz;
    }
}

// The Bayes denoiser of a Gaussian mixture and its exact directional derivative.
// weights, per component k (stride 2d² + d + 1): [μ_k (d), P_k = (Σ_k + σ²I)⁻¹ (d×d),
// G_k = Σ_k P_k (d×d), n_k = log w_k − ½ log det 2π(Σ_k + σ²I)].
// With r_k = y − μ_k: logits ℓ_k = n_k − ½ r_kᵀP_k r_k, their derivatives along z
// δ_k = −(P_k r_k)·z, ρ = softmax(ℓ), m_k = μ_k + G_k r_k:
// f = Σ ρ_k m_k and Jz = Σ ρ_k G_k z + Σ ρ_k (δ_k − δ̄) m_k, δ̄ = Σ ρ_k δ_k.
@compute @workgroup_size(64)
fn jvp_gmm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = jvp_point(gid);
    if (p >= params.n_points) {
        return;
    }
    let d = params.dim;
    let n_comp = params.width;
    let stride = 2u * d * d + d + 1u;
    var logit: array<f32, JVP_MAX_COMPONENTS>;
    var slope: array<f32, JVP_MAX_COMPONENTS>;
    var lmax = -3.4028235e38;
    for (var k = 0u; k < n_comp; k = k + 1u) {
        let base = k * stride;
        var quad = 0.0;
        var dz = 0.0;
        for (var i = 0u; i < d; i = i + 1u) {
            var pr = 0.0;
            for (var j = 0u; j < d; j = j + 1u) {
                pr = pr + weights[base + d + i * d + j] * (points[p * d + j] - weights[base + j]);
            }
            quad = quad + (points[p * d + i] - weights[base + i]) * pr;
            dz = dz + pr * probes[p * d + i];
        }
        logit[k] = weights[base + d + 2u * d * d] - 0.5 * quad;
        slope[k] = -dz;
        lmax = max(lmax, logit[k]);
    }
    var total = 0.0;
    var mean_slope = 0.0;
    for (var k = 0u; k < n_comp; k = k + 1u) {
        logit[k] = exp(logit[k] - lmax); // unnormalised responsibility
        total = total + logit[k];
        mean_slope = mean_slope + logit[k] * slope[k];
    }
    mean_slope = mean_slope / total;
    for (var i = 0u; i < d; i = i + 1u) {
        var f = 0.0;
        var jz = 0.0;
        for (var k = 0u; k < n_comp; k = k + 1u) {
            let base = k * stride;
            let rho = logit[k] / total;
            var m = weights[base + i];
            var gz = 0.0;
            for (var j = 0u; j < d; j = j + 1u) {
                let g = weights[base + d + d * d + i * d + j];
                m = m + g * (points[p * d + j] - weights[base + j]);
                gz = gz + g * probes[p * d + j];
            }
            f = f + rho * m;
            jz = jz + rho * (gz + (slope[k] - mean_slope) * m);
        }
        out[p * 2u * d + i] = f;
        out[p * 2u * d + d + i] = jz;
    }
}
