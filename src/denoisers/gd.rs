//! Gradient-descent training of linear denoisers on the GPU, every product a tiled WGSL GEMM
//! (`gpu/gemm.wgsl`): full-batch GD on the empirical MSE `(1/n)Σ‖x_i − W y_i − b‖²`.
//!
//! The loss is quadratic in W with the sample moments `S = E[y'y'ᵀ]`, `R = E[x y'ᵀ]`
//! (`y' = [y; 1]` for the affine map, `y' = y` bias-free), which are computed once on the GPU
//! (`Y'ᵀY'/n`, `Xᵀ Y'/n`, chunked, chunks summed in f64). Its gradient is `2(W S − R)`, so a step
//! of size η is the single GEMM `W ← W (I − 2ηS) + 2ηR`. The rank-K map `W = A B` (A d×K,
//! B K×d) is trained on centred data with the gradients `∇_A = 2 G Bᵀ`, `∇_B = 2 Aᵀ G`,
//! `G = A B C_yy − C_xy`: four GEMMs per step. Iterations are recorded once and replayed in one
//! submission ([`crate::gpu::Gpu::dispatch_sequence`]).

use super::rank_k::reduced_rank_regression;
use super::Affine;
use crate::error::{Error, Result};
use crate::gpu::gemm::{self, product, GpuMat, PreparedProduct};
use crate::gpu::Gpu;
use crate::linalg::{self, Mat};
use crate::numerics::gamma_f32;
use crate::numerics::F32_UNIT_ROUNDOFF;
use crate::rng::Rng;

/// Rows per GEMM chunk of the moment computation (f32 sums over at most this many terms).
pub const MOMENT_CHUNK: usize = 512;

/// Sample second moments of pairs (x_i, y_i) computed on the GPU, with elementwise bounds on
/// their f32 error.
#[derive(Debug, Clone)]
pub struct SampleMoments {
    /// `S = (1/n)Σ y'_i y'_iᵀ` (d'×d').
    pub second: Mat,
    /// `R = (1/n)Σ x_i y'_iᵀ` (d×d').
    pub cross: Mat,
    /// Bound on `|S_gpu − S|`: `γ_{c+5}·(1/n)Σ|y'||y'|ᵀ` (c = [`MOMENT_CHUNK`]) plus the f64
    /// summation of the chunks.
    pub second_bound: Mat,
    /// Bound on `|R_gpu − R|`, likewise.
    pub cross_bound: Mat,
    /// Whether `y' = [y; 1]`.
    pub augmented: bool,
    /// n.
    pub samples: usize,
}

impl SampleMoments {
    /// `(C_yy, C_xy, x̄, ȳ)`: the centred moments `C_yy = S_yy − ȳȳᵀ`, `C_xy = S_xy − x̄ȳᵀ` (in f64;
    /// needs augmented moments, whose last column holds the means).
    pub fn centred(&self) -> Result<(Mat, Mat, Vec<f64>, Vec<f64>)> {
        if !self.augmented {
            return Err(Error::InvalidArgument {
                what: "moments".into(),
                reason: "centring needs the augmented moments (y' = [y; 1])".into(),
            });
        }
        let d = self.second.nrows() - 1;
        let ybar: Vec<f64> = (0..d).map(|i| self.second[(i, d)]).collect();
        let xbar: Vec<f64> = (0..self.cross.nrows())
            .map(|i| self.cross[(i, d)])
            .collect();
        let cyy = Mat::from_fn(d, d, |i, j| self.second[(i, j)] - ybar[i] * ybar[j]);
        let cxy = Mat::from_fn(xbar.len(), d, |i, j| self.cross[(i, j)] - xbar[i] * ybar[j]);
        Ok((cyy, cxy, xbar, ybar))
    }
}

