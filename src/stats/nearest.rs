//! Nearest training points of generated samples, at image scale: the memorization ratio
//! (book eq. 3.3.4) under the distance criterion `d₁/d₂ < 1/3` (eq. 3.3.5) and under the
//! similarity criterion `max_i cos(f(x̂), f(x_i)) > 3/5` (eq. 3.3.6, on pixels and on centred
//! pixels: the book's SSCD embedding is not available), and the cosine similarity to the closest
//! training image (Kadkhodaie et al. Fig. 2).
//!
//! Route: the squared distances `‖s‖² + ‖x‖² − 2 s·x` of every (sample, training point) pair
//! come from one f64 GEMM (faer), which ranks the candidates; the two nearest are then
//! recomputed directly as `‖s − x‖`, so a sample that copies a training image gets the exact
//! distance 0 rather than the cancellation residue of the expanded form (which is
//! `≈ 4ε‖x‖²` in f64 — harmless for ranking, not for a ratio whose numerator is 0).

use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The two training points nearest to one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NearestTwo {
    /// Row of the nearest training point.
    pub first: usize,
    /// `‖s − x₍₁₎‖`.
    pub first_distance: f64,
    /// Row of the second-nearest training point.
    pub second: usize,
    /// `‖s − x₍₂₎‖`.
    pub second_distance: f64,
    /// `s·x₍₁₎ / (‖s‖‖x₍₁₎‖)`, the cosine similarity to the nearest training point (0 when
    /// either vector is 0).
    pub cosine: f64,
}

impl NearestTwo {
    /// `d₁/d₂`; the sample counts as memorized when it is below 1/3 (eq. 3.3.5).
    pub fn ratio(&self) -> f64 {
        self.first_distance / self.second_distance
    }
}

/// The memorization threshold of eq. 3.3.5.
pub const MEMORIZED_BELOW: f64 = 1.0 / 3.0;

/// `a·b/(‖a‖‖b‖)`, 0 when either is 0.
pub(crate) fn cosine_similarity(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (linalg::dot(a, a).sqrt(), linalg::dot(b, b).sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        linalg::dot(a, b) / (na * nb)
    }
}

