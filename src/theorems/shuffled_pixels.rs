//! `shuffled_pixels` — a fixed pixel permutation leaves the error of the optimal and of the
//! optimal affine denoiser unchanged, and changes that of a local denoiser (Kadkhodaie et al.
//! §3, "Shuffled images").
//!
//! Let `P` be a fixed permutation of the d pixels, `(Px)_i = x_{π(i)}`, and let the data be
//! the empirical law of N images `x_1..x_N` (or its permuted copy `Px_1..Px_N`), `y = x + σg`.
//!
//! * **Optimal (empirical Bayes) denoiser.** `f*(y) = Σ_k ρ_k(y) x_k`,
//!   `ρ_k ∝ exp(−‖y − x_k‖²/2σ²)` (book eq. 3.3.3). Since `‖Py − Px_k‖ = ‖y − x_k‖`,
//!   `f*_{P·data}(Py) = P f*_data(y)`, and with `Pg ~ N(0, I)` the MSE is unchanged:
//!   `E‖Px − f*_{P·data}(Px + σPg)‖² = E‖x − f*_data(x + σg)‖²`, exactly.
//! * **Optimal affine denoiser.** `f(y) = μ + Σ(Σ + σ²I)⁻¹(y − μ)` with the data's moments; the
//!   permuted data have `(Pμ, PΣPᵀ)`, and `MSE = tr(Σ) − tr(Σ(Σ + σ²I)⁻¹Σ)` is invariant under
//!   `Σ ↦ PΣPᵀ`.
//! * **Local denoiser** ([`crate::denoisers::local::LocalWindow`]): each pixel predicted from
//!   its w×w window only. The permutation sends neighbours to unrelated places, so the window
//!   of the shuffled images sees weakly correlated pixels: its MSE rises.
//!
//! Routes (each verify row runs one planted wrong variant it must reject):
//! 1. [`empirical_case`]: the MSE of the crate's empirical Bayes denoiser computed **on the
//!    permuted data set** (its own target, its own noisy inputs `Px + σPg`) against the MSE
//!    computed on the original data, on the same noise draws; the two sums see the same numbers
//!    in a different order, so they agree within a derived rounding bound. Planted: the same
//!    equality claimed for the local denoiser (it fails: the local MSE moves by far more).
//! 2. [`affine_case`]: the crate's optimal affine denoiser and its closed-form MSE
//!    ([`crate::denoisers::linear::affine_mse_with_magnitude`]) from the moments of the permuted
//!    data set against those of the original (eigendecompositions of two different matrices);
//!    derived bound. Planted: the equality for the local denoiser's closed-form MSE.
//! 3. [`local_case`]: the local denoiser's closed-form MSE against a Monte Carlo estimate of
//!    applying it to noisy images (z·SE), on the original and on the shuffled data; planted: the
//!    shuffled Monte Carlo MSE against the unshuffled closed form (the invariance the local
//!    denoiser does not have), rejected at the same z — a strict change with a stated
//!    false-failure probability.
//!
//! What is shared: both sides of routes 1 and 2 run the same crate code, on two different data
//! sets; the claim is that this code's output is equivariant, which a location-dependent bug
//! (or a local architecture) breaks. Route 3 compares two different computations.

use super::{Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND};
use crate::denoisers::linear::{affine_mse_with_magnitude, Affine, OptimalAffine};
use crate::denoisers::local::LocalWindow;
use crate::denoisers::{Bayes, Denoiser};
use crate::error::{ensure_sigma_squared, Error, Result};
use crate::gpu::Gpu;
use crate::numerics::gamma_f64;
use crate::rng::Rng;
use crate::stats::{mean_and_std_error, two_sided_z};
use crate::targets::empirical::empirical;
use crate::targets::images::calpha::CAlphaGenerator;
use crate::targets::images::disks::{disk_image, disk_params};
use crate::targets::{GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "shuffled_pixels";

/// A permutation `π` of `0..d`, acting on images by `(Px)_i = x_{π(i)}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutation {
    map: Vec<usize>,
}