/// `E[y'y'ᵀ]` and `E[x y'ᵀ]` of the rows of `xs`, `ys` (n×d each) by GEMMs on the GPU.
pub fn gpu_moments(gpu: &Gpu, xs: &Mat, ys: &Mat, augmented: bool) -> Result<SampleMoments> {
    let (n, d) = (ys.nrows(), ys.ncols());
    if xs.nrows() != n || xs.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "clean samples (rows × columns)".into(),
            expected: n * d,
            got: xs.nrows() * xs.ncols(),
        });
    }
    if n == 0 {
        return Err(Error::InvalidArgument {
            what: "samples".into(),
            reason: "need at least one pair, got 0".into(),
        });
    }
    linalg::ensure_finite_mat("clean samples", xs)?;
    linalg::ensure_finite_mat("noisy samples", ys)?;
    let dp = d + usize::from(augmented);
    let yprime = |i: usize, j: usize| if j < d { ys[(i, j)] } else { 1.0 };
    let mut second = Mat::zeros(dp, dp);
    let mut cross = Mat::zeros(d, dp);
    let mut abs_second = Mat::zeros(dp, dp);
    let mut abs_cross = Mat::zeros(d, dp);
    let chunks = n.div_ceil(MOMENT_CHUNK);
    for c in 0..chunks {
        let rows = c * MOMENT_CHUNK..((c + 1) * MOMENT_CHUNK).min(n);
        let m = rows.len();
        let yc = Mat::from_fn(m, dp, |i, j| yprime(rows.start + i, j));
        let xc = Mat::from_fn(m, d, |i, j| xs[(rows.start + i, j)]);
        let gy = GpuMat::upload(gpu, "moment Y'", &yc)?;
        let gx = GpuMat::upload(gpu, "moment X", &xc)?;
        let gs = GpuMat::poisoned(gpu, "moment S", dp, dp)?;
        let gr = GpuMat::poisoned(gpu, "moment R", d, dp)?;
        let scale = (1.0 / n as f64) as f32;
        let products = [
            product(gpu, (&gy, true), (&gy, false), scale, 0.0, None, &gs)?,
            product(gpu, (&gx, true), (&gy, false), scale, 0.0, None, &gr)?,
        ];
        gemm::run_products(gpu, &products, 1)?;
        second += gs.download(gpu)?;
        cross += gr.download(gpu)?;
    }
    for i in 0..n {
        for a in 0..dp {
            for b in 0..dp {
                abs_second[(a, b)] += (yprime(i, a) * yprime(i, b)).abs() / n as f64;
            }
            for a2 in 0..d {
                abs_cross[(a2, a)] += (xs[(i, a2)] * yprime(i, a)).abs() / n as f64;
            }
        }
    }
    let g = moment_rounding_factor(n);
    Ok(SampleMoments {
        second,
        cross,
        second_bound: Mat::from_fn(dp, dp, |i, j| g * abs_second[(i, j)]),
        cross_bound: Mat::from_fn(d, dp, |i, j| g * abs_cross[(i, j)]),
        augmented,
        samples: n,
    })
}

/// The factor of `Σ|terms|` in the moments' rounding bounds for n samples: `γ_{c+5}` for each
/// chunk's f32 GEMM (c = min(n, [`MOMENT_CHUNK`]) terms, the scale 1/n rounded included), plus
/// `(number of chunks)·ε` for summing the chunks in f64.
fn moment_rounding_factor(n: usize) -> f64 {
    gamma_f32(MOMENT_CHUNK.min(n) + 5) + (n.div_ceil(MOMENT_CHUNK) as f64) * f64::EPSILON
}

/// A linear map trained by GD, with the a-priori bound on its distance to the minimiser of the
/// empirical loss with the GPU moments.
#[derive(Debug, Clone)]
pub struct LinearGd {
    /// The trained map (`b` zero when bias-free).
    pub denoiser: Affine,
    /// Steps taken.
    pub steps: usize,
    /// The contraction factor `ρ = max_i |1 − 2ηλ_i(S)|` of one step.
    pub contraction: f64,
    /// `‖W_T − W*‖_F ≤ ρ^T‖W*‖_F + (δ + ‖ΔE‖_F + ‖W*‖_F‖ΔM‖_F)/(1 − ρ)`, W* = R S⁻¹: the
    /// linear iteration's error from W₀ = 0 plus the f32 floor — δ the per-step rounding
    /// `‖γ_{d'+3}(|W||M| + |E|)‖_F` (|W| taken entrywise as max(|W*|, |W_T|)), ΔM, ΔE the f32
    /// rounding of the iteration matrices `M = I − 2ηS`, `E = 2ηR`.
    pub error_bound: f64,
    /// W* = R S⁻¹ in f64 from the same moments.
    pub minimiser: Mat,
}

