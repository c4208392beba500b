//! `bottleneck_manifold` — Levine–Weiss Thm 6 (§2.3): a denoiser `f = D ∘ E` through an
//! h-wide code has `rank ∇_y f(y, σ) ≤ h` at every y, so each step's outputs lie in the image
//! `D_σ(ℝʰ)` and the samples (the last step's outputs) lie on an h-dimensional set.
//!
//! **True by construction (not a route).** The exact Jacobian [`exact_jacobian_rank`] is the
//! product `∇D·∇E` of an n×h and an h×n factor, so its rank is ≤ h for *any* weights — and
//! likewise the chain-rule joint Jacobian of a network whose σ enters only the encoder, and
//! the membership of an output `D(E(y))` in `D(ℝʰ)`. Those checks test the rounding bounds
//! and the SVD, not the theorem, and are not counted as evidence.
//!
//! Evidence that can fail (the network used as a black box `y ↦ f(y, σ)`, its factorisation
//! never consulted):
//! * the rank of the central-difference Jacobian [`difference_quotient_rank`] against Weyl's
//!   threshold `σ_{h+1}(J + E) ≤ ‖E‖_F` (E the difference error of `stats::finite_difference`);
//!   a network whose code is one wider must be rejected — [`black_box_rank`];
//! * the σ-uniform image (σ only in the encoder) by the rank of the central-difference Jacobian
//!   in `(y, ln σ)`; σ also in the decoder must be rejected — [`black_box_joint_rank`];
//! * DDIM samples at distance ≈ 0 from the last step's decoder curve `D(ℝ, σ₁)` found by a
//!   global search (h = 1), while the sampler's last noisy iterate is not —
//!   [`samples_on_last_decoder_curve`].

use super::memorization::StopBelow;
use super::{Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND};
use crate::denoisers::bottleneck::{
    singular_values, Activation, Architecture, BottleneckNet, SigmaInput,
};
use crate::denoisers::Denoiser;
use crate::diffusion::{Ddim, Sampler, Schedule};
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

/// Exact Jacobian (rank ≤ h by construction: a check of the rounding bound, not of the
/// theorem): `Ĵ = fl(∇D·∇E)` has `σ_{h+1}(Ĵ) ≤ γ_h‖|∇D||∇E|‖_F + 16nεσ₁`. The rounding of
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
pub(crate) fn central_difference_jacobian(
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

/// The σ-uniform statement by the chain rule (by construction when σ enters only the encoder:
/// the product passes through the h-wide code; a check of its rounding bound, not of the
/// theorem — [`joint_difference_rank`] is the black-box evidence): the Jacobian in
/// `(y, s = ln σ)` (n×(n+1)) has rank ≤ h exactly
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
/// Lip(φ_l)‖W_l‖₂` the decoder's Lipschitz constant (no code in the range is closer). For many
/// points against one curve, [`DecoderCurve`] decodes the grid once.
pub fn distance_to_decoder_curve(
    net: &BottleneckNet,
    x: &[f64],
    sigma: f64,
    z_max: f64,
    grid: usize,
) -> Result<(f64, f64)> {
    DecoderCurve::new(net, sigma, z_max, grid)?.distance(x)
}

/// The decoder curve `{D(z, σ) : |z| ≤ z_max}` of an h = 1 network with its grid of `grid`
/// codes decoded once (and the decoder's Lipschitz bound formed once), for the distances of
/// many points ([`DecoderCurve::distance`], the same numbers as [`distance_to_decoder_curve`]).
pub struct DecoderCurve<'n> {
    net: &'n BottleneckNet,
    sigma: f64,
    z_max: f64,
    /// The grid spacing δ.
    delta: f64,
    /// `(z_g, D(z_g, σ))` for the grid codes `z_g = −z_max + g·δ`.
    decoded: Vec<(f64, Vec<f64>)>,
    /// `L_D`, the decoder's Lipschitz bound.
    lipschitz: f64,
}

impl<'n> DecoderCurve<'n> {
    /// Decodes the grid; an h ≠ 1 network, `grid < 2` or a non-finite or non-positive `z_max`
    /// is an error naming it.
    pub fn new(net: &'n BottleneckNet, sigma: f64, z_max: f64, grid: usize) -> Result<Self> {
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
        let delta = 2.0 * z_max / (grid - 1) as f64;
        let decoded = (0..grid)
            .map(|g| {
                let z = -z_max + g as f64 * delta;
                net.decode(&[z], sigma).map(|d| (z, d))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            net,
            sigma,
            z_max,
            delta,
            decoded,
            lipschitz: decoder_lipschitz(net)?,
        })
    }

