//! `bottleneck_manifold` — Levine–Weiss Thm 6 (§2.3): a denoiser `f = D ∘ E` through an
//! h-wide code has `rank ∇_y f(y, σ) ≤ h` at every y, so each step's outputs lie in the image
//! `D_σ(ℝʰ)` and the samples (the last step's outputs) lie on an h-dimensional set.
//!
//! Routes compared:
//! * rank from the exact Jacobian (chain rule, f64 SVD) and from central differences of the
//!   black-box map (SVD of the difference quotient), each against a derived singular-value
//!   threshold (Weyl: `σ_{h+1}(J + E) ≤ ‖E‖₂ ≤ ‖E‖_F` when rank J ≤ h);
//! * the σ-uniform statement (one image for all σ) by the rank of the joint Jacobian in
//!   `(y, ln σ)` and by distance to the decoder curve `D(ℝ)` found by a global search (h = 1).

use super::{Check, Verdict, CPU_BACKEND};
use crate::denoisers::bottleneck::{
    singular_values, Activation, Architecture, BottleneckNet, SigmaInput,
};
use crate::denoisers::Denoiser;
use crate::error::{Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::rng::Rng;
use crate::stats::finite_difference;

/// The theorem id.
pub const THEOREM: &str = "bottleneck_manifold";

/// Backward error of faer's SVD on an n-column matrix, relative to `σ₁`: `16·n·ε` (Householder
/// bidiagonalisation and implicit QR are backward stable with an `O(n)ε` constant; 16 covers
/// the constants of Demmel's Thm 5.3 for the sizes here).
fn svd_error(n: usize, sigma_1: f64) -> f64 {
    16.0 * n as f64 * EPS * sigma_1
}

fn frobenius(m: &Mat) -> f64 {
    m.norm_l2()
}

fn abs(m: &Mat) -> Mat {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)].abs())
}

/// `σ_{h+1}` (0 when `h ≥ min` dimension) of a matrix's singular values.
fn tail(s: &[f64], h: usize) -> f64 {
    s.get(h).copied().unwrap_or(0.0)
}

/// The rank claim at one point, with the singular values it was judged on.
#[derive(Debug, Clone)]
pub struct RankCheck {
    /// `residual = σ_{h+1}(Ĵ)`, `tolerance` the derived threshold.
    pub check: Check,
    /// All singular values of Ĵ, descending (`σ_h ≫ tolerance` shows the check is not vacuous).
    pub singular_values: Vec<f64>,
}

/// Exact route: `Ĵ = fl(∇D·∇E)` has `σ_{h+1}(Ĵ) ≤ γ_h‖|∇D||∇E|‖_F + 16nεσ₁`. The rounding of
/// the factors does not matter — the product of the *computed* factors has rank ≤ h exactly —
/// only the last product's rounding `|Δ| ≤ γ_h|∇D||∇E|` (Higham Lemma 3.5) and the SVD's
/// backward error do. As a relative threshold on `σ_{h+1}/σ₁` this is ≈ `h·ε·‖|D||E|‖_F/σ₁ +
/// 16nε`, i.e. 10⁻¹⁵–10⁻¹³ here, while generic `σ_h/σ₁` is 10⁻³–1.
pub fn exact_jacobian_rank(net: &BottleneckNet, y: &[f64], sigma: f64) -> Result<RankCheck> {
    let ((e, _), (d, _)) = net.factor_jacobians(y, sigma)?;
    let h = net.bottleneck();
    let j = &d * &e;
    let s = singular_values(&j)?;
    let nu = h as f64 * EPS;
    let tolerance = nu / (1.0 - nu) * frobenius(&(&abs(&d) * &abs(&e)))
        // σ₁ of an empty spectrum (no rows) is 0: no SVD error to allow for
        + svd_error(net.dim(), s.first().copied().unwrap_or(0.0));
    Ok(RankCheck {
        check: Check {
            residual: tail(&s, h),
            tolerance,
        },
        singular_values: s,
    })
}