/// Full-batch GD for the affine (augmented moments) or bias-free map from W = 0, `steps`
/// steps (rounded up to even) of size `η = 1/(λ_max(S) + λ_min(S))` — the step minimising ρ,
/// giving `ρ = (κ − 1)/(κ + 1)`.
pub(crate) fn train_linear_gd(
    gpu: &Gpu,
    moments: &SampleMoments,
    steps: usize,
) -> Result<LinearGd> {
    let s = &moments.second;
    let r = &moments.cross;
    let (d, dp) = (r.nrows(), s.nrows());
    let (eig, _) = linalg::sym_eigen(s)?;
    if eig[0] <= 0.0 {
        return Err(Error::NotPsd {
            what: "sample second moment".into(),
            reason: format!(
                "must be positive definite for GD to converge, smallest eigenvalue {}",
                eig[0]
            ),
        });
    }
    let two_eta = 2.0 / (eig[dp - 1] + eig[0]);
    let rho = eig
        .iter()
        .map(|l| (1.0 - two_eta * l).abs())
        .fold(0.0, f64::max);
    let m = Mat::from_fn(dp, dp, |i, j| {
        f64::from(u8::from(i == j)) - two_eta * s[(i, j)]
    });
    let e = Mat::from_fn(d, dp, |i, j| two_eta * r[(i, j)]);
    let steps = steps.next_multiple_of(2);
    let gm = GpuMat::upload(gpu, "gd M", &m)?;
    let ge = GpuMat::upload(gpu, "gd E", &e)?;
    let w0 = GpuMat::upload(gpu, "gd W even", &Mat::zeros(d, dp))?;
    let w1 = GpuMat::poisoned(gpu, "gd W odd", d, dp)?;
    let products = [
        product(gpu, (&w0, false), (&gm, false), 1.0, 1.0, Some(&ge), &w1)?,
        product(gpu, (&w1, false), (&gm, false), 1.0, 1.0, Some(&ge), &w0)?,
    ];
    gemm::run_products(gpu, &products, steps / 2)?;
    let w = w0.download(gpu)?;
    let wt = linalg::spd_solve(s, &r.transpose().to_owned())?;
    let w_star = wt.transpose().to_owned();
    let u = F32_UNIT_ROUNDOFF;
    let abs_w = Mat::from_fn(d, dp, |i, j| w_star[(i, j)].abs().max(w[(i, j)].abs()));
    let mut delta2 = 0.0;
    for i in 0..d {
        for j in 0..dp {
            let t: f64 = (0..dp)
                .map(|l| abs_w[(i, l)] * m[(l, j)].abs())
                .sum::<f64>()
                + e[(i, j)].abs();
            delta2 += (gamma_f32(dp + 3) * t).powi(2);
        }
    }
    let de = u * e.norm_l2();
    let dm = u * m.norm_l2();
    let w_norm = w_star.norm_l2();
    let error_bound =
        rho.powi(steps as i32) * w_norm + (delta2.sqrt() + de + w_norm * dm) / (1.0 - rho);
    let (weight, bias) = if moments.augmented {
        (
            Mat::from_fn(d, d, |i, j| w[(i, j)]),
            (0..d).map(|i| w[(i, d)]).collect(),
        )
    } else {
        (w, vec![0.0; d])
    };
    Ok(LinearGd {
        denoiser: Affine::new(weight, bias)?,
        steps,
        contraction: rho,
        error_bound,
        minimiser: w_star,
    })
}

/// A rank-K product trained by GD, with the distance of the product to the reduced-rank
/// regression optimum of the same moments at checkpoints.
#[derive(Debug, Clone)]
pub struct RankKGd {
    /// A (d×K).
    pub left: Mat,
    /// B (K×d).
    pub right: Mat,
    /// The bias `x̄ − A B ȳ`.
    pub bias: Vec<f64>,
    /// `W_K = [C_xy C_yy^{-1/2}]_K C_yy^{-1/2}` in f64 from the same moments.
    pub optimum: Mat,
    /// `(steps, max_ij |(A B)_ij − (W_K)_ij|)` at the start (0 steps) and at each checkpoint.
    pub history: Vec<(usize, f64)>,
    /// The f32 floor of the iteration, `16(d + 5)u·max|W_K|·κ(C_yy)/g` with
    /// `g = (s_K − s_{K+1})/s_1` the relative gap of the singular values of the whitened
    /// cross-moment `C_xy C_yy^{-1/2}`: the f32 fixed point minimises a problem whose moments
    /// are perturbed by the per-step rounding (relative `γ_{d+5}` of the gradient's terms, the
    /// factor 16 covering the four products and their second-order terms), and the rank-K
    /// truncation moves by the perturbation over the relative gap (Wedin's theorem), amplified
    /// by the whitening (κ). An a-priori estimate, not a rigorous bound: the convergence claim
    /// compares the final distance with it.
    pub rounding_floor: f64,
}