impl Permutation {
    /// From `π` as a list (each of `0..d` exactly once); an index out of range or repeated is
    /// an error naming it.
    pub fn new(map: Vec<usize>) -> Result<Self> {
        let mut seen = vec![false; map.len()];
        for (i, &m) in map.iter().enumerate() {
            if m >= map.len() || seen[m] {
                return Err(Error::InvalidArgument {
                    what: format!("permutation entry {i}").into(),
                    reason: format!(
                        "{m} is out of range or repeated (a permutation of 0..{})",
                        map.len()
                    ),
                });
            }
            seen[m] = true;
        }
        Ok(Self { map })
    }

    /// A uniformly random permutation of `0..d` (Fisher–Yates, one uniform per position).
    pub fn random(d: usize, rng: &mut Rng) -> Self {
        let mut map: Vec<usize> = (0..d).collect();
        for i in (1..d).rev() {
            let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
            map.swap(i, j);
        }
        Self { map }
    }

    /// `π` as a list.
    pub fn map(&self) -> &[usize] {
        &self.map
    }

    /// `Px`, `(Px)_i = x_{π(i)}`; a vector of another length is an error.
    pub fn apply(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.map.len() {
            return Err(Error::DimensionMismatch {
                what: "vector to permute".into(),
                expected: self.map.len(),
                got: x.len(),
            });
        }
        Ok(self.map.iter().map(|&j| x[j]).collect())
    }
}

/// The image families of the rows: grey (channel 0) images of side [`SIDE`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    /// The crate's disk manifold (`targets::images::disks`).
    Disks,
    /// The crate's `C^α` images (`targets::images::calpha`) at this α.
    CAlpha(f64),
}

/// Side of the images (8×8, d = 64).
pub const SIDE: usize = 8;

/// Width of the local window (3×3).
pub const WINDOW: usize = 3;

/// Number of images of each data set.
pub const IMAGES: usize = 50;

/// `n` grey images of side `side` of a family, image i of seed `seed` (channel 0 of the
/// generator's CHW image).
pub fn grey_images(family: Family, side: usize, n: usize, seed: u64) -> Result<Vec<Vec<f64>>> {
    let plane = side * side;
    let calpha = match family {
        Family::CAlpha(alpha) => Some(CAlphaGenerator::new(alpha, side)?),
        Family::Disks => None,
    };
    (0..n)
        .map(|i| {
            let index = u32::try_from(i).map_err(|_| Error::InvalidArgument {
                what: "number of images".into(),
                reason: format!("at most 2^32 images, got {n}"),
            })?;
            let image = match &calpha {
                Some(g) => g.image(seed, index),
                None => disk_image(&disk_params(seed, index, side), side),
            };
            Ok(image[..plane].to_vec())
        })
        .collect()
}

/// A data set and its permuted copy, with their empirical laws.
#[derive(Debug, Clone)]
pub struct ShuffledPair {
    /// The image side.
    pub side: usize,
    /// The permutation.
    pub permutation: Permutation,
    /// The images `x_k` (row-major grey).
    pub original: Vec<Vec<f64>>,
    /// The permuted images `Px_k`.
    pub shuffled: Vec<Vec<f64>>,
    /// The empirical law of the originals.
    pub original_law: GaussianMixture,
    /// The empirical law of the permuted images (built from them, not from `original_law`).
    pub shuffled_law: GaussianMixture,
}

impl ShuffledPair {
    /// The images, their permuted copies under `permutation`, and the two empirical laws.
    pub fn new(side: usize, images: Vec<Vec<f64>>, permutation: Permutation) -> Result<Self> {
        let shuffled = images
            .iter()
            .map(|x| permutation.apply(x))
            .collect::<Result<Vec<_>>>()?;
        if permutation.map().len() != side * side {
            return Err(Error::DimensionMismatch {
                what: "permutation length (side² pixels)".into(),
                expected: side * side,
                got: permutation.map().len(),
            });
        }
        Ok(Self {
            side,
            permutation,
            original_law: empirical(&images)?,
            shuffled_law: empirical(&shuffled)?,
            original: images,
            shuffled,
        })
    }

    /// The pair of a family: [`IMAGES`] images of seed `seed`, a permutation drawn from
    /// `Rng::new(seed, u32::MAX)`.
    pub fn of_family(family: Family, seed: u64) -> Result<Self> {
        let images = grey_images(family, SIDE, IMAGES, seed)?;
        let permutation = Permutation::random(SIDE * SIDE, &mut Rng::new(seed, u32::MAX));
        Self::new(SIDE, images, permutation)
    }

