// One DDIM step with an affine denoiser, for a batch of states x (n × d, row-major):
//   f(x) = W (x / α_ℓ) + b                       (the denoiser queried at x_t/α_t)
//   x'   = k_ℓ x + a_ℓ f(x),  k_ℓ = σ_{ℓ−1}/σ_ℓ,  a_ℓ = α_{ℓ−1} − k_ℓ α_ℓ   (book eq.3.2.87)
// One invocation per element (p, i); the host runs the L steps, ping-ponging two buffers.

struct DdimParams {
    n_rows: u32,
    dim: u32,
    groups_x: u32,
    pad: u32,
    k: f32,
    a: f32,
    inv_alpha: f32,
    pad2: f32,
}

@group(0) @binding(0) var<uniform> params: DdimParams;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;     // n × d
@group(0) @binding(2) var<storage, read> weight: array<f32>;   // d × d, row-major
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // d
@group(0) @binding(4) var<storage, read_write> x_out: array<f32>; // n × d

@compute @workgroup_size(64)
fn ddim_affine_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.groups_x * 64u;
    let d = params.dim;
    if (e >= params.n_rows * d) {
        return;
    }
    let p = e / d;
    let i = e % d;
    var acc = 0.0;
    for (var j = 0u; j < d; j = j + 1u) {
        acc = acc + weight[i * d + j] * x_in[p * d + j];
    }
    let f = bias[i] + params.inv_alpha * acc;
    x_out[e] = params.k * x_in[e] + params.a * f;
}