    /// `(upper, lower)` of [`distance_to_decoder_curve`] for `x`.
    pub fn distance(&self, x: &[f64]) -> Result<(f64, f64)> {
        let (net, sigma, z_max) = (self.net, self.sigma, self.z_max);
        crate::error::ensure_len("point x", x, net.dim())?;
        let distance_to = |d: &[f64]| -> f64 {
            d.iter()
                .zip(x)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let mut values: Vec<(f64, f64)> = self
            .decoded
            .iter()
            .map(|(z, d)| (*z, distance_to(d)))
            .collect();
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
            best = best.min(distance_to(&net.decode(&[z], sigma)?));
        }
        Ok((
            best,
            (grid_min - self.lipschitz * self.delta / 2.0).max(0.0),
        ))
    }
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

/// Black-box rank claim at one point with its negative control: `net` (code width h) must pass
/// `σ_{h+1}(J_fd) ≤ ‖E_fd‖_F + 16nεσ₁` ([`difference_quotient_rank`]); `wider` (the same
/// architecture with a code of width h + 1) is checked against the same claimed h (planted).
pub fn black_box_rank(
    net: &BottleneckNet,
    wider: &BottleneckNet,
    y: &[f64],
    sigma: f64,
) -> Result<Controlled> {
    let h = net.bottleneck();
    if wider.bottleneck() != h + 1 || wider.dim() != net.dim() {
        return Err(Error::InvalidArgument {
            what: "wider network".into(),
            reason: format!(
                "need the same dimension {} and code width h + 1 = {}, got {} and {}",
                net.dim(),
                h + 1,
                wider.dim(),
                wider.bottleneck()
            ),
        });
    }
    let planted = difference_quotient_rank(wider, y, sigma)?;
    Ok(Controlled {
        check: difference_quotient_rank(net, y, sigma)?.check,
        planted: Check {
            residual: tail(&planted.singular_values, h),
            tolerance: planted.check.tolerance,
        },
    })
}

/// Central differences of the black box `(y, s) ↦ f(y, eˢ)` at `(y, ln σ)` (n×(n+1)), step
/// `ε^{1/3}(max|(y, ln σ)| + 1)`, evaluation error `2·δf` from the network's running bound.
pub(crate) fn joint_central_difference_jacobian(
    net: &BottleneckNet,
    y: &[f64],
    sigma: f64,
) -> Result<finite_difference::Derivative<Mat>> {
    crate::denoisers::check_input(net.dim(), y, sigma)?;
    let n = net.dim();
    let mut point = y.to_vec();
    point.push(sigma.ln());
    let step = EPS.cbrt() * (linalg::max_abs(&point) + 1.0);
    let f_error = 2.0 * net.forward_error(y, sigma)?;
    finite_difference::jacobian(|p| net.denoise(&p[..n], p[n].exp()), &point, step, f_error)
}

/// The σ-uniform image by central differences of the black box in `(y, ln σ)`: residual
/// `σ_{h+1}(J_fd)`, tolerance `‖E_fd‖_F + 16(n+1)εσ₁` (Weyl, as [`difference_quotient_rank`]).
pub fn joint_difference_rank(net: &BottleneckNet, y: &[f64], sigma: f64) -> Result<RankCheck> {
    let fd = joint_central_difference_jacobian(net, y, sigma)?;
    let s = singular_values(&fd.value)?;
    Ok(RankCheck {
        check: Check {
            residual: tail(&s, net.bottleneck()),
            tolerance: frobenius(&fd.error) + svd_error(net.dim() + 1, s[0]),
        },
        singular_values: s,
    })
}

/// [`joint_difference_rank`] of `net` (σ only in the encoder, or none) with its negative
/// control: `moving`, the same architecture with σ also fed to the decoder (planted).
pub fn black_box_joint_rank(
    net: &BottleneckNet,
    moving: &BottleneckNet,
    y: &[f64],
    sigma: f64,
) -> Result<Controlled> {
    if net.architecture().sigma == SigmaInput::EncoderAndDecoder
        || moving.architecture().sigma != SigmaInput::EncoderAndDecoder
        || moving.bottleneck() != net.bottleneck()
    {
        return Err(Error::InvalidArgument {
            what: "networks".into(),
            reason: "need σ outside the decoder of the first and inside the second, same h".into(),
        });
    }
    Ok(Controlled {
        check: joint_difference_rank(net, y, sigma)?.check,
        planted: joint_difference_rank(moving, y, sigma)?.check,
    })
}

/// DDIM samples lie on the last step's decoder curve (h = 1): for each noise row, the sample
/// `x₀` and the last denoiser input `y₁ = x₁/α₁` (DDIM run with [`StopBelow`] at `σ₁/α₁`);
/// residual `max_p ‖D(z*_p, σ₁/α₁) − x₀_p‖` over the codes found by
/// [`distance_to_decoder_curve`], tolerance `4√n·max_p(δf(y₁_p) + 64ε·max(|x₀_p|, 1))` (the
/// running rounding bound of the last call plus the search's own evaluation). Planted: the
/// sampler returns its last noisy iterate `y₁` instead of the denoiser output.
pub fn samples_on_last_decoder_curve(
    denoiser: &dyn Denoiser,
    last: &BottleneckNet,
    schedule: &Schedule,
    noise: &Mat,
) -> Result<Controlled> {
    let sigma_1 = schedule.denoiser_noise(1);
    let ddim = Ddim {
        schedule: schedule.clone(),
    };
    let samples = ddim.sample(denoiser, noise)?;
    let stopped = StopBelow {
        inner: denoiser,
        sigma_stop: sigma_1,
    };
    let inputs = ddim.sample(&stopped, noise)?;
    let (mut residual, mut planted_residual, mut tolerance) = (0.0f64, 0.0f64, 0.0f64);
    for p in 0..samples.nrows() {
        let x = linalg::row(&samples, p);
        let y = linalg::row(&inputs, p);
        let z_max = 4.0 * last.encode(&y, sigma_1)?[0].abs().max(1.0);
        let curve = DecoderCurve::new(last, sigma_1, z_max, 4001)?;
        residual = residual.max(curve.distance(&x)?.0);
        planted_residual = planted_residual.max(curve.distance(&y)?.0);
        let scale = linalg::max_abs(&x).max(1.0);
        tolerance = tolerance.max(
            4.0 * (last.dim() as f64).sqrt()
                * (last.forward_error(&y, sigma_1)? + 64.0 * EPS * scale),
        );
    }
    Ok(Controlled {
        check: Check {
            residual,
            tolerance,
        },
        planted: Check {
            residual: planted_residual,
            tolerance,
        },
    })
}

/// A random tanh network (smooth, so central differences are valid) of `arch`'s shape with
/// its code width replaced by `h`.
fn tanh_network(arch: &Architecture, h: usize, rng: &mut Rng) -> Result<BottleneckNet> {
    BottleneckNet::random(
        Architecture {
            bottleneck: h,
            ..arch.clone()
        },
        rng,
    )
}

/// The smooth (tanh) architectures of the black-box rows: n ∈ {2, 3, 5, 8}, h ∈ {1, …, n−1},
/// depth and widths varied, every σ input; each with its twin whose code is one wider.
pub fn smooth_network_pairs(seed: u64) -> Result<Vec<(BottleneckNet, BottleneckNet)>> {
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
                // Hidden widths ≥ h + 2, so that the twin's code of width h + 1 is its
                // narrowest layer (a narrower hidden layer would be a bottleneck of its own).
                let width = h + 2 + 3 * ((n + h + k) % 5);
                let arch = Architecture {
                    dim: n,
                    encoder: vec![width; 1 + (h + k) % 3],
                    bottleneck: h,
                    decoder: vec![width; 1 + (n + k) % 2],
                    hidden: Activation::Tanh,
                    code: Activation::Tanh,
                    output: Activation::Identity,
                    sigma,
                };
                let net = tanh_network(&arch, h, &mut rng)?;
                let wider = tanh_network(&arch, h + 1, &mut rng)?;
                out.push((net, wider));
            }
        }
    }
    Ok(out)
}