    /// The local-window denoiser of the original and of the shuffled law (window w).
    pub fn local_denoisers(&self, window: usize) -> Result<(LocalWindow, LocalWindow)> {
        let of = |law: &GaussianMixture| {
            LocalWindow::new(self.side, window, &law.mean(), &law.covariance())
        };
        Ok((of(&self.original_law)?, of(&self.shuffled_law)?))
    }
}

/// The rounding bound of one sample's loss of route 1 (see [`empirical_case`]).
fn empirical_sample_bound(
    images: &[Vec<f64>],
    y: &[f64],
    sigma: f64,
    error: &[f64],
    loss: f64,
) -> f64 {
    let (n, d) = (images.len(), y.len());
    let s2 = sigma * sigma;
    let constant =
        (n as f64).ln() + 0.5 * d as f64 * ((2.0 * std::f64::consts::PI).ln() + s2.ln().abs());
    let mut eta: f64 = 0.0;
    let mut largest: f64 = 0.0;
    let mut x_max: f64 = 0.0;
    for x in images {
        let dist: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
        let magnitude = constant + 0.5 * dist / s2;
        eta = eta.max(gamma_f64(d + 4) * magnitude);
        largest = largest.max(magnitude);
        x_max = x.iter().fold(x_max, |m, v| m.max(v.abs()));
    }
    // ρ per route within relative e^θ − 1 of the exact weights; the mix adds γ_{N+1}
    let theta = 2.0 * eta + gamma_f64(n + 4) * (2.0 * largest + (n as f64).ln() + 1.0);
    let phi = theta.exp_m1() + gamma_f64(n + 1) * theta.exp();
    let delta_f = 2.0 * phi * x_max;
    let mut out = 4.0 * gamma_f64(d + 1) * loss;
    for e in error {
        let di = 2.0 * delta_f + 4.0 * f64::EPSILON * e.abs();
        out += di * (2.0 * e.abs() + di);
    }
    out
}

/// Route 1 for one σ: `(MSE on the originals, MSE on the permuted set, derived tolerance,
/// local MSE on the originals, local MSE on the permuted set)` over the noise draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmpiricalMse {
    /// `(1/n)Σ‖x − f*_data(x + σg)‖²` over the images and draws.
    pub original: f64,
    /// `(1/n)Σ‖Px − f*_{P·data}(Px + σPg)‖²` on the same draws, computed on the permuted set.
    pub shuffled: f64,
    /// The derived bound on `|original − shuffled|` in floating point.
    pub tolerance: f64,
    /// The local denoiser's MSE on the originals, same draws.
    pub local_original: f64,
    /// The local denoiser (fitted to the permuted set) on the permuted set, same draws.
    pub local_shuffled: f64,
}

