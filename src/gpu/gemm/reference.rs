//! The f64 references of the GEMM family with elementwise bounds on the f32 kernels' error
//! (and on the tensor-core kernel's, with f16 operands).

use super::host::check_host_product;
use super::*;

/// Bound on the kernel's error in `φ'` read off a host `h` that is rounded to f32 on upload:
/// tanh `1 − ĥ²` errs by `γ₄h² + u|1 − h²|` (ĥ's rounding doubled by the square, the square
/// and the subtraction); a (leaky) ReLU mask is exact unless `0 < |h| < 2⁻¹²⁶`, where rounding
/// or flushing to zero may flip it (`|1 − slope|`), and a leaky mask carries the slope's f32
/// rounding `u·slope`.
fn mask_rounding(activation: Activation, h: f64) -> f64 {
    let flip = h != 0.0 && h.abs() < f64::from(f32::MIN_POSITIVE);
    match activation {
        Activation::Identity => 0.0,
        Activation::Tanh => gamma_f32(4) * h * h + U * (1.0 - h * h).abs(),
        Activation::Relu => f64::from(u8::from(flip)),
        Activation::LeakyRelu { slope } => {
            let rounding = if h > 0.0 { 0.0 } else { U * slope.abs() };
            rounding + if flip { (1.0 - slope).abs() } else { 0.0 }
        }
    }
}

/// The f64 reference of [`gemm_fused`] and the elementwise bound on the kernel's f32 error.
/// With `t = α·op(A)·op(B) + β·D`, `Δt = γ_{k+5}(|α|·|op(A)||op(B)| + |β|·|D|)` (module doc):
/// * none: `|Ĉ − C| ≤ Δt`;
/// * activation: `Lip(φ)·γ_{k+7}(|α||A||B| + |β||D| + |bias|) + ρ_φ(t + bias)`, ρ the
///   [`activation_rounding`];
/// * derivative mask, `C = t·m`, `m = φ'(H)` with error `Δm` ([`derivative_from_output`], and
///   the mask's rounding: tanh `γ₄H² + u|1 − H²|`, a (leaky) ReLU mask exact but for the slope's
///   rounding and `H` below f32's normal range): `|m|Δt + Δm(|t| + Δt) + u(|t| + Δt)(|m| + Δm)`;
/// * power, `v = s_j·t`: s rounded to f32 and one product give `|v̂ − v| ≤ δv =
///   |s_j|Δt(1 + u)² + γ₂|v|`; by the mean value theorem `|v̂^k − v^k| ≤ k(|v| + δv)^{k−1}δv`,
///   and the k − 1 products of `v̂^k` add `γ_{k−1}(|v| + δv)^k`, plus `2⁻¹²⁶` for a power
///   flushed to zero. Relative to `|C| = |v|^k` that is, to first order,
///   `k·(γ_{k+5}·κ + 2u) + (k − 1)u` with `κ = (|α||A||B| + |β||D|)/|t|` the dot product's
///   condition number: the dot-product error, amplified k times by the power.
///
/// Returns `(C, bound)`.
pub fn gemm_fused_reference(p: &HostProduct) -> Result<(Mat, Mat)> {
    fused_reference(p, false)
}

/// The f64 reference of a product run by [`GemmKernel::TensorCoresF16`] and the elementwise
/// bound on its error. Each operand x (already rounded to f32 on upload) is converted to f16,
/// which WGSL lets round to either neighbour: `|x̃ − x| ≤ e(x) = (2⁻¹⁰ + 2⁻²³)|x| + 2⁻²⁴` (one
/// f16 ulp of a normal number, the f32 rounding, and the subnormal spacing 2⁻²⁴), valid for
/// `|x| ≤ 65504` (larger values become ∞: the caller's precondition). A product of two f16
/// numbers is exact in f32; the tensor cores add them into the f32 accumulator in an unspecified
/// order and, on NVIDIA hardware, possibly truncating, so each addition is charged `2u`
/// (`γ'_n = 2nu/(1 − 2nu)`). Hence the f32 kernels' `Δt` becomes
/// `|α|Σ_l(e(a_l)|b_l| + |a_l|e(b_l) + e(a_l)e(b_l)) + γ'_{k+5}(|α|Σ_l(|a_l| + e(a_l))(|b_l| +
/// e(b_l)) + |β||D|)` (and with a bias `γ'_{k+7}` over the same magnitudes plus `|bias|`); the
/// epilogues then propagate it exactly as in [`gemm_fused_reference`]. The first sum is about
/// 2⁻⁹ relative to `|α||A||B|`: some 3 decimal digits, against f32's 7.
pub fn gemm_tensor_core_reference(p: &HostProduct) -> Result<(Mat, Mat)> {
    fused_reference(p, true)
}