/// GD on `W = A B` from a small random start (entries N(0, 0.1²), Philox `seed`), step
/// `η = 0.1/λ_max(C_yy)`, checkpoints after each of `rounds` (steps per round rounded to even).
pub fn train_rank_k_gd(
    gpu: &Gpu,
    moments: &SampleMoments,
    k: usize,
    steps_per_round: usize,
    rounds: usize,
    seed: u64,
) -> Result<RankKGd> {
    let (cyy, cxy, xbar, ybar) = moments.centred()?;
    let d = cyy.nrows();
    if k == 0 || k > d {
        return Err(Error::InvalidArgument {
            what: "rank K".into(),
            reason: format!("must be in 1..={d}, got {k}"),
        });
    }
    let (eig, _) = linalg::sym_eigen(&cyy)?;
    let eta = 0.1 / eig[d - 1];
    let optimum = reduced_rank_regression(&cxy, &cyy, k)?;
    let regression = &cxy * linalg::spd_solve(&cyy, &Mat::identity(d, d))?;
    let singular = {
        // singular values of C_xy C_yy^{-1/2} are the square roots of the eigenvalues of
        // C_xy C_yy⁻¹ C_yx
        let m = &regression * cxy.transpose();
        let (ev, _) = linalg::sym_eigen(&Mat::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)])))?;
        let mut sv: Vec<f64> = ev.iter().map(|v| v.max(0.0).sqrt()).collect();
        sv.reverse();
        sv
    };
    if singular[0] <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "samples".into(),
            reason: "the clean and noisy samples are uncorrelated (C_xy C_yy⁻¹ C_yx = 0): the \
                     rank-K optimum is the zero map and GD has nothing to converge to"
                .into(),
        });
    }
    // σ_{K+1} of a d×d matrix is 0 when K = d (there is no next singular value)
    let next = singular.get(k).copied().unwrap_or(0.0);
    let rel_gap = (singular[k - 1] - next) / singular[0];
    if rel_gap <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "rank K".into(),
            reason: format!(
                "the rank-{k} optimum is not unique (singular values {} and {next} tie)",
                singular[k - 1]
            ),
        });
    }
    let rounding_floor = 16.0
        * (d + 5) as f64
        * F32_UNIT_ROUNDOFF
        * linalg::max_abs_diff_mat(&optimum, &Mat::zeros(d, d))
        * (eig[d - 1] / eig[0])
        / rel_gap;
    let mut rng = Rng::new(seed, 0);
    let a0 = Mat::from_fn(d, k, |_, _| 0.1 * rng.normal());
    let b0 = Mat::from_fn(k, d, |_, _| 0.1 * rng.normal());
    let (ga0, gb0) = (
        GpuMat::upload(gpu, "A even", &a0)?,
        GpuMat::upload(gpu, "B even", &b0)?,
    );
    let (ga1, gb1) = (
        GpuMat::poisoned(gpu, "A odd", d, k)?,
        GpuMat::poisoned(gpu, "B odd", k, d)?,
    );
    let gcyy = GpuMat::upload(gpu, "C_yy", &cyy)?;
    let gcxy = GpuMat::upload(gpu, "C_xy", &cxy)?;
    let gp = GpuMat::poisoned(gpu, "A B", d, d)?;
    let gg = GpuMat::poisoned(gpu, "G", d, d)?;
    let two_eta = (2.0 * eta) as f32;
    let step = |a, b, a_next, b_next| -> Result<[PreparedProduct; 4]> {
        Ok([
            product(gpu, (a, false), (b, false), 1.0, 0.0, None, &gp)?,
            product(
                gpu,
                (&gp, false),
                (&gcyy, false),
                1.0,
                -1.0,
                Some(&gcxy),
                &gg,
            )?,
            product(gpu, (&gg, false), (b, true), -two_eta, 1.0, Some(a), a_next)?,
            product(gpu, (a, true), (&gg, false), -two_eta, 1.0, Some(b), b_next)?,
        ])
    };
    let mut products = Vec::with_capacity(8);
    products.extend(step(&ga0, &gb0, &ga1, &gb1)?);
    products.extend(step(&ga1, &gb1, &ga0, &gb0)?);
    let per_round = steps_per_round.next_multiple_of(2);
    let mut history = Vec::with_capacity(rounds + 1);
    history.push((0, linalg::max_abs_diff_mat(&(&a0 * &b0), &optimum)));
    let (mut a, mut b) = (a0, b0);
    for round in 1..=rounds {
        gemm::run_products(gpu, &products, per_round / 2)?;
        a = ga0.download(gpu)?;
        b = gb0.download(gpu)?;
        let product = &a * &b;
        history.push((
            round * per_round,
            linalg::max_abs_diff_mat(&product, &optimum),
        ));
    }
    let product = &a * &b;
    let bias = (0..d)
        .map(|i| xbar[i] - (0..d).map(|j| product[(i, j)] * ybar[j]).sum::<f64>())
        .collect();
    Ok(RankKGd {
        left: a,
        right: b,
        bias,
        optimum,
        history,
        rounding_floor,
    })
}

#[cfg(test)]
mod tests {
    use super::moment_rounding_factor;

    /// The factor by hand (u = 2⁻²⁴): 300 samples are one chunk of 300 terms, γ₃₀₅ + ε;
    /// 1200 samples are three chunks of at most 512, γ₅₁₇ + 3ε.
    #[test]
    fn moment_rounding_factor_by_hand() {
        let u = 1.0 / 16_777_216.0;
        let gamma = |n: f64| n * u / (1.0 - n * u);
        assert_eq!(moment_rounding_factor(300), gamma(305.0) + f64::EPSILON);
        assert_eq!(
            moment_rounding_factor(1200),
            gamma(517.0) + 3.0 * f64::EPSILON
        );
    }
}