/// Route 1: the empirical Bayes denoiser's MSE on the permuted data set against the original,
/// over `draws` noise draws per image (draw j of image k from `Rng::new(seed, k)`), and the same
/// for the local denoiser of window [`WINDOW`].
///
/// Tolerance (derived): per sample, both routes compute each logit
/// `−ln N − ½(d ln 2π + d ln σ² + ‖y − x_k‖²/σ²)` by the same operations except the order of
/// the d-term sum, so each is within `γ_{d+4}·M_k` of its exact value (`M_k` the sum of the
/// magnitudes of its terms); the softmax (max shift, exp, normalisation) adds
/// `γ_{N+4}(2 max M + ln N + 1)` to the log-weights, so the weights are within relative
/// `e^θ − 1` with `θ = 2 max_k γ_{d+4}M_k + γ_{N+4}(…)`, the mix `Σρ_k x_k` within
/// `φ = e^θ − 1 + γ_{N+1}e^θ` of `max|x|` per route; the loss `Σ(x_i − f_i)²` then differs by
/// `Σ_i δ_i(2|e_i| + δ_i) + 4γ_{d+1}L` with `δ_i = 4φ max|x| + 4ε|e_i|`. The MSE adds
/// `γ_n(MSE_A + MSE_B)` for the two means.
pub fn empirical_case(
    pair: &ShuffledPair,
    sigma: f64,
    draws: usize,
    seed: u64,
) -> Result<EmpiricalMse> {
    ensure_sigma_squared(sigma)?;
    if draws == 0 {
        return Err(Error::InvalidArgument {
            what: "noise draws per image".into(),
            reason: "need at least 1, got 0".into(),
        });
    }
    let bayes_a = Bayes::new(pair.original_law.clone());
    let bayes_b = Bayes::new(pair.shuffled_law.clone());
    let (local_a, local_b) = pair.local_denoisers(WINDOW)?;
    let (local_a, local_b) = (local_a.at(sigma)?, local_b.at(sigma)?);
    let d = pair.side * pair.side;
    let (mut sum_a, mut sum_b, mut bound) = (0.0, 0.0, 0.0);
    let (mut local_sum_a, mut local_sum_b) = (0.0, 0.0);
    let mut count = 0usize;
    let loss = |x: &[f64], f: &[f64]| -> (Vec<f64>, f64) {
        let e: Vec<f64> = x.iter().zip(f).map(|(a, b)| a - b).collect();
        let l = e.iter().map(|v| v * v).sum();
        (e, l)
    };
    for (k, (x, px)) in pair.original.iter().zip(&pair.shuffled).enumerate() {
        let mut rng = Rng::new(seed, k as u32);
        for _ in 0..draws {
            let g = rng.normals(d);
            let y: Vec<f64> = x.iter().zip(&g).map(|(a, b)| a + sigma * b).collect();
            let pg = pair.permutation.apply(&g)?;
            let py: Vec<f64> = px.iter().zip(&pg).map(|(a, b)| a + sigma * b).collect();
            let (e_a, l_a) = loss(x, &bayes_a.denoise(&y, sigma)?);
            let (_, l_b) = loss(px, &bayes_b.denoise(&py, sigma)?);
            bound += empirical_sample_bound(&pair.original, &y, sigma, &e_a, l_a.max(l_b));
            sum_a += l_a;
            sum_b += l_b;
            local_sum_a += loss(x, &local_a.denoise(&y, sigma)?).1;
            local_sum_b += loss(px, &local_b.denoise(&py, sigma)?).1;
            count += 1;
        }
    }
    let n = count as f64;
    let (original, shuffled) = (sum_a / n, sum_b / n);
    Ok(EmpiricalMse {
        original,
        shuffled,
        tolerance: bound / n * (1.0 + gamma_f64(count + 1))
            + gamma_f64(count + 1) * (original + shuffled),
        local_original: local_sum_a / n,
        local_shuffled: local_sum_b / n,
    })
}

/// The controlled check of route 1: `|MSE − MSE_P|` within the tolerance; planted: the local
/// denoiser's `|MSE_local − MSE_local,P|` against the same tolerance.
pub fn empirical_check(out: &EmpiricalMse) -> Controlled {
    Controlled {
        check: Check {
            residual: (out.original - out.shuffled).abs(),
            tolerance: out.tolerance,
        },
        planted: Check {
            residual: (out.local_original - out.local_shuffled).abs(),
            tolerance: out.tolerance,
        },
    }
}

/// Route 2 for one σ: the closed-form MSEs of the optimal affine and of the local denoiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedFormMse {
    /// The optimal affine denoiser's MSE from the original data's moments.
    pub affine_original: f64,
    /// The same from the permuted data's moments (its own eigendecomposition).
    pub affine_shuffled: f64,
    /// The derived bound on their difference.
    pub tolerance: f64,
    /// The local denoiser's minimum MSE by its Schur complements
    /// ([`LocalWindow::schur_mse`]), original data.
    pub local_original: f64,
    /// The same on the permuted data (windows on the shuffled grid).
    pub local_shuffled: f64,
}

/// The optimal affine denoiser of a law at σ and its closed-form MSE with the magnitude of its
/// terms.
fn affine_of(law: &GaussianMixture, sigma: f64) -> Result<(Affine, f64, f64, f64)> {
    let (mean, cov) = (law.mean(), law.covariance());
    let optimal = OptimalAffine::from_moments(&mean, &cov)?;
    let f = optimal.at(sigma)?;
    let (mse, magnitude) = affine_mse_with_magnitude(&mean, &cov, f.weight(), f.bias(), sigma)?;
    let lambda_max = optimal
        .factor()
        .eigenvalues
        .iter()
        .cloned()
        .fold(0.0, f64::max);
    Ok((f, mse, magnitude, lambda_max))
}