/// Row 1: black-box Jacobian rank ≤ h.
pub const BLACK_BOX_RANK: Claim = Claim {
    theorem: THEOREM,
    statement: "rank ∇_y f(y,σ) ≤ h by central differences of the black-box map (random tanh \
                bottleneck MLPs, n ∈ {2,3,5,8}, h < n, σ ∈ {0.05, 0.5, 5})",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "Weyl σ_{h+1}(J+E) ≤ ‖E‖_F + 16nεσ₁ with E of stats::finite_difference: \
                      Richardson truncation estimate ×2 (an estimate, not a proved bound, for the \
                      O(h⁴) remainder) + rounding 2δf/h from the network's running error bound",
    planted_variant: "a code one unit wider (h + 1) checked against the claimed h",
    false_failure: FalseFailure::None,
};

/// Row 2: σ only in the encoder: one image for all σ.
pub const BLACK_BOX_JOINT_RANK: Claim = Claim {
    theorem: THEOREM,
    statement: "σ only in the encoder (or none): rank ∇_(y, ln σ) f ≤ h by central differences \
                of the black-box map, i.e. one image D(ℝʰ) for all σ",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "Weyl σ_{h+1}(J+E) ≤ ‖E‖_F + 16(n+1)εσ₁, E of stats::finite_difference \
                      (Richardson ×2 estimate + rounding), as the black-box rank row",
    planted_variant: "σ also fed to the decoder (SigmaInput::EncoderAndDecoder)",
    false_failure: FalseFailure::None,
};

