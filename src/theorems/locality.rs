//! Theorem `locality` — Levine–Weiss Thm 2 and the ELS machine of Kamb & Ganguli: a
//! convolutional denoiser sees only its receptive field, and the optimal local denoisers depend
//! on the training set only through its patches.
//!
//! **Architecture side.** A stack of stride-1 convolutions with kernel sides `k_1, …, k_L` (and
//! pointwise nonlinearities between them) has the receptive field
//! `S = 1 + Σ_l (k_l − 1)` ([`receptive_field`], computed from the layers): output pixel p reads
//! only the inputs within Chebyshev distance `r = (S − 1)/2` of p (distance measured modulo the
//! side under circular padding; with zero padding the window is clipped). So `∂f_p/∂y_q = 0`
//! for every q outside that window, exactly: the forward pass of `f_p` never reads `y_q`, and
//! `f(y + e_q)_p` has the same bits as `f(y)_p`. [`architecture_case`] probes every input pixel
//! in one batch on the GPU (`gpu::conv`, tanh between layers) and measures the largest
//! response outside the window relative to the largest inside.
//!
//! With average pooling and nearest upsampling between the convolutions (a U-Net's path without
//! its skip connections) the field is no longer one symmetric window: [`dependency_rows`]
//! propagates the interval of input rows (and columns) backwards through the stages — a
//! convolution widens `[a, b]` to `[a − r, b + r]`, pooling by f maps it to `[f·a, f·b + f − 1]`,
//! upsampling by f to `[⌊a/f⌋, ⌊b/f⌋]` — clipped to each resolution's image under zero padding
//! and wrapped modulo the input side under circular padding. The window then depends on the
//! output pixel's position modulo the pooling, and it is wider than `1 + Σ(k − 1)`: the
//! stride-1 formula with the resampling ignored is rejected
//! ([`architecture_case_ignoring_resampling`]).
//!
//! **Data side.** For a training set of images `x_i` (side n, one channel) and an odd patch
//! side P (radius ρ), with `y_Ω(p)` the P×P patch of y centred at p under the padding, the
//! optimal *equivariant local* (ELS) denoiser is the posterior mean of the centre pixel given
//! the patch, under the law of all training patches at all locations:
//!
//! `f_ELS(y)_p = Σ_{i,q} w_{iq}(p)·x_i[q]`, `w_{iq}(p) ∝ exp(−‖y_Ω(p) − x_i,Ω(q)‖²/2σ²)`;
//!
//! the *local* (LS) denoiser keeps only q = p. Two routes compute them: from the whole images,
//! reading patches by index arithmetic ([`els_from_images`]), and from an explicit patch bank
//! built by rolling each image ([`PatchBank`]). Under circular padding, a data set and its
//! cyclic shift have the same patch multiset, so their ELS denoisers are equal, while the global
//! empirical denoiser (whose outputs are the training images themselves) and the LS denoiser
//! differ — the negative control. Under zero padding the shift changes the border patches and
//! the ELS denoisers differ: "depends only on the patches" needs the circular boundary (or a
//! shift-invariant data set), a counterexample kept as a test.
//!
//! **Rounding.** Both data-side routes compute the same sums in different orders in f64. A
//! logit `ℓ = −Σ_m d_m²/2σ²` over `P²` differences carries at most `γ_{P²+4}|ℓ|`; with θ the
//! largest such error over a softmax, each weight is within the factor `e^{±2θ}` of its exact
//! value, the exponentials, their sum and the division add `γ_{M+3}` (M terms), and the
//! average `Σ w x` adds `γ_M`: per route `|f̂ − f| ≤ (e^{2θ}(1 + γ_{M+3}) − 1 + γ_M)·max|x|`
//! ([`softmax_average_bound`]); two routes, twice that.

use super::{
    backend_label, Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict,
    CPU_BACKEND,
};
use crate::denoisers::Denoiser;
use crate::error::{ensure_sigma, Error, Result};
use crate::gpu::conv::{conv2d, ConvShape, Padding};
use crate::gpu::resample::{resample, Resample, ResampleShape};
use crate::gpu::Gpu;
use crate::linalg;
use crate::numerics::{gamma_f64, F32_UNIT_ROUNDOFF};
use crate::rng::Rng;
use crate::theorems::shuffled_pixels::{grey_images, Family};

/// Theorem id.
pub const THEOREM: &str = "locality";

/// `S = 1 + Σ_l (k_l − 1)`: the receptive field of stride-1 convolutions with kernel sides
/// `kernels` (pointwise maps between them do not widen it).
pub fn receptive_field(kernels: &[usize]) -> usize {
    1 + kernels.iter().map(|k| k.saturating_sub(1)).sum::<usize>()
}

/// One stage of a sequential network, as the receptive field sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A stride-1 convolution of odd kernel side k: output pixel i reads inputs i − r … i + r,
    /// `r = (k − 1)/2`.
    Conv(usize),
    /// Average pooling by f: output pixel i reads inputs f·i … f·i + f − 1.
    Pool(usize),
    /// Nearest upsampling by f: output pixel i reads input ⌊i/f⌋.
    Upsample(usize),
}