/// Central differences of `y ↦ f(y, σ)` at the step of [`Denoiser::jacobian`]'s default, with
/// the evaluation error bound of the network's running error analysis (×2 for the perturbed
/// points, whose magnitudes differ by O(h)). Returns the estimate and its elementwise bound.
pub fn central_difference_jacobian(
    net: &BottleneckNet,
    y: &[f64],
    sigma: f64,
) -> Result<finite_difference::Derivative<Mat>> {
    let step = EPS.cbrt() * (linalg::max_abs(y) + sigma);
    let f_error = 2.0 * net.forward_error(y, sigma)?;
    finite_difference::jacobian(|p| net.denoise(p, sigma), y, step, f_error)
}

/// Difference-quotient route: `σ_{h+1}(J_fd) ≤ ‖E_fd‖_F + 16nεσ₁` with `E_fd` the elementwise
/// bound of the central differences (Richardson truncation estimate + rounding). Valid for
/// smooth activations; with (leaky) ReLUs a step across a kink voids the Richardson estimate.
pub fn difference_quotient_rank(net: &BottleneckNet, y: &[f64], sigma: f64) -> Result<RankCheck> {
    let fd = central_difference_jacobian(net, y, sigma)?;
    let s = singular_values(&fd.value)?;
    Ok(RankCheck {
        check: Check {
            residual: tail(&s, net.bottleneck()),
            tolerance: frobenius(&fd.error) + svd_error(net.dim(), s[0]),
        },
        singular_values: s,
    })
}

/// Exact Jacobian against central differences: residual `max_ij |J − J_fd| / (B_ij + E_ij)`,
/// tolerance 1 (B the exact route's rounding bound, E the difference bound).
pub fn exact_jacobian_matches_differences(
    net: &BottleneckNet,
    y: &[f64],
    sigma: f64,
) -> Result<Check> {
    let exact = net.jacobian(y, sigma)?;
    let fd = central_difference_jacobian(net, y, sigma)?;
    let n = net.dim();
    let mut worst: f64 = 0.0;
    for i in 0..n {
        for j in 0..n {
            let diff = (exact.value[(i, j)] - fd.value[(i, j)]).abs();
            worst = worst.max(diff / (exact.error[(i, j)] + fd.error[(i, j)]));
        }
    }
    Ok(Check {
        residual: worst,
        tolerance: 1.0,
    })
}

/// The σ-uniform statement: the Jacobian in `(y, s = ln σ)` (n×(n+1)) has rank ≤ h exactly
/// when every output at every σ lies in one image `D(ℝʰ)` (locally). Residual `σ_{h+1}`,
/// tolerance `‖B‖_F + 16nεσ₁` with B the chain rule's elementwise rounding bound (here the
/// product is not formed at the code, so every layer's rounding counts).
pub fn joint_jacobian_rank(net: &BottleneckNet, y: &[f64], sigma: f64) -> Result<RankCheck> {
    let (j, bound) = net.joint_jacobian(y, sigma)?;
    let s = singular_values(&j)?;
    Ok(RankCheck {
        check: Check {
            residual: tail(&s, net.bottleneck()),
            tolerance: frobenius(&bound) + svd_error(net.dim() + 1, s[0]),
        },
        singular_values: s,
    })
}