/// Row 3: the samples lie on the last step's decoder curve.
pub const SAMPLES_ON_CURVE: Claim = Claim {
    theorem: THEOREM,
    statement: "DDIM samples of h = 1 networks (per-step, σ in the encoder, σ in the decoder; \
                n = 3, 12 steps) lie on the last step's decoder curve D(ℝ, σ₁)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "4√n(δf + 64ε max|x|): running rounding bound of the last denoiser call \
                      (BottleneckNet::forward_error) plus the curve search's evaluation",
    planted_variant: "the sampler returns its last noisy iterate x₁/α₁ instead of f(x₁/α₁; σ₁)",
    false_failure: FalseFailure::None,
};

/// The h = 1, n = 3 networks of the samples row with the denoiser DDIM runs and the network
/// whose decoder ends it: per-step (σ-blind, one per level), σ in the encoder, σ in the decoder.
pub fn sampling_cases(
    seed: u64,
    sigmas: &[f64],
) -> Result<Vec<(Box<dyn Denoiser>, BottleneckNet)>> {
    let mut rng = Rng::new(seed, 0);
    let arch = |sigma| Architecture {
        dim: 3,
        encoder: vec![12],
        bottleneck: 1,
        decoder: vec![12],
        hidden: Activation::LeakyRelu { slope: 0.2 },
        code: Activation::Tanh,
        output: Activation::Identity,
        sigma,
    };
    let per_step = crate::denoisers::bottleneck::PerStep::new(
        sigmas.to_vec(),
        sigmas
            .iter()
            .map(|_| BottleneckNet::random(arch(SigmaInput::None), &mut rng))
            .collect::<Result<_>>()?,
    )?;
    let last = per_step.net_for(sigmas[0])?.clone();
    let encoder = BottleneckNet::random(arch(SigmaInput::Encoder), &mut rng)?;
    let decoder = BottleneckNet::random(arch(SigmaInput::EncoderAndDecoder), &mut rng)?;
    Ok(vec![
        (Box::new(per_step), last),
        (Box::new(encoder.clone()), encoder),
        (Box::new(decoder.clone()), decoder),
    ])
}

/// The schedule of the samples row: VE exponential (c₁ = 0.02, c₂ = 0.35), 12 steps.
pub fn sampling_schedule() -> Result<Schedule> {
    Schedule::ve_exponential(0.02, 0.35, 12)
}