/// The input rows (or columns) that output row `index` of a sequential network of `stages`
/// (first stage first) can depend on, along a side of `side` input pixels: the interval
/// `[lo, hi]` propagated backwards through the stages (module doc), clipped to the image at each
/// resolution under zero padding (reads outside are padding zeros), left unwrapped under circular
/// padding (the set is `{lo, …, hi} mod side`; every resolution's side is the input's divided
/// by the pooling so far, so wrapping commutes with the maps). For convolutions alone this is the
/// window of radius `(S − 1)/2`, S from [`receptive_field`].
/// Errors: an even kernel side, a zero factor, or a pooling that does not divide the side.
pub fn dependency_rows(
    stages: &[Stage],
    side: usize,
    index: usize,
    padding: Padding,
) -> Result<(i64, i64)> {
    let bad = |reason: String| {
        Err(Error::InvalidArgument {
            what: "network stages".into(),
            reason,
        })
    };
    // the side at the input of each stage
    let mut sides = Vec::with_capacity(stages.len());
    let mut n = side;
    for stage in stages {
        sides.push(n);
        match *stage {
            Stage::Conv(k) if k % 2 == 0 => return bad(format!("kernel side {k} is even")),
            Stage::Conv(_) => {}
            Stage::Pool(0) | Stage::Upsample(0) => return bad("a factor of 0".into()),
            Stage::Pool(f) if !n.is_multiple_of(f) => {
                return bad(format!("pooling by {f} a side of {n}"))
            }
            Stage::Pool(f) => n /= f,
            Stage::Upsample(f) => n *= f,
        }
    }
    if index >= n {
        return bad(format!("output index {index} on a side of {n}"));
    }
    let (mut lo, mut hi) = (index as i64, index as i64);
    for (stage, &n_in) in stages.iter().zip(&sides).rev() {
        (lo, hi) = match *stage {
            Stage::Conv(k) => {
                let r = (k as i64 - 1) / 2;
                (lo - r, hi + r)
            }
            Stage::Pool(f) => (f as i64 * lo, f as i64 * hi + f as i64 - 1),
            Stage::Upsample(f) => (lo.div_euclid(f as i64), hi.div_euclid(f as i64)),
        };
        if padding == Padding::Zero {
            (lo, hi) = (lo.max(0), hi.min(n_in as i64 - 1));
        }
    }
    Ok((lo, hi))
}

/// Whether input row `q` (of a side of `side`) lies in the dependency interval `[lo, hi]` of
/// [`dependency_rows`].
fn in_dependency(q: usize, (lo, hi): (i64, i64), side: usize, padding: Padding) -> bool {
    match padding {
        Padding::Zero => lo <= q as i64 && q as i64 <= hi,
        Padding::Circular => (q as i64 - lo).rem_euclid(side as i64) <= hi - lo,
    }
}

/// The distance between rows (or columns) `a` and `b` of a side of length n: `|a − b|`, or
/// `min(|a − b|, n − |a − b|)` when the image wraps.
fn side_distance(a: usize, b: usize, n: usize, padding: Padding) -> usize {
    let d = a.abs_diff(b);
    match padding {
        Padding::Zero => d,
        Padding::Circular => d.min(n - d),
    }
}

/// One layer of a [`ConvNet`].
#[derive(Debug, Clone)]
enum Layer {
    /// A convolution (its shape at batch 1) and its weights.
    Conv(ConvShape, Vec<f64>),
    /// Average pooling or nearest upsampling by a factor, on `channels` planes of
    /// `height × width` (its input).
    Resample {
        map: Resample,
        factor: usize,
        channels: usize,
        height: usize,
        width: usize,
    },
}

/// A random sequential convolutional network on one-channel `height × width` images: stride-1
/// convolutions (one channel in, `channels` hidden, one out) with tanh after every one but the
/// last, and average pooling / nearest upsampling stages between them; no biases, standard
/// normal weights scaled by `1/√(fan-in)`.
#[derive(Debug, Clone)]
pub struct ConvNet {
    layers: Vec<Layer>,
    stages: Vec<Stage>,
    height: usize,
    width: usize,
    padding: Padding,
}

impl ConvNet {
    /// The network of convolutions with kernel sides `kernels` (odd) alone, with `channels`
    /// hidden channels and weights of seed `seed`. Errors: as [`ConvNet::random_staged`].
    pub fn random(
        kernels: &[usize],
        channels: usize,
        height: usize,
        width: usize,
        padding: Padding,
        seed: u64,
    ) -> Result<Self> {
        let stages: Vec<Stage> = kernels.iter().map(|&k| Stage::Conv(k)).collect();
        Self::random_staged(&stages, channels, height, width, padding, seed)
    }