/// `e(x)`, the bound on converting an f32 operand to f16 ([`gemm_tensor_core_reference`]).
fn f16_conversion_error(x: f64) -> f64 {
    (2f64.powi(-10) + 2f64.powi(-23)) * x.abs() + 2f64.powi(-24)
}

/// `γ'_n = 2nu/(1 − 2nu)`: n additions that may truncate (error `2u` each).
fn gamma_truncating(n: usize) -> f64 {
    let nu = 2.0 * n as f64 * U;
    nu / (1.0 - nu)
}

/// [`gemm_fused_reference`] of `p` with each of `epilogues` in place of its own, the dot
/// products formed once for all of them (a parity test of every epilogue of one product).
pub fn gemm_fused_references(
    p: &HostProduct,
    epilogues: &[Epilogue<&Mat>],
) -> Result<Vec<(Mat, Mat)>> {
    fused_references(p, epilogues, false)
}

/// [`gemm_tensor_core_reference`] of `p` with each of `epilogues` in place of its own, the dot
/// products formed once for all of them.
pub fn gemm_tensor_core_references(
    p: &HostProduct,
    epilogues: &[Epilogue<&Mat>],
) -> Result<Vec<(Mat, Mat)>> {
    fused_references(p, epilogues, true)
}

/// [`gemm_fused_reference`] (f32 operands) or [`gemm_tensor_core_reference`]
/// (`f16_operands`).
fn fused_reference(p: &HostProduct, f16_operands: bool) -> Result<(Mat, Mat)> {
    let mut all = fused_references(p, &[p.epilogue], f16_operands)?;
    Ok(all.remove(0))
}

/// The sums of entry (i, j) of `op(A)·op(B)` at `i·n + j`: `Σ_l x_l y_l` and `Σ_l |x_l y_l|`,
/// and with f16 operands the conversion term `Σ_l(e(x)|y| + |x|e(y) + e(x)e(y))` and the
/// magnitude `Σ_l(|x| + e(x))(|y| + e(y))` ([`gemm_tensor_core_reference`]).
struct EntrySums {
    dot: Vec<f64>,
    magnitude: Vec<f64>,
    conversion: Vec<f64>,
    magnitude16: Vec<f64>,
}

/// `p` with each of `epilogues` (p's own is not used): [`EntrySums`] once, then each epilogue.
fn fused_references(
    p: &HostProduct,
    epilogues: &[Epilogue<&Mat>],
    f16_operands: bool,
) -> Result<Vec<(Mat, Mat)>> {
    let mut shape = check_host_product(p)?;
    for &epilogue in epilogues {
        shape = check_host_product(&HostProduct { epilogue, ..*p })?;
    }
    let sums = entry_sums(p, shape, f16_operands);
    Ok(epilogues
        .iter()
        .map(|&epilogue| {
            apply_epilogue(&HostProduct { epilogue, ..*p }, shape, &sums, f16_operands)
        })
        .collect())
}

/// [`EntrySums`] of the m×n×k product `p`, each a sequential sum over l.
fn entry_sums(p: &HostProduct, (m, n, k): (usize, usize, usize), f16_operands: bool) -> EntrySums {
    let oa = if p.trans_a {
        p.a.transpose().to_owned()
    } else {
        p.a.clone()
    };
    let ob = if p.trans_b {
        p.b.transpose().to_owned()
    } else {
        p.b.clone()
    };
    // rows of op(A) and columns of op(B) as contiguous slices (faer's Mat is column-major)
    let a_rows: Vec<f64> = (0..m)
        .flat_map(|i| (0..k).map(move |l| (i, l)))
        .map(|il| oa[il])
        .collect();
    let b_cols: Vec<f64> = (0..n)
        .flat_map(|j| (0..k).map(move |l| (l, j)))
        .map(|lj| ob[lj])
        .collect();
    let mut sums = EntrySums {
        dot: Vec::with_capacity(m * n),
        magnitude: Vec::with_capacity(m * n),
        conversion: Vec::with_capacity(m * n),
        magnitude16: Vec::with_capacity(m * n),
    };
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut mag) = (0.0, 0.0);
            let (mut conversion, mut mag16) = (0.0, 0.0);
            for (x, y) in a_rows[i * k..][..k].iter().zip(&b_cols[j * k..][..k]) {
                s += x * y;
                mag += (x * y).abs();
                if f16_operands {
                    let (ex, ey) = (f16_conversion_error(*x), f16_conversion_error(*y));
                    conversion += ex * y.abs() + x.abs() * ey + ex * ey;
                    mag16 += (x.abs() + ex) * (y.abs() + ey);
                }
            }
            sums.dot.push(s);
            sums.magnitude.push(mag);
            sums.conversion.push(conversion);
            sums.magnitude16.push(mag16);
        }
    }
    sums
}

