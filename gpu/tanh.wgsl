// The one tanh of the kernels: tanh(z) = sign(z)(1 − e^{−2|z|})/(1 + e^{−2|z|}), which cannot
// overflow for any |z|. Its f32 error bound (12u absolutely) is derived once, in
// src/numerics/activation.rs (`activation_rounding`), for every kernel that includes this file.
fn stable_tanh(z: f32) -> f32 {
    let e = exp(-2.0 * abs(z));
    return sign(z) * ((1.0 - e) / (1.0 + e));
}