    /// The network of `stages` (first stage first) with `channels` hidden channels and weights
    /// of seed `seed` (drawn convolution by convolution, so the convolution-only network of the
    /// same kernels has the same weights). Errors: no convolution, a zero factor, a pooling that
    /// does not divide the side there, or a layer shape [`ConvShape::validate`] refuses.
    pub fn random_staged(
        stages: &[Stage],
        channels: usize,
        height: usize,
        width: usize,
        padding: Padding,
        seed: u64,
    ) -> Result<Self> {
        let Some(last) = stages.iter().rposition(|s| matches!(s, Stage::Conv(_))) else {
            return Err(Error::InvalidArgument {
                what: "convolution layers".into(),
                reason: "need at least one layer, got 0".into(),
            });
        };
        let mut rng = Rng::new(seed, 0x10ca);
        let (mut h, mut w, mut planes) = (height, width, 1);
        let mut layers = Vec::with_capacity(stages.len());
        for (l, stage) in stages.iter().enumerate() {
            let (map, factor) = match *stage {
                Stage::Conv(kernel) => {
                    let shape = ConvShape {
                        batch: 1,
                        in_channels: planes,
                        out_channels: if l == last { 1 } else { channels },
                        height: h,
                        width: w,
                        kernel,
                        padding,
                    };
                    shape.validate()?;
                    let scale = 1.0 / ((shape.in_channels * kernel * kernel) as f64).sqrt();
                    let weights = (0..shape.weight_len())
                        .map(|_| scale * rng.normal())
                        .collect();
                    planes = shape.out_channels;
                    layers.push(Layer::Conv(shape, weights));
                    continue;
                }
                Stage::Pool(f) => (Resample::AveragePool, f),
                Stage::Upsample(f) => (Resample::UpsampleNearest, f),
            };
            let shape = ResampleShape {
                planes,
                height: h,
                width: w,
                factor,
            };
            if factor == 0 || (map == Resample::AveragePool && (h % factor != 0 || w % factor != 0))
            {
                return Err(Error::InvalidArgument {
                    what: format!("stage {l}").into(),
                    reason: format!("{stage:?} of a {h}×{w} image"),
                });
            }
            layers.push(Layer::Resample {
                map,
                factor,
                channels: planes,
                height: h,
                width: w,
            });
            (h, w) = shape.output_side(map);
        }
        Ok(Self {
            layers,
            stages: stages.to_vec(),
            height,
            width,
            padding,
        })
    }

    /// The kernel sides of the convolutions, first layer first.
    pub fn kernels(&self) -> Vec<usize> {
        self.stages
            .iter()
            .filter_map(|s| match s {
                Stage::Conv(k) => Some(*k),
                _ => None,
            })
            .collect()
    }

    /// The stages, first first.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// `f(y)` for a batch of `batch` one-channel images (flat, `batch·height·width`), on the GPU
    /// in f32 (`gpu::conv`, `gpu::resample`), tanh after every convolution but the last.
    pub fn forward(&self, gpu: &Gpu, images: &[f64], batch: usize) -> Result<Vec<f64>> {
        let mut x = images.to_vec();
        let last = self
            .layers
            .iter()
            .rposition(|l| matches!(l, Layer::Conv(..)))
            .unwrap_or(0);
        for (l, layer) in self.layers.iter().enumerate() {
            match layer {
                Layer::Conv(shape, weights) => {
                    let shape = ConvShape { batch, ..*shape };
                    x = conv2d(gpu, &shape, &x, weights)?;
                    if l < last {
                        x.iter_mut().for_each(|v| *v = v.tanh());
                    }
                }
                Layer::Resample {
                    map,
                    factor,
                    channels,
                    height,
                    width,
                } => {
                    let shape = ResampleShape {
                        planes: batch * channels,
                        height: *height,
                        width: *width,
                        factor: *factor,
                    };
                    x = resample(gpu, &shape, *map, &x)?;
                }
            }
        }
        Ok(x)
    }
}

/// One case of the architecture row: `y` standard normal, every input pixel q probed as
/// `f(y + e_q) − f(y)` (one batch of `1 + d` images); the response of output pixel p to q is
/// `|f(y+e_q)_p − f(y)_p|`. The check's residual is the largest response outside p's
/// dependency rectangle ([`dependency_rows`] × the same for columns, from the stages) over the
/// largest response overall, within f32's unit roundoff (it is exactly 0: the forward pass of
/// `f_p` never reads those inputs); the planted variant takes the window of radius
/// `⌊(S − 1)/4⌋` at full resolution (the field counted as `1 + Σ(k − 1)/2`, resampling
/// ignored), whose outside holds pixels the network does read.
pub fn architecture_case(gpu: &Gpu, net: &ConvNet, seed: u64) -> Result<Controlled> {
    architecture_case_against(gpu, net, seed, |_, _| Ok(None))
}