/// The value and bound of `p` (its epilogue) from the [`EntrySums`] of its product.
fn apply_epilogue(
    p: &HostProduct,
    (m, n, k): (usize, usize, usize),
    sums: &EntrySums,
    f16_operands: bool,
) -> (Mat, Mat) {
    let mut value = Mat::zeros(m, n);
    let mut bound = Mat::zeros(m, n);
    for i in 0..m {
        for j in 0..n {
            let entry = i * n + j;
            let (s, mag, conversion, mag16) = (
                sums.dot[entry],
                sums.magnitude[entry],
                sums.conversion[entry],
                sums.magnitude16[entry],
            );
            let dij = p.d.map_or(0.0, |d| d[(i, j)]);
            let t = p.alpha * s + p.beta * dij;
            let mag_t = p.alpha.abs() * mag + p.beta.abs() * dij.abs();
            // Δt = converted + γ₅·magnitude; with a bias b, Δ(t + b) = converted + γ₇·(magnitude + |b|).
            let (converted, magnitude, g5, g7) = if f16_operands {
                (
                    p.alpha.abs() * conversion,
                    p.alpha.abs() * mag16 + p.beta.abs() * dij.abs(),
                    gamma_truncating(k + 5),
                    gamma_truncating(k + 7),
                )
            } else {
                (0.0, mag_t, gamma_f32(k + 5), gamma_f32(k + 7))
            };
            let dt = converted + g5 * magnitude;
            let (v, e) = match p.epilogue {
                Epilogue::None => (t, dt),
                Epilogue::Activation { bias, activation } => {
                    let b = match bias {
                        Bias::None => 0.0,
                        Bias::PerRow(v) => v[(i, 0)],
                        Bias::PerColumn(v) => v[(0, j)],
                    };
                    let tb = t + b;
                    let dtb = converted + g7 * (magnitude + b.abs());
                    (
                        activation.apply(tb),
                        activation.lipschitz() * dtb + activation_rounding(activation, tb),
                    )
                }
                Epilogue::DerivativeMask { activation, output } => {
                    let h = output[(i, j)];
                    let mk = derivative_from_output(activation, h);
                    let dm = mask_rounding(activation, h);
                    (
                        t * mk,
                        mk.abs() * dt + dm * (t.abs() + dt) + U * (t.abs() + dt) * (mk.abs() + dm),
                    )
                }
                Epilogue::Power { scale, power } => {
                    let sj = scale[(0, j)];
                    let v = sj * t;
                    let dv = sj.abs() * dt * (1.0 + U).powi(2) + gamma_f32(2) * v.abs();
                    let kp = power as i32;
                    let reach = v.abs() + dv;
                    (
                        v.powi(kp),
                        f64::from(power) * reach.powi(kp - 1) * dv
                            + gamma_f32(power as usize - 1) * reach.powi(kp)
                            + f64::from(f32::MIN_POSITIVE),
                    )
                }
            };
            value[(i, j)] = v;
            bound[(i, j)] = e;
        }
    }
    (value, bound)
}

/// The f64 reference of [`gemm`] and the elementwise bound on the kernel's f32 error,
/// `γ_{k+5}(|α|·|op(A)||op(B)| + |β|·|D|)`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_reference(
    a: &Mat,
    trans_a: bool,
    b: &Mat,
    trans_b: bool,
    alpha: f64,
    beta: f64,
    d: Option<&Mat>,
) -> Result<(Mat, Mat)> {
    gemm_fused_reference(&HostProduct {
        alpha,
        beta,
        d,
        ..HostProduct::new((a, trans_a), (b, trans_b))
    })
}