/// Distance from `x` to the decoder curve `{D(z, σ) : |z| ≤ z_max}` of an h = 1 network, by a
/// global grid of `grid` codes refined by Gauss–Newton at the best 8 grid points. Returns
/// `(upper, lower)`: `upper = ‖D(z*) − x‖` at the best code found (an attained distance), and
/// `lower = min_grid ‖D(z_g) − x‖ − L_D·δ/2` with `δ` the grid spacing and `L_D ≤ Π_l
/// Lip(φ_l)‖W_l‖₂` the decoder's Lipschitz constant (no code in the range is closer).
pub fn distance_to_decoder_curve(
    net: &BottleneckNet,
    x: &[f64],
    sigma: f64,
    z_max: f64,
    grid: usize,
) -> Result<(f64, f64)> {
    if net.bottleneck() != 1 {
        return Err(Error::InvalidArgument {
            what: "bottleneck h".into(),
            reason: format!("the curve search needs h = 1, got {}", net.bottleneck()),
        });
    }
    if grid < 2 || !(z_max.is_finite() && z_max > 0.0) {
        return Err(Error::InvalidArgument {
            what: "grid, z_max".into(),
            reason: format!("need grid ≥ 2 and finite z_max > 0, got {grid}, {z_max}"),
        });
    }
    crate::error::ensure_len("point x", x, net.dim())?;
    let dist = |z: f64| -> Result<f64> {
        let d = net.decode(&[z], sigma)?;
        Ok(d.iter()
            .zip(x)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt())
    };
    let delta = 2.0 * z_max / (grid - 1) as f64;
    let mut values: Vec<(f64, f64)> = (0..grid)
        .map(|g| {
            let z = -z_max + g as f64 * delta;
            dist(z).map(|v| (z, v))
        })
        .collect::<Result<_>>()?;
    let grid_min = values.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
    values.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut best = grid_min;
    for &(z0, _) in values.iter().take(8) {
        let mut z = z0;
        for _ in 0..30 {
            // Gauss–Newton on ‖D(z) − x‖² with the decoder's exact 1-column Jacobian.
            let code = [z];
            let d = net.decode(&code, sigma)?;
            let jd = decoder_column(net, z, sigma)?;
            let jj: f64 = jd.iter().map(|v| v * v).sum();
            if jj == 0.0 {
                break;
            }
            let step = jd
                .iter()
                .zip(d.iter().zip(x))
                .map(|(j, (a, b))| j * (a - b))
                .sum::<f64>()
                / jj;
            let next = (z - step).clamp(-z_max, z_max);
            if next == z {
                break;
            }
            z = next;
        }
        best = best.min(dist(z)?);
    }
    let lipschitz = decoder_lipschitz(net)?;
    Ok((best, (grid_min - lipschitz * delta / 2.0).max(0.0)))
}

fn decoder_column(net: &BottleneckNet, z: f64, sigma: f64) -> Result<Vec<f64>> {
    // ∂D/∂z by the chain rule through the decoder layers only.
    let arch = net.architecture();
    let c = arch.code_layer() + 1;
    let mut a = vec![z];
    let mut col = vec![1.0];
    for l in c..net.layers().len() {
        let layer = &net.layers()[l];
        let mut input = a.clone();
        if arch.takes_sigma(l) {
            input.push(crate::denoisers::bottleneck::sigma_feature(sigma));
        }
        let act = arch.activation(l);
        let mut next_a = Vec::with_capacity(layer.bias.len());
        let mut next_col = Vec::with_capacity(layer.bias.len());
        for r in 0..layer.bias.len() {
            let zr: f64 = layer.bias[r]
                + (0..input.len())
                    .map(|k| layer.weight[(r, k)] * input[k])
                    .sum::<f64>();
            let dr: f64 = (0..col.len()).map(|k| layer.weight[(r, k)] * col[k]).sum();
            next_a.push(act.apply(zr));
            next_col.push(act.derivative(zr) * dr);
        }
        a = next_a;
        col = next_col;
    }
    Ok(col)
}

/// `Π_l Lip(φ_l)·‖W_l[:, code columns]‖₂` over the decoder layers (σ's column excluded: σ is
/// fixed along the curve).
fn decoder_lipschitz(net: &BottleneckNet) -> Result<f64> {
    let arch = net.architecture();
    let mut l_d = 1.0;
    for l in arch.code_layer() + 1..net.layers().len() {
        let w = &net.layers()[l].weight;
        let cols = if arch.takes_sigma(l) {
            w.ncols() - 1
        } else {
            w.ncols()
        };
        let sub = Mat::from_fn(w.nrows(), cols, |i, j| w[(i, j)]);
        l_d *= arch.activation(l).lipschitz() * singular_values(&sub)?[0];
    }
    Ok(l_d)
}