/// [`architecture_case`] with another planted window: the planted residual is the largest
/// response outside the rectangle `extra(p_row, p_col)` = (rows `[lo, hi]`, columns `[lo, hi]`,
/// read as [`dependency_rows`] reads them) of output pixel p; `None` keeps the row's planted
/// window. Errors: as [`architecture_case`], or what `extra` returns.
pub fn architecture_case_against(
    gpu: &Gpu,
    net: &ConvNet,
    seed: u64,
    extra: impl Fn(usize, usize) -> Result<Option<((i64, i64), (i64, i64))>>,
) -> Result<Controlled> {
    let (height, width, padding) = (net.height, net.width, net.padding);
    let d = height * width;
    let mut rng = Rng::new(seed, 0x10cb);
    let y: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let mut batch = Vec::with_capacity((d + 1) * d);
    batch.extend_from_slice(&y);
    for q in 0..d {
        let mut probe = y.clone();
        probe[q] += 1.0;
        batch.extend_from_slice(&probe);
    }
    let out = net.forward(gpu, &batch, d + 1)?;
    let d_out = out.len() / (d + 1);
    let out_width = {
        let (mut h, mut w) = (height, width);
        for stage in &net.stages {
            match *stage {
                Stage::Pool(f) => (h, w) = (h / f, w / f),
                Stage::Upsample(f) => (h, w) = (h * f, w * f),
                Stage::Conv(_) => {}
            }
        }
        debug_assert_eq!(h * w, d_out);
        w
    };
    let planted_radius = (receptive_field(&net.kernels()) - 1) / 4;
    let (mut outside, mut planted_outside, mut largest) = (0.0f64, 0.0f64, 0.0f64);
    for p in 0..d_out {
        let (pr, pc) = (p / out_width, p % out_width);
        let rows = dependency_rows(&net.stages, height, pr, padding)?;
        let cols = dependency_rows(&net.stages, width, pc, padding)?;
        let second = extra(pr, pc)?;
        for q in 0..d {
            let (qr, qc) = (q / width, q % width);
            let response = (out[(q + 1) * d_out + p] - out[p]).abs();
            largest = largest.max(response);
            let inside =
                in_dependency(qr, rows, height, padding) && in_dependency(qc, cols, width, padding);
            if !inside {
                outside = outside.max(response);
            }
            let planted_inside = match second {
                Some((r, c)) => {
                    in_dependency(qr, r, height, padding) && in_dependency(qc, c, width, padding)
                }
                None => {
                    let chebyshev = side_distance(pr, qr, height, padding)
                        .max(side_distance(pc, qc, width, padding));
                    chebyshev <= planted_radius
                }
            };
            if !planted_inside {
                planted_outside = planted_outside.max(response);
            }
        }
    }
    if largest == 0.0 {
        return Err(Error::Numerical(
            "the network's output does not respond to any input pixel".into(),
        ));
    }
    Ok(Controlled {
        check: Check {
            residual: outside / largest,
            tolerance: F32_UNIT_ROUNDOFF,
        },
        planted: Check {
            residual: planted_outside / largest,
            tolerance: F32_UNIT_ROUNDOFF,
        },
    })
}

/// [`architecture_case`] with the planted window the stride-1 field `1 + Σ(k − 1)` with the
/// resampling stages ignored (the formula of [`receptive_field`] applied to a network that
/// pools): rejected when pooling widens the field.
pub fn architecture_case_ignoring_resampling(
    gpu: &Gpu,
    net: &ConvNet,
    seed: u64,
) -> Result<Controlled> {
    let convolutions: Vec<Stage> = net.kernels().into_iter().map(Stage::Conv).collect();
    architecture_case_against(gpu, net, seed, |pr, pc| {
        // the output pixel's position at the input's resolution, as if nothing resampled
        Ok(Some((
            dependency_rows(
                &convolutions,
                net.height,
                pr.min(net.height - 1),
                net.padding,
            )?,
            dependency_rows(&convolutions, net.width, pc.min(net.width - 1), net.padding)?,
        )))
    })
}

/// The architecture row's networks at `depth`: the convolution stacks {3, 3} and {3, 5, 3}
/// (fields 5 and 9) on 11×13 images, and the pooled stack conv 3 – pool 2 – conv 3 – upsample
/// 2 – conv 3 on 12×14 images, 3 hidden channels, both paddings; one weight seed per stack and
/// padding (four at thorough; the quick depth keeps the first and the pooled stacks), the
/// weight seeds keyed by the stack's place in [`POOLED_AND_PLAIN_STACKS`].
pub fn architecture_cases(gpu: &Gpu, depth: Depth) -> Result<Vec<Controlled>> {
    let stacks = depth.thin(2, POOLED_AND_PLAIN_STACKS.iter().enumerate());
    let mut cases = Vec::new();
    for (s, &(stages, height, width)) in stacks {
        for (pad, padding) in [Padding::Zero, Padding::Circular].into_iter().enumerate() {
            for seed in depth.seeds(0x10c0 + 16 * s as u64 + pad as u64) {
                let net = ConvNet::random_staged(stages, 3, height, width, padding, seed)?;
                cases.push(architecture_case(gpu, &net, seed)?);
            }
        }
    }
    Ok(cases)
}

/// The architecture row's stacks with their image sides (module doc).
pub const POOLED_AND_PLAIN_STACKS: [(&[Stage], usize, usize); 3] = [
    (&[Stage::Conv(3), Stage::Conv(3)], 11, 13),
    (&[Stage::Conv(3), Stage::Conv(5), Stage::Conv(3)], 11, 13),
    (
        &[
            Stage::Conv(3),
            Stage::Pool(2),
            Stage::Conv(3),
            Stage::Upsample(2),
            Stage::Conv(3),
        ],
        12,
        14,
    ),
];