/// The `verify` rows: black-box rank ≤ h (tanh networks at 2 random points and 3 noise levels
/// each), the black-box joint rank ≤ h when σ stays out of the decoder, and the samples on the
/// last step's decoder curve.
///
/// CPU-only: the GPU argument (the signature of [`super::Theorem::verdicts`]) is not used.
pub(crate) fn default_verdicts(_gpu: Result<&crate::gpu::Gpu>, depth: Depth) -> Vec<Verdict> {
    // the network pairs of seed 606 (every third at quick; those of four seeds at thorough)
    let pairs = || -> Result<Vec<(BottleneckNet, BottleneckNet)>> {
        let mut out = Vec::new();
        for seed in depth.seeds(606) {
            out.extend(depth.thin(3, smooth_network_pairs(seed)?));
        }
        Ok(out)
    };
    let rank = Verdict::collect(&BLACK_BOX_RANK, CPU_BACKEND, depth, || {
        let mut rng = Rng::new(606, 1);
        let mut cases = Vec::new();
        for (net, wider) in pairs()? {
            for _ in 0..2 {
                let y: Vec<f64> = rng.normals(net.dim());
                for sigma in [0.05, 0.5, 5.0] {
                    cases.push(black_box_rank(&net, &wider, &y, sigma)?);
                }
            }
        }
        Ok(cases)
    });
    let joint = Verdict::collect(&BLACK_BOX_JOINT_RANK, CPU_BACKEND, depth, || {
        let mut rng = Rng::new(606, 2);
        let mut cases = Vec::new();
        let nets = pairs()?;
        for (net, _) in nets
            .iter()
            .filter(|(n, _)| n.architecture().sigma != SigmaInput::EncoderAndDecoder)
        {
            let moving = BottleneckNet::random(
                Architecture {
                    sigma: SigmaInput::EncoderAndDecoder,
                    ..net.architecture().clone()
                },
                &mut rng,
            )?;
            for _ in 0..2 {
                let y: Vec<f64> = rng.normals(net.dim());
                cases.push(black_box_joint_rank(net, &moving, &y, 0.3)?);
            }
        }
        Ok(cases)
    });
    let samples = Verdict::collect(&SAMPLES_ON_CURVE, CPU_BACKEND, depth, || {
        let schedule = sampling_schedule()?;
        let sigmas: Vec<f64> = (1..=schedule.steps())
            .map(|l| schedule.denoiser_noise(l))
            .collect();
        let mut rng = Rng::new(63, 1);
        // 16 noise draws (4 at quick, 64 at thorough)
        let noise = Mat::from_fn(depth.samples(16), 3, |_, _| rng.normal());
        sampling_cases(63, &sigmas)?
            .iter()
            .map(|(denoiser, last)| {
                samples_on_last_decoder_curve(denoiser.as_ref(), last, &schedule, &noise)
            })
            .collect()
    });
    vec![rank, joint, samples]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point on the decoder curve, at code z₀ = 2.5 near the end of the range [−3, 3]: the
    /// attained distance is ~0 and the certified lower bound is 0 (the grid covers z₀ to within
    /// half a spacing); a point off the curve gets lower ≤ upper.
    #[test]
    fn curve_distance_of_points_on_and_off_the_curve() {
        let arch = Architecture::paper_2d(1, 8, SigmaInput::Encoder);
        let net = BottleneckNet::random(arch, &mut Rng::new(5, 0)).unwrap();
        let on = net.decode(&[2.5], 0.5).unwrap();
        let (upper, lower) = distance_to_decoder_curve(&net, &on, 0.5, 3.0, 61).unwrap();
        assert!(upper < 1e-6 && lower == 0.0, "{upper} {lower}");
        let off: Vec<f64> = on.iter().map(|v| v + 5.0).collect();
        let (upper, lower) = distance_to_decoder_curve(&net, &off, 0.5, 3.0, 61).unwrap();
        assert!(lower <= upper && upper > 1.0, "{upper} {lower}");
    }

    /// The decoder's Lipschitz bound (what makes the distance's lower bound certified) is at
    /// least every slope ‖D(z₂) − D(z₁)‖/|z₂ − z₁| the decoder shows on a fine grid, for
    /// random networks of several widths and activations; and for a one-layer linear decoder
    /// it is exactly the norm of the code column, ‖W[:, 0]‖ (σ's column excluded).
    #[test]
    fn decoder_lipschitz_bounds_every_slope_and_is_exact_for_a_linear_decoder() {
        for (width, seed) in [(8, 1), (16, 2), (64, 3)] {
            let arch = Architecture::paper_2d(1, width, SigmaInput::EncoderAndDecoder);
            let net = BottleneckNet::random(arch, &mut Rng::new(seed, 0)).unwrap();
            let bound = decoder_lipschitz(&net).unwrap();
            let step = 1e-3;
            let mut steepest: f64 = 0.0;
            for g in 0..6000 {
                let z = -3.0 + g as f64 * step;
                let a = net.decode(&[z], 0.7).unwrap();
                let b = net.decode(&[z + step], 0.7).unwrap();
                let gap: f64 = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>();
                steepest = steepest.max(gap.sqrt() / step);
            }
            assert!(steepest <= bound * (1.0 + 1e-9), "{steepest} > {bound}");
            assert!(steepest > 0.0);
        }
        let linear = Architecture {
            dim: 3,
            encoder: vec![],
            bottleneck: 1,
            decoder: vec![],
            hidden: Activation::Identity,
            code: Activation::Identity,
            output: Activation::Identity,
            sigma: SigmaInput::EncoderAndDecoder,
        };
        let net = BottleneckNet::random(linear, &mut Rng::new(9, 0)).unwrap();
        let w = &net.layers()[net.architecture().code_layer() + 1].weight;
        let column: f64 = (0..w.nrows()).map(|i| w[(i, 0)].powi(2)).sum::<f64>();
        let bound = decoder_lipschitz(&net).unwrap();
        assert!(
            (bound - column.sqrt()).abs() <= 1e-12 * bound,
            "{bound} vs {}",
            column.sqrt()
        );
    }
}