/// Every output `f(y_p, σ_p)` lies on the curve `D(ℝ, σ_ref)`: residual `max_p upper_p`
/// (attained distances), tolerance `4√n·max_p(δf_p + δD)` with δ the running rounding bounds
/// (f at y_p, D at the code found). Needs h = 1.
pub fn outputs_on_decoder_curve(
    net: &BottleneckNet,
    ys: &[Vec<f64>],
    sigmas: &[f64],
    sigma_ref: f64,
) -> Result<Check> {
    let mut residual: f64 = 0.0;
    let mut tolerance: f64 = 0.0;
    for (y, &s) in ys.iter().zip(sigmas) {
        let x = net.denoise(y, s)?;
        let z_max = 4.0 * net.encode(y, s)?[0].abs().max(1.0);
        let (upper, _) = distance_to_decoder_curve(net, &x, sigma_ref, z_max, 4001)?;
        residual = residual.max(upper);
        let scale = linalg::max_abs(&x).max(1.0);
        tolerance = tolerance
            .max(4.0 * (net.dim() as f64).sqrt() * (net.forward_error(y, s)? + 64.0 * EPS * scale));
    }
    Ok(Check {
        residual,
        tolerance,
    })
}

/// The random architectures of the default cases: n ∈ {2, 3, 5, 8}, h ∈ {1, …, n−1}, depth and
/// widths varied, tanh / leaky / paper-per-step activations, every σ input.
pub fn default_networks(seed: u64) -> Result<Vec<BottleneckNet>> {
    let mut rng = Rng::new(seed, 0);
    let mut out = Vec::new();
    for &n in &[2usize, 3, 5, 8] {
        for h in 1..n {
            for (k, sigma) in [
                SigmaInput::None,
                SigmaInput::Encoder,
                SigmaInput::EncoderAndDecoder,
            ]
            .into_iter()
            .enumerate()
            {
                let width = 4 + 3 * ((n + h + k) % 5);
                let arch = Architecture {
                    dim: n,
                    encoder: vec![width; 1 + (h + k) % 3],
                    bottleneck: h,
                    decoder: vec![width; 1 + (n + k) % 2],
                    hidden: if k == 1 {
                        Activation::Tanh
                    } else {
                        Activation::LeakyRelu { slope: 0.2 }
                    },
                    code: Activation::Tanh,
                    output: Activation::Identity,
                    sigma,
                };
                out.push(BottleneckNet::random(arch, &mut rng)?);
            }
        }
        out.push(BottleneckNet::random(
            Architecture::paper_per_step(n, n - 1),
            &mut rng,
        )?);
    }
    Ok(out)
}

/// The `verify` rows: exact-Jacobian rank ≤ h on the default networks at 4 random points and 3
/// noise levels each, and the joint-Jacobian rank ≤ h of the encoder-σ networks.
pub fn default_verdicts() -> Vec<Verdict> {
    let rank = Verdict::uncontrolled(
        THEOREM,
        "rank ∇_y f(y,σ) ≤ h for random bottleneck MLPs (σ_{h+1} of the exact Jacobian)",
        CPU_BACKEND,
        || {
            let mut rng = Rng::new(606, 1);
            let mut checks = Vec::new();
            for net in default_networks(606)? {
                for _ in 0..4 {
                    let y: Vec<f64> = rng.normals(net.dim());
                    for sigma in [0.05, 0.5, 5.0] {
                        checks.push(exact_jacobian_rank(&net, &y, sigma)?.check);
                    }
                }
            }
            Ok(checks)
        },
    );
    let joint = Verdict::uncontrolled(
        THEOREM,
        "σ only in the encoder: one image D(ℝʰ) for all σ (rank of ∇_(y, ln σ) f ≤ h)",
        CPU_BACKEND,
        || {
            let mut rng = Rng::new(606, 2);
            let mut checks = Vec::new();
            for net in default_networks(606)?
                .into_iter()
                .filter(|n| n.architecture().sigma != SigmaInput::EncoderAndDecoder)
            {
                for _ in 0..4 {
                    let y: Vec<f64> = rng.normals(net.dim());
                    checks.push(joint_jacobian_rank(&net, &y, 0.3)?.check);
                }
            }
            Ok(checks)
        },
    );
    vec![rank, joint]
}