/// The padded value of `image` (side n) at row `i`, column `j` (signed): wrapped under circular
/// padding, 0 outside under zero padding.
fn padded_pixel(image: &[f64], n: usize, i: isize, j: isize, padding: Padding) -> f64 {
    let side = n as isize;
    match padding {
        Padding::Circular => image[(i.rem_euclid(side) * side + j.rem_euclid(side)) as usize],
        Padding::Zero => {
            if (0..side).contains(&i) && (0..side).contains(&j) {
                image[(i * side + j) as usize]
            } else {
                0.0
            }
        }
    }
}

/// Which training patches a local denoiser averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locality {
    /// Every location of every image: the equivariant local (ELS) denoiser.
    Equivariant,
    /// Only the output pixel's own location in every image: the local (LS) denoiser.
    AtOwnLocation,
}

/// Returns an error unless the images are square of side `side`, the patch side is odd and
/// at most the side, and there is an image.
fn ensure_patch_setup(images: &[Vec<f64>], side: usize, patch: usize) -> Result<()> {
    if images.is_empty() {
        return Err(Error::InvalidArgument {
            what: "training images".into(),
            reason: "need at least one image, got 0".into(),
        });
    }
    if patch.is_multiple_of(2) || patch > side {
        return Err(Error::InvalidArgument {
            what: "patch side".into(),
            reason: format!("must be odd and at most the image side {side}, got {patch}"),
        });
    }
    for image in images {
        crate::error::ensure_len("training image", image, side * side)?;
        crate::error::ensure_finite("training image", image)?;
    }
    Ok(())
}

/// Per-route bound on a softmax average `Σ w_i x_i` of M terms whose logits were computed
/// with errors up to θ (module doc): `(e^{2θ}(1 + γ_{M+3}) − 1 + γ_M)·max|x|`.
pub fn softmax_average_bound(theta: f64, terms: usize, max_abs: f64) -> f64 {
    ((2.0 * theta).exp() * (1.0 + gamma_f64(terms + 3)) - 1.0 + gamma_f64(terms)) * max_abs
}

/// `(f(y), bound)`: the ELS or LS denoiser of `images` (side `side`, patch side `patch`) at
/// `y` and noise level σ, from the whole images (route A: patches read by index arithmetic, a
/// hand-written log-sum-exp), with the per-pixel rounding bound of one route.
/// Errors: bad images or patch, y of the wrong length or not finite, σ ≤ 0.
pub fn els_from_images(
    images: &[Vec<f64>],
    side: usize,
    patch: usize,
    padding: Padding,
    locality: Locality,
    y: &[f64],
    sigma: f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    ensure_patch_setup(images, side, patch)?;
    crate::error::ensure_len("noisy image y", y, side * side)?;
    crate::error::ensure_finite("noisy image y", y)?;
    ensure_sigma(sigma)?;
    let rho = (patch / 2) as isize;
    let two_var = 2.0 * sigma * sigma;
    let max_abs = images.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut values = Vec::with_capacity(side * side);
    let mut bounds = Vec::with_capacity(side * side);
    for p in 0..side * side {
        let (pi, pj) = ((p / side) as isize, (p % side) as isize);
        let locations: Vec<usize> = match locality {
            Locality::Equivariant => (0..side * side).collect(),
            Locality::AtOwnLocation => vec![p],
        };
        let mut logits = Vec::with_capacity(images.len() * locations.len());
        let mut centres = Vec::with_capacity(logits.capacity());
        for image in images {
            for &q in &locations {
                let (qi, qj) = ((q / side) as isize, (q % side) as isize);
                let mut distance = 0.0;
                for a in -rho..=rho {
                    for b in -rho..=rho {
                        let diff = padded_pixel(y, side, pi + a, pj + b, padding)
                            - padded_pixel(image, side, qi + a, qj + b, padding);
                        distance += diff * diff;
                    }
                }
                logits.push(-distance / two_var);
                centres.push(image[q]);
            }
        }
        let top = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let weights: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
        let total: f64 = weights.iter().sum();
        let value = weights
            .iter()
            .zip(&centres)
            .map(|(w, x)| w * x)
            .sum::<f64>()
            / total;
        let theta =
            gamma_f64(patch * patch + 4) * logits.iter().fold(0.0f64, |m, l| m.max(l.abs()));
        values.push(value);
        bounds.push(softmax_average_bound(theta, logits.len(), max_abs));
    }
    Ok((values, bounds))
}

/// An explicit bank of training patches: each image rolled so that location q sits at the
/// centre of a P×P frame, the frame read off (route B of the data side).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchBank {
    side: usize,
    patch: usize,
    padding: Padding,
    /// `(patch, its centre pixel, its location)` for every image and location.
    entries: Vec<(Vec<f64>, f64, usize)>,
}

impl PatchBank {
    /// The bank of every location of every image. Errors: as [`els_from_images`].
    pub fn new(images: &[Vec<f64>], side: usize, patch: usize, padding: Padding) -> Result<Self> {
        ensure_patch_setup(images, side, patch)?;
        let mut entries = Vec::with_capacity(images.len() * side * side);
        for image in images {
            for q in 0..side * side {
                let frame = Self::frame(image, side, patch, padding, q);
                let centre = frame[(patch * patch) / 2];
                entries.push((frame, centre, q));
            }
        }
        Ok(Self {
            side,
            patch,
            padding,
            entries,
        })
    }