/// For every row of `samples`, its two nearest rows of `training` (see the module doc).
/// Errors: fewer than two training points, mismatched dimensions, or a non-finite entry.
pub fn nearest_two_batch(training: &Mat, samples: &Mat) -> Result<Vec<NearestTwo>> {
    if training.nrows() < 2 {
        return Err(Error::InvalidArgument {
            what: "training set".into(),
            reason: format!(
                "the nearest and second-nearest points need N ≥ 2, got N = {}",
                training.nrows()
            ),
        });
    }
    ensure_comparable(training, samples)?;
    let inner = samples * training.transpose();
    let train_sq: Vec<f64> = (0..training.nrows())
        .map(|i| {
            (0..training.ncols())
                .map(|j| training[(i, j)].powi(2))
                .sum()
        })
        .collect();
    Ok((0..samples.nrows())
        .into_par_iter()
        .map(|s| {
            let (mut best, mut second) = ((f64::INFINITY, 0), (f64::INFINITY, 0));
            for (i, &xi) in train_sq.iter().enumerate() {
                // ‖s‖² is common to the row, so ‖x‖² − 2 s·x ranks the candidates.
                let key = xi - 2.0 * inner[(s, i)];
                if key < best.0 {
                    second = best;
                    best = (key, i);
                } else if key < second.0 {
                    second = (key, i);
                }
            }
            let sample = linalg::row(samples, s);
            let distance = |i: usize| {
                (0..sample.len())
                    .map(|j| (sample[j] - training[(i, j)]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            };
            let (d1, d2) = (distance(best.1), distance(second.1));
            // The exact recomputation can swap a near tie; keep the pair ordered.
            let (first, second) = if d1 <= d2 {
                ((best.1, d1), (second.1, d2))
            } else {
                ((second.1, d2), (best.1, d1))
            };
            NearestTwo {
                first: first.0,
                first_distance: first.1,
                second: second.0,
                second_distance: second.1,
                cosine: cosine_similarity(&sample, &linalg::row(training, first.0)),
            }
        })
        .collect())
}

/// The similarity threshold of eq. 3.3.6: a sample counts as memorized when its largest cosine
/// similarity to a training image exceeds 3/5. The book applies it to SSCD embeddings
/// `f_SSCD(x)`; the crate has no such network and applies it to pixels (`f = id`) and to pixels
/// centred on the training mean (`f(x) = x − x̄`), reported side by side.
pub const SIMILAR_ABOVE: f64 = 3.0 / 5.0;

/// Returns an error unless `training` has a row, `samples` has its columns, and both are finite.
fn ensure_comparable(training: &Mat, samples: &Mat) -> Result<()> {
    if training.nrows() == 0 {
        return Err(Error::InvalidArgument {
            what: "training set".into(),
            reason: "need at least one training image, got 0".into(),
        });
    }
    if samples.ncols() != training.ncols() {
        return Err(Error::DimensionMismatch {
            what: "samples (columns) against the training set".into(),
            expected: training.ncols(),
            got: samples.ncols(),
        });
    }
    linalg::ensure_finite_mat("samples", samples)?;
    linalg::ensure_finite_mat("training images", training)
}

/// For every row `s` of `samples`, `max_i s·x_i/(‖s‖‖x_i‖)` over the rows `x_i` of `training`
/// (eq. 3.3.6's similarity with `f = id`; a zero row scores 0 against everything). One product
/// of the row-normalised matrices.
/// Errors: no training rows, mismatched columns, or a non-finite entry.
pub fn most_similar_cosines(training: &Mat, samples: &Mat) -> Result<Vec<f64>> {
    ensure_comparable(training, samples)?;
    let unit = |m: &Mat| {
        let mut u = m.clone();
        for i in 0..m.nrows() {
            let norm = linalg::dot(&linalg::row(m, i), &linalg::row(m, i)).sqrt();
            for j in 0..m.ncols() {
                u[(i, j)] = if norm > 0.0 { m[(i, j)] / norm } else { 0.0 };
            }
        }
        u
    };
    let cos = unit(samples) * unit(training).transpose();
    Ok((0..cos.nrows())
        .map(|i| (0..cos.ncols()).map(|j| cos[(i, j)]).fold(-1.0, f64::max))
        .collect())
}

/// [`most_similar_cosines`] after subtracting the training mean `x̄ = (1/N)Σx_i` from both
/// sides: eq. 3.3.6 with `f(x) = x − x̄`, which does not call every pair of non-negative images
/// similar.
pub fn most_similar_centred_cosines(training: &Mat, samples: &Mat) -> Result<Vec<f64>> {
    ensure_comparable(training, samples)?;
    let n = training.nrows() as f64;
    let mean: Vec<f64> = (0..training.ncols())
        .map(|j| (0..training.nrows()).map(|i| training[(i, j)]).sum::<f64>() / n)
        .collect();
    let centre = |m: &Mat| Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] - mean[j]);
    most_similar_cosines(&centre(training), &centre(samples))
}

/// Summary of [`nearest_two_batch`] and [`most_similar_cosines`] over a set of samples: the
/// memorization ratio (eq. 3.3.4) under the distance criterion of eq. 3.3.5 and under the
/// similarity criterion of eq. 3.3.6, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorizationSummary {
    /// Number of samples.
    pub samples: usize,
    /// The memorization ratio (eq. 3.3.4) under eq. 3.3.5: the fraction with `d₁/d₂ < 1/3`.
    pub mem_ratio: f64,
    /// The memorization ratio under eq. 3.3.6 on pixels: the fraction whose largest cosine
    /// similarity to a training image is `> 3/5`.
    pub similarity_mem_ratio: f64,
    /// The same on pixels centred on the training mean ([`most_similar_centred_cosines`]).
    pub centred_similarity_mem_ratio: f64,
    /// Mean cosine similarity to the nearest training image (Euclidean nearest).
    pub mean_cosine: f64,
    /// Median of the same.
    pub median_cosine: f64,
    /// Median of the largest pixel cosine similarity to a training image (eq. 3.3.6's statistic).
    pub median_max_cosine: f64,
    /// Median of the largest centred cosine similarity.
    pub median_max_centred_cosine: f64,
    /// Median of `d₁/d₂`.
    pub median_ratio: f64,
}