/// Route 2: the optimal affine MSE `affine_mse(μ, Σ, W, b, σ)` of each data set, each with its
/// own moments and eigendecomposition.
///
/// Tolerance (derived): each MSE formula is within `γ_{2d+8}` of its magnitude
/// ([`affine_mse_with_magnitude`]); the computed `Ŵ` is the exact optimum of a covariance
/// within `‖δΣ‖ ≤ 64dελ_max` of the true one (the eigensolver's backward error and the rounding
/// floor `8dελ_max`, an assumption on faer's Householder tridiagonalisation, stated), so
/// `‖δW‖ ≤ ‖δΣ‖/σ² + γ_{d+2}` (`W = I − σ²(Σ + σ²I)⁻¹` is `1/σ²`-Lipschitz in Σ; the assembly's
/// rounding), and since `(W*, b*)` is stationary the MSE moves by at most
/// `d‖δW‖²(λ_max + σ²)`, per route.
pub fn affine_case(pair: &ShuffledPair, sigma: f64) -> Result<ClosedFormMse> {
    ensure_sigma_squared(sigma)?;
    let d = pair.side * pair.side;
    let (_, mse_a, mag_a, lam_a) = affine_of(&pair.original_law, sigma)?;
    let (_, mse_b, mag_b, lam_b) = affine_of(&pair.shuffled_law, sigma)?;
    let s2 = sigma * sigma;
    let quadratic = |lam: f64| {
        let dw = 64.0 * d as f64 * f64::EPSILON * lam / s2 + gamma_f64(d + 2);
        d as f64 * dw * dw * (lam + s2)
    };
    let tolerance = gamma_f64(2 * d + 8) * (mag_a + mag_b) + quadratic(lam_a) + quadratic(lam_b);
    let (local_a, local_b) = pair.local_denoisers(WINDOW)?;
    Ok(ClosedFormMse {
        affine_original: mse_a,
        affine_shuffled: mse_b,
        tolerance,
        local_original: local_a.schur_mse(sigma)?,
        local_shuffled: local_b.schur_mse(sigma)?,
    })
}

/// The controlled check of route 2; planted: the local closed-form MSEs claimed equal.
pub fn affine_check(out: &ClosedFormMse) -> Controlled {
    Controlled {
        check: Check {
            residual: (out.affine_original - out.affine_shuffled).abs(),
            tolerance: out.tolerance,
        },
        planted: Check {
            residual: (out.local_original - out.local_shuffled).abs(),
            tolerance: out.tolerance,
        },
    }
}

/// False-failure probability of the local row (whole row, Bonferroni over its checks).
pub const LOCAL_ALPHA: f64 = 1e-6;

/// Route 3 for one σ: closed form and Monte Carlo of the local denoiser's MSE on both sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalMse {
    /// Closed form (`affine_mse` of the fitted map), original data.
    pub closed_original: f64,
    /// Closed form, permuted data.
    pub closed_shuffled: f64,
    /// Monte Carlo mean and standard error, original data.
    pub mc_original: (f64, f64),
    /// Monte Carlo mean and standard error, permuted data (independent draws).
    pub mc_shuffled: (f64, f64),
}

/// Monte Carlo of `E‖x − f(x + σg)‖²` over the law's images, `draws` per image, draw j of image
/// k from `Rng::new(seed, k)`: (mean, SE). The images are stratified (each used `draws`
/// times), so the i.i.d. SE over all samples is conservative.
fn local_monte_carlo(
    images: &[Vec<f64>],
    f: &Affine,
    sigma: f64,
    draws: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    ensure_sigma_squared(sigma)?;
    // the map's nonzero weights row by row (a local map has at most w² per row): the same
    // products as `f.denoise`, without the zeros
    let (w, b) = (f.weight(), f.bias());
    let rows: Vec<Vec<(usize, f64)>> = (0..w.nrows())
        .map(|p| {
            (0..w.ncols())
                .filter(|&q| w[(p, q)] != 0.0)
                .map(|q| (q, w[(p, q)]))
                .collect()
        })
        .collect();
    let mut losses = Vec::with_capacity(images.len() * draws);
    for (k, x) in images.iter().enumerate() {
        let mut rng = Rng::new(seed, k as u32);
        for _ in 0..draws {
            let g = rng.normals(x.len());
            let y: Vec<f64> = x.iter().zip(&g).map(|(a, b)| a + sigma * b).collect();
            let loss = rows
                .iter()
                .zip(b)
                .zip(x)
                .map(|((row, bp), xp)| {
                    let out = bp + row.iter().map(|(q, v)| v * y[*q]).sum::<f64>();
                    (xp - out) * (xp - out)
                })
                .sum();
            losses.push(loss);
        }
    }
    Ok(mean_and_std_error(&losses))
}