    /// The P×P patch of `image` centred at q: the image rolled (circular) or shifted with zero
    /// fill so that q lands on pixel (ρ, ρ), then its top-left P×P corner.
    fn frame(image: &[f64], side: usize, patch: usize, padding: Padding, q: usize) -> Vec<f64> {
        let rho = patch / 2;
        let (qi, qj) = (q / side, q % side);
        let shifted: Vec<f64> = (0..side * side)
            .map(|t| {
                let (ti, tj) = ((t / side) as isize, (t % side) as isize);
                let (si, sj) = (
                    ti + qi as isize - rho as isize,
                    tj + qj as isize - rho as isize,
                );
                padded_pixel(image, side, si, sj, padding)
            })
            .collect();
        (0..patch * patch)
            .map(|m| shifted[(m / patch) * side + m % patch])
            .collect()
    }

    /// The patches and their centres in the [`PatchBank::canonical`] order: two banks with the
    /// same multiset of patches give equal lists, bit for bit.
    pub fn sorted_patches(&self) -> Vec<(Vec<f64>, f64)> {
        self.clone()
            .canonical()
            .entries
            .into_iter()
            .map(|(f, c, _)| (f, c))
            .collect()
    }

    /// The same bank with its entries in a canonical order (sorted by patch values, then
    /// centre): the ELS denoiser of two data sets with the same patch multiset, each from its
    /// canonical bank, is then the same computation, bit for bit.
    pub fn canonical(mut self) -> Self {
        self.entries.sort_by(|a, b| {
            a.0.iter()
                .zip(&b.0)
                .map(|(u, v)| u.total_cmp(v))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.total_cmp(&b.1))
        });
        self
    }

    /// `f(y)`: the ELS (or LS) denoiser from the bank, `linalg::softmax` over the bank's
    /// logits. Errors: y of the wrong length or not finite, σ ≤ 0.
    pub fn denoise(&self, locality: Locality, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        crate::error::ensure_len("noisy image y", y, self.side * self.side)?;
        crate::error::ensure_finite("noisy image y", y)?;
        ensure_sigma(sigma)?;
        let sigma2 = sigma * sigma;
        (0..self.side * self.side)
            .map(|p| {
                let query = Self::frame(y, self.side, self.patch, self.padding, p);
                let chosen: Vec<&(Vec<f64>, f64, usize)> = self
                    .entries
                    .iter()
                    .filter(|(_, _, q)| locality == Locality::Equivariant || *q == p)
                    .collect();
                let logits: Vec<f64> = chosen
                    .iter()
                    .map(|(frame, _, _)| {
                        -0.5 * frame
                            .iter()
                            .zip(&query)
                            .map(|(u, v)| (u - v).powi(2))
                            .sum::<f64>()
                            / sigma2
                    })
                    .collect();
                Ok(linalg::softmax(&logits)
                    .iter()
                    .zip(&chosen)
                    .map(|(w, (_, centre, _))| w * centre)
                    .sum())
            })
            .collect()
    }
}

/// The ELS denoiser of a patch bank as a [`Denoiser`] (for the samplers of `diffusion`).
#[derive(Debug, Clone)]
pub struct ElsDenoiser(pub PatchBank);

impl Denoiser for ElsDenoiser {
    fn dim(&self) -> usize {
        self.0.side * self.0.side
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        self.0.denoise(Locality::Equivariant, y, sigma)
    }
}

/// The global empirical denoiser of a set of images as a [`Denoiser`].
#[derive(Debug, Clone)]
pub struct EmpiricalDenoiser(pub Images);

impl Denoiser for EmpiricalDenoiser {
    fn dim(&self) -> usize {
        self.0.first().map_or(0, Vec::len)
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        empirical_denoiser(&self.0, y, sigma)
    }
}

/// The global empirical (memorizing) denoiser `Σ_i softmax_i(−‖y − x_i‖²/2σ²) x_i`.
/// Errors: as [`els_from_images`].
pub fn empirical_denoiser(images: &[Vec<f64>], y: &[f64], sigma: f64) -> Result<Vec<f64>> {
    ensure_sigma(sigma)?;
    let logits: Vec<f64> = images
        .iter()
        .map(|x| {
            crate::error::ensure_len("training image", x, y.len())?;
            Ok(-0.5 * x.iter().zip(y).map(|(u, v)| (u - v).powi(2)).sum::<f64>() / (sigma * sigma))
        })
        .collect::<Result<Vec<_>>>()?;
    let weights = linalg::softmax(&logits);
    Ok((0..y.len())
        .map(|j| weights.iter().zip(images).map(|(w, x)| w * x[j]).sum())
        .collect())
}

/// `image` rolled by `(down, right)` pixels, cyclically.
pub fn roll(image: &[f64], side: usize, down: usize, right: usize) -> Vec<f64> {
    (0..side * side)
        .map(|t| {
            let (i, j) = (t / side, t % side);
            image[((i + side - down % side) % side) * side + (j + side - right % side) % side]
        })
        .collect()
}