/// The memorization ratios under eq. 3.3.5 and eq. 3.3.6 and the nearest-image cosine
/// statistics of `samples`, with the nearest pairs behind them.
/// Errors: no samples, fewer than two training images, mismatched columns, a non-finite entry.
pub fn summarize(training: &Mat, samples: &Mat) -> Result<(MemorizationSummary, Vec<NearestTwo>)> {
    let nearest = nearest_two_batch(training, samples)?;
    let n = nearest.len();
    if n == 0 {
        return Err(Error::InvalidArgument {
            what: "samples".into(),
            reason: "need at least one sample, got 0".into(),
        });
    }
    let fraction = |hits: usize| hits as f64 / n as f64;
    let memorized = nearest
        .iter()
        .filter(|p| p.ratio() < MEMORIZED_BELOW)
        .count();
    let similar = most_similar_cosines(training, samples)?;
    let centred = most_similar_centred_cosines(training, samples)?;
    let above = |values: &[f64]| values.iter().filter(|&&c| c > SIMILAR_ABOVE).count();
    let cosines: Vec<f64> = nearest.iter().map(|p| p.cosine).collect();
    let ratios: Vec<f64> = nearest.iter().map(NearestTwo::ratio).collect();
    Ok((
        MemorizationSummary {
            samples: n,
            mem_ratio: fraction(memorized),
            similarity_mem_ratio: fraction(above(&similar)),
            centred_similarity_mem_ratio: fraction(above(&centred)),
            mean_cosine: cosines.iter().sum::<f64>() / n as f64,
            median_cosine: median(&cosines),
            median_max_cosine: median(&similar),
            median_max_centred_cosine: median(&centred),
            median_ratio: median(&ratios),
        },
        nearest,
    ))
}