/// Route 3: the local denoiser's closed-form MSE ([`affine_mse_with_magnitude`] of the fitted
/// map, under the data's moments) and a Monte Carlo of applying it, on each data set; the
/// shuffled set's draws use stream seed `seed + 1`.
pub fn local_case(pair: &ShuffledPair, sigma: f64, draws: usize, seed: u64) -> Result<LocalMse> {
    ensure_sigma_squared(sigma)?;
    if draws < 2 {
        return Err(Error::InvalidArgument {
            what: "noise draws per image".into(),
            reason: format!("need at least 2 for a standard error, got {draws}"),
        });
    }
    let (local_a, local_b) = pair.local_denoisers(WINDOW)?;
    let (fa, fb) = (local_a.at(sigma)?, local_b.at(sigma)?);
    let closed = |f: &Affine, law: &GaussianMixture| -> Result<f64> {
        Ok(
            affine_mse_with_magnitude(&law.mean(), &law.covariance(), f.weight(), f.bias(), sigma)?
                .0,
        )
    };
    Ok(LocalMse {
        closed_original: closed(&fa, &pair.original_law)?,
        closed_shuffled: closed(&fb, &pair.shuffled_law)?,
        mc_original: local_monte_carlo(&pair.original, &fa, sigma, draws, seed)?,
        mc_shuffled: local_monte_carlo(&pair.shuffled, &fb, sigma, draws, seed.wrapping_add(1))?,
    })
}

/// The controlled checks of route 3 at `z`: the closed form against Monte Carlo on each set
/// (`|closed − MC| ≤ z·SE`), and planted: the shuffled Monte Carlo against the unshuffled
/// closed form at the same z.
pub fn local_checks(out: &LocalMse, z: f64) -> [Controlled; 2] {
    let planted = Check {
        residual: (out.mc_shuffled.0 - out.closed_original).abs(),
        tolerance: z * out.mc_shuffled.1,
    };
    [
        Controlled {
            check: Check {
                residual: (out.closed_original - out.mc_original.0).abs(),
                tolerance: z * out.mc_original.1,
            },
            planted,
        },
        Controlled {
            check: Check {
                residual: (out.closed_shuffled - out.mc_shuffled.0).abs(),
                tolerance: z * out.mc_shuffled.1,
            },
            planted,
        },
    ]
}

/// Row: route 1.
pub const EMPIRICAL_INVARIANT: Claim = Claim {
    theorem: THEOREM,
    statement: "pixel permutation P: MSE of the empirical optimal denoiser on P·data (its own \
                target, inputs Px + σPg) = MSE on the data (8×8 disks and C^2 images, N = 50)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "shuffled_pixels::empirical_case: per-sample logits within γ_{d+4}·magnitude \
                      (sum order), softmax and mix roundings, loss sums; γ_n for the means",
    planted_variant: "the same equality for the 3×3 local-window linear denoiser",
    false_failure: FalseFailure::None,
};

/// Row: route 2.
pub const AFFINE_INVARIANT: Claim = Claim {
    theorem: THEOREM,
    statement: "pixel permutation P: closed-form MSE of the optimal affine denoiser of P·data \
                (moments and eigendecomposition of the permuted set) = that of the data",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "shuffled_pixels::affine_case: γ_{2d+8} of each formula's magnitude + the \
                      quadratic effect of the eigensolver's backward error at the optimum",
    planted_variant: "the same equality for the 3×3 local-window denoiser's closed-form MSE",
    false_failure: FalseFailure::None,
};

/// Row: route 3.
pub const LOCAL_CHANGES: Claim = Claim {
    theorem: THEOREM,
    statement: "3×3 local-window linear denoiser: closed-form MSE = Monte Carlo MSE on the data \
                and on P·data, and P changes it (shuffled MC ≠ unshuffled closed form)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "shuffled_pixels::local_checks: z·SE, z for α = 1e-6 over the row's checks \
                      (Bonferroni)",
    planted_variant: "invariance of the local denoiser: shuffled MC MSE = unshuffled closed form",
    false_failure: FalseFailure::PerRow(LOCAL_ALPHA),
};