/// Side of the data-side images (8×8).
pub const SIDE: usize = 8;

/// Patch side of the data side (3×3).
pub const PATCH: usize = 3;

/// Training images of the data side (C² images, grey channel).
pub const IMAGES: usize = 6;

/// Flat one-channel images, one per entry.
pub type Images = Vec<Vec<f64>>;

/// The data side's training set and query points at noise level σ: `IMAGES` C² images of seed
/// `seed`, and noisy copies `x_i + σg` of the first `queries` images.
fn data_side(seed: u64, sigma: f64, queries: usize) -> Result<(Images, Images)> {
    let images = grey_images(Family::CAlpha(2.0), SIDE, IMAGES, seed)?;
    let mut rng = Rng::new(seed, 0x10cc);
    let ys = images
        .iter()
        .take(queries)
        .map(|x| x.iter().map(|v| v + sigma * rng.normal()).collect())
        .collect();
    Ok((images, ys))
}

/// The noise levels of the data-side rows.
const SIGMAS: [f64; 3] = [0.05, 0.2, 0.8];

/// Row 2's cases: ELS from whole images (route A) against ELS from the patch bank (route B),
/// both paddings, every σ, two queries (one at quick); the planted variant takes route B's
/// LS denoiser (own location only) for the ELS.
pub fn routes_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let queries = if depth == Depth::Quick { 1 } else { 2 };
    let mut cases = Vec::new();
    for seed in depth.seeds(0x10d0) {
        for padding in [Padding::Zero, Padding::Circular] {
            for &sigma in &SIGMAS {
                let (images, ys) = data_side(seed, sigma, queries)?;
                let bank = PatchBank::new(&images, SIDE, PATCH, padding)?;
                for y in &ys {
                    let (a, bound) = els_from_images(
                        &images,
                        SIDE,
                        PATCH,
                        padding,
                        Locality::Equivariant,
                        y,
                        sigma,
                    )?;
                    let b = bank.denoise(Locality::Equivariant, y, sigma)?;
                    let planted = bank.denoise(Locality::AtOwnLocation, y, sigma)?;
                    cases.push(worst_pixel(&a, &b, &planted, &bound));
                }
            }
        }
    }
    Ok(cases)
}

/// The case of two per-pixel routes `a`, `b` with one route's bound per pixel (the tolerance
/// is twice it, both routes rounding): residual `max |a − b|` against `max 2·bound`, and the
/// planted route in place of `b`.
fn worst_pixel(a: &[f64], b: &[f64], planted: &[f64], bound: &[f64]) -> Controlled {
    let tolerance = 2.0 * bound.iter().fold(0.0f64, |m, &v| m.max(v));
    let gap = |other: &[f64]| {
        a.iter()
            .zip(other)
            .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()))
    };
    Controlled {
        check: Check {
            residual: gap(b),
            tolerance,
        },
        planted: Check {
            residual: gap(planted),
            tolerance,
        },
    }
}

/// Row 3's cases: under circular padding a data set and its cyclic shift by (3, 5) have equal
/// ELS denoisers (route A on both), every σ, three queries (one at quick); the planted variant
/// is the same equality for the global empirical denoiser.
pub fn shift_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let queries = if depth == Depth::Quick { 1 } else { 3 };
    let mut cases = Vec::new();
    for seed in depth.seeds(0x10e0) {
        for &sigma in &SIGMAS {
            let (images, ys) = data_side(seed, sigma, queries)?;
            let shifted: Vec<Vec<f64>> = images.iter().map(|x| roll(x, SIDE, 3, 5)).collect();
            for y in &ys {
                let els = |set: &[Vec<f64>]| {
                    els_from_images(
                        set,
                        SIDE,
                        PATCH,
                        Padding::Circular,
                        Locality::Equivariant,
                        y,
                        sigma,
                    )
                };
                let (a, bound) = els(&images)?;
                let (b, _) = els(&shifted)?;
                let original = empirical_denoiser(&images, y, sigma)?;
                let moved = empirical_denoiser(&shifted, y, sigma)?;
                let mut case = worst_pixel(&a, &b, &moved, &bound);
                case.planted.residual = original
                    .iter()
                    .zip(&moved)
                    .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
                cases.push(case);
            }
        }
    }
    Ok(cases)
}

/// Row 1: the Jacobian of a conv net vanishes outside its receptive field.
pub const RECEPTIVE_FIELD: Claim = Claim {
    theorem: THEOREM,
    statement: "random conv nets ({3,3} and {3,5,3} kernels on 11×13; conv 3, avg-pool 2, \
                conv 3, upsample 2, conv 3 on 12×14; tanh; zero and circular padding): \
                ∂f_p/∂y_q = 0 for q outside p's dependency window computed from the layers \
                (S×S, S = 1 + Σ(k−1), without resampling) (probes of every pixel on the GPU)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "locality::architecture_case: exact zero (the forward pass of f_p never \
                      reads y_q); allowance f32's u times the largest response",
    planted_variant: "the field counted as 1 + Σ(k−1)/2 (half the window, resampling ignored)",
    false_failure: FalseFailure::None,
};