/// The median (mean of the two middle values for an even count); NaN for an empty slice.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Distances from `x` to its nearest and second-nearest training points (direct scan; the
/// independent counterpart of [`nearest_two_batch`], which shares no code with it).
pub fn nearest_two_scan(training: &Mat, x: &[f64]) -> (f64, f64) {
    let (mut d1, mut d2) = (f64::INFINITY, f64::INFINITY);
    for i in 0..training.nrows() {
        let d = (0..x.len())
            .map(|j| (x[j] - training[(i, j)]).powi(2))
            .sum::<f64>()
            .sqrt();
        if d < d1 {
            d2 = d1;
            d1 = d;
        } else if d < d2 {
            d2 = d;
        }
    }
    (d1, d2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The median by hand: odd counts take the middle value, even counts average the two middle
    /// ones (unsorted input), an empty slice is NaN.
    #[test]
    fn median_by_hand() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, 1.0]), 3.0);
        assert_eq!(median(&[10.0, 0.0, 7.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn gemm_ranking_matches_the_direct_scan() {
        let mut rng = Rng::new(7, 0);
        let training = Mat::from_fn(40, 30, |_, _| rng.normal());
        let mut samples = Mat::from_fn(12, 30, |_, _| rng.normal());
        // Sample 0 copies training point 5 exactly: distance 0, ratio 0, cosine 1.
        for j in 0..30 {
            samples[(0, j)] = training[(5, j)];
        }
        let nearest = nearest_two_batch(&training, &samples).unwrap();
        assert_eq!(nearest[0].first, 5);
        assert_eq!(nearest[0].first_distance, 0.0);
        assert!((nearest[0].cosine - 1.0).abs() < 1e-15);
        for (s, p) in nearest.iter().enumerate() {
            let row = linalg::row(&samples, s);
            let (d1, d2) = super::nearest_two_scan(&training, &row);
            assert!((p.first_distance - d1).abs() <= 1e-12 * (1.0 + d1));
            assert!((p.second_distance - d2).abs() <= 1e-12 * (1.0 + d2));
        }
        let (summary, _) = summarize(&training, &samples).unwrap();
        assert!(summary.mem_ratio >= 1.0 / 12.0);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let one = Mat::zeros(1, 3);
        assert!(nearest_two_batch(&one, &Mat::zeros(2, 3)).is_err());
        assert!(nearest_two_batch(&Mat::zeros(4, 3), &Mat::zeros(2, 5)).is_err());
        assert!(most_similar_cosines(&Mat::zeros(0, 3), &Mat::zeros(2, 3)).is_err());
        assert!(most_similar_cosines(&Mat::zeros(4, 3), &Mat::zeros(2, 5)).is_err());
        let mut nan = Mat::zeros(2, 3);
        nan[(1, 2)] = f64::NAN;
        assert!(most_similar_centred_cosines(&Mat::zeros(4, 3), &nan).is_err());
        assert!(summarize(&Mat::zeros(4, 3), &Mat::zeros(0, 3)).is_err());
    }

    /// The two criteria of book eq. 3.3.5 and eq. 3.3.6 on samples built to separate them
    /// (standard normal training points, 40 in 200 dimensions): a copy is memorized under both;
    /// half a training point is memorized under the similarity criterion only (cosine 1, but
    /// `d₁/d₂ = ‖x/2‖/‖x/2 − x′‖ ≈ √(1/4)/√(5/4) ≈ 0.45`); a fresh draw under neither (the
    /// cosine of independent directions has s.d. 1/√200 ≈ 0.07, so its largest of 40 is ≈ 0.2;
    /// its ratio is ≈ 1).
    #[test]
    fn distance_and_similarity_criteria_side_by_side() {
        let mut rng = Rng::new(11, 0);
        let training = Mat::from_fn(40, 200, |_, _| rng.normal());
        let mut samples = Mat::from_fn(3, 200, |_, _| rng.normal());
        for j in 0..200 {
            samples[(0, j)] = training[(5, j)];
            samples[(1, j)] = 0.5 * training[(9, j)];
        }
        let (_, nearest) = summarize(&training, &samples).unwrap();
        let similar = most_similar_cosines(&training, &samples).unwrap();
        let by_distance: Vec<bool> = nearest
            .iter()
            .map(|p| p.ratio() < MEMORIZED_BELOW)
            .collect();
        let by_similarity: Vec<bool> = similar.iter().map(|&c| c > SIMILAR_ABOVE).collect();
        assert_eq!(by_distance, [true, false, false], "{nearest:?}");
        assert_eq!(by_similarity, [true, true, false], "{similar:?}");
        let one = |row: usize| Mat::from_fn(1, 200, |_, j| samples[(row, j)]);
        let (summary, _) = summarize(&training, &one(1)).unwrap();
        assert_eq!(
            (summary.mem_ratio, summary.similarity_mem_ratio),
            (0.0, 1.0)
        );
        assert_eq!(SIMILAR_ABOVE, 0.6);
        assert_eq!(MEMORIZED_BELOW, 1.0 / 3.0);
    }

    /// Why the centred variant is reported: on non-negative pixels (uniform on [0, 1], 50 images
    /// of 64 pixels) two independent images have cosine ≈ E[x]²/E[x²] = 3/4 > 3/5, so eq. 3.3.6
    /// on raw pixels calls every fresh draw memorized; centred on the training mean, their
    /// largest cosine is that of independent directions (≈ 0.3), and a copy still scores 1.
    #[test]
    fn raw_pixel_similarity_calls_every_non_negative_image_memorized() {
        let mut rng = Rng::new(12, 0);
        let training = Mat::from_fn(50, 64, |_, _| rng.uniform());
        let mut samples = Mat::from_fn(20, 64, |_, _| rng.uniform());
        for j in 0..64 {
            samples[(0, j)] = training[(3, j)];
        }
        let (summary, _) = summarize(&training, &samples).unwrap();
        assert_eq!(summary.similarity_mem_ratio, 1.0, "{summary:?}");
        assert_eq!(
            summary.centred_similarity_mem_ratio,
            1.0 / 20.0,
            "{summary:?}"
        );
        assert_eq!(summary.mem_ratio, 1.0 / 20.0, "{summary:?}");
        let centred = most_similar_centred_cosines(&training, &samples).unwrap();
        assert!((centred[0] - 1.0).abs() < 1e-12);
    }
}