/// Seed of the rows' images, permutations and noise.
const ROW_SEED: u64 = 0x5_4FF1_ED00;

/// The families of the rows: disks and `C^α` at α = 2 (the generator's default).
pub const FAMILIES: [Family; 2] = [Family::Disks, Family::CAlpha(2.0)];

/// The σ grid of the rows (every second at quick).
fn sigmas(depth: Depth) -> Vec<f64> {
    depth.thin(2, [0.05, 0.1, 0.2, 0.4, 0.8])
}

/// The data pairs at a depth: one per family and seed of `depth.seeds`.
pub fn pairs(depth: Depth) -> Result<Vec<ShuffledPair>> {
    let mut out = Vec::new();
    for seed in depth.seeds(ROW_SEED) {
        for family in FAMILIES {
            out.push(ShuffledPair::of_family(family, seed)?);
        }
    }
    Ok(out)
}

/// Noise draws per image of route 1: 1 at quick, 2 by default, 8 at thorough.
pub fn empirical_draws(depth: Depth) -> usize {
    depth.samples(2)
}

/// Noise draws per image of route 3: 4 at quick, 16 by default, 64 at thorough.
pub fn local_draws(depth: Depth) -> usize {
    depth.samples(16)
}

/// The [`EMPIRICAL_INVARIANT`] row's cases: each pair × σ (10 by default, 6 at quick, 40 at
/// thorough).
pub fn empirical_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut out = Vec::new();
    for pair in pairs(depth)? {
        for sigma in sigmas(depth) {
            out.push(empirical_check(&empirical_case(
                &pair,
                sigma,
                empirical_draws(depth),
                ROW_SEED ^ 0xE,
            )?));
        }
    }
    Ok(out)
}

/// The [`AFFINE_INVARIANT`] row's cases: each pair × σ.
pub fn affine_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut out = Vec::new();
    for pair in pairs(depth)? {
        for sigma in sigmas(depth) {
            out.push(affine_check(&affine_case(&pair, sigma)?));
        }
    }
    Ok(out)
}

/// The [`LOCAL_CHANGES`] row's cases: each pair × σ × {original, shuffled}, z for
/// [`LOCAL_ALPHA`] split over them.
pub fn local_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let pairs = pairs(depth)?;
    let sigmas = sigmas(depth);
    let z = two_sided_z(LOCAL_ALPHA / (2 * pairs.len() * sigmas.len()) as f64);
    let mut out = Vec::new();
    for pair in &pairs {
        for &sigma in &sigmas {
            let case = local_case(pair, sigma, local_draws(depth), ROW_SEED ^ 0x10C)?;
            out.extend(local_checks(&case, z));
        }
    }
    Ok(out)
}

/// The checks of `verify` at a depth.
pub(crate) fn default_verdicts(_gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    vec![
        Verdict::collect(&EMPIRICAL_INVARIANT, CPU_BACKEND, depth, || {
            empirical_cases(depth)
        }),
        Verdict::collect(&AFFINE_INVARIANT, CPU_BACKEND, depth, || {
            affine_cases(depth)
        }),
        Verdict::collect(&LOCAL_CHANGES, CPU_BACKEND, depth, || local_cases(depth)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(Px)_i = x_{π(i)}` by hand; a repeated or out-of-range entry is refused by index.
    #[test]
    fn permutation_by_hand() {
        let p = Permutation::new(vec![2, 0, 1]).unwrap();
        assert_eq!(
            p.apply(&[10.0, 20.0, 30.0]).unwrap(),
            vec![30.0, 10.0, 20.0]
        );
        let bad = Permutation::new(vec![0, 0, 1]).unwrap_err();
        assert!(bad.to_string().contains("entry 1"), "{bad}");
        assert!(p.apply(&[1.0]).is_err());
    }

    /// A random permutation is one, and moves most pixels of 64.
    #[test]
    fn random_permutation_is_a_permutation() {
        let p = Permutation::random(64, &mut Rng::new(3, 0));
        assert!(Permutation::new(p.map().to_vec()).is_ok());
        assert!(p.map().iter().enumerate().filter(|(i, m)| i != *m).count() > 50);
    }
}