/// Row 2: the two routes to the ELS denoiser agree.
pub const ELS_ROUTES: Claim = Claim {
    theorem: THEOREM,
    statement: "ELS denoiser (3×3 patches, 6 C² images of 8×8, zero and circular padding): \
                from the whole images (index arithmetic) = from an explicit bank of rolled \
                patches",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "locality::softmax_average_bound: logits γ_{P²+4}|ℓ|, weights e^{±2θ}, \
                      exp/sum/division γ_{M+3}, average γ_M; two routes",
    planted_variant: "the bank's LS denoiser (own location only) for the ELS",
    false_failure: FalseFailure::None,
};

/// Row 3: a cyclic shift of the data set leaves the ELS denoiser unchanged.
pub const SHIFT_INVARIANT: Claim = Claim {
    theorem: THEOREM,
    statement: "circular padding: the ELS denoiser of a data set = that of every image rolled \
                by (3, 5) (same patch multiset), at noisy training images, σ ∈ {0.05, 0.2, 0.8}",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "locality::softmax_average_bound, both data sets",
    planted_variant: "the same equality for the global empirical denoiser",
    false_failure: FalseFailure::None,
};

/// The verify rows at `depth` (row 1 on the given adapter).
pub(crate) fn default_verdicts(gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    let backend = backend_label(&gpu);
    vec![
        Verdict::collect(&RECEPTIVE_FIELD, &backend, depth, || {
            architecture_cases(gpu?, depth)
        }),
        Verdict::collect(&ELS_ROUTES, CPU_BACKEND, depth, || routes_cases(depth)),
        Verdict::collect(&SHIFT_INVARIANT, CPU_BACKEND, depth, || shift_cases(depth)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `1 + Σ(k − 1)` by hand; a 1×1 layer adds nothing.
    #[test]
    fn receptive_field_by_hand() {
        assert_eq!(receptive_field(&[3, 3]), 5);
        assert_eq!(receptive_field(&[3, 5, 3]), 9);
        assert_eq!(receptive_field(&[1, 3, 1]), 3);
        assert_eq!(receptive_field(&[]), 1);
    }

    /// The dependency interval by hand: a convolution stack's window (clipped under zero
    /// padding), and the pooled stack conv 3 – pool 2 – conv 3 – upsample 2 – conv 3 on a side of
    /// 12, propagated stage by stage on paper; wrapped membership; bad stages refused.
    #[test]
    fn dependency_rows_by_hand() {
        use Stage::{Conv, Pool, Upsample};
        let (zero, circular) = (Padding::Zero, Padding::Circular);
        assert_eq!(
            dependency_rows(&[Conv(3), Conv(3)], 10, 0, zero).unwrap(),
            (0, 2)
        );
        assert_eq!(
            dependency_rows(&[Conv(3), Conv(3)], 10, 0, circular).unwrap(),
            (-2, 2)
        );
        let pooled = [Conv(3), Pool(2), Conv(3), Upsample(2), Conv(3)];
        // index 0: [−1,1]→[0,1] | up: [0,0] | [−1,1]→[0,1] | pool: [0,3] | [−1,4]→[0,4]
        assert_eq!(dependency_rows(&pooled, 12, 0, zero).unwrap(), (0, 4));
        // index 5: [4,6] | [2,3] | [1,4] | [2,9] | [1,10]
        assert_eq!(dependency_rows(&pooled, 12, 5, zero).unwrap(), (1, 10));
        // index 0, wrapped: [−1,1] | [−1,0] | [−2,1] | [−4,3] | [−5,4]
        let wrapped = dependency_rows(&pooled, 12, 0, circular).unwrap();
        assert_eq!(wrapped, (-5, 4));
        let members: Vec<usize> = (0..12)
            .filter(|&q| in_dependency(q, wrapped, 12, circular))
            .collect();
        assert_eq!(members, [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]);
        assert!(dependency_rows(&[Conv(2)], 10, 0, zero).is_err());
        assert!(dependency_rows(&[Pool(3)], 10, 0, zero).is_err());
        assert!(dependency_rows(&[Pool(0)], 10, 0, zero).is_err());
        assert!(dependency_rows(&[Pool(2)], 10, 5, zero).is_err());
    }

    /// Distances wrap only under circular padding.
    #[test]
    fn side_distance_wraps_when_circular() {
        assert_eq!(side_distance(0, 9, 10, Padding::Zero), 9);
        assert_eq!(side_distance(0, 9, 10, Padding::Circular), 1);
        assert_eq!(side_distance(4, 6, 10, Padding::Circular), 2);
    }

    /// A roll by (1, 2) of a 3×3 image moves pixel (0, 0) to (1, 2); rolling by the side is
    /// the identity.
    #[test]
    fn roll_by_hand() {
        let x: Vec<f64> = (0..9).map(f64::from).collect();
        let r = roll(&x, 3, 1, 2);
        assert_eq!(r[5], 0.0);
        assert_eq!(roll(&x, 3, 3, 3), x);
    }
}
