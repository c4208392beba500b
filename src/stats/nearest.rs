//! Nearest training points of generated samples, at image scale: the memorization ratio
//! (book eq. 3.3.4–3.3.5) and the cosine similarity to the closest training image
//! (Kadkhodaie et al. Fig. 2).
//!
//! Route: the squared distances `‖s‖² + ‖x‖² − 2 s·x` of every (sample, training point) pair
//! come from one f64 GEMM (faer), which ranks the candidates; the two nearest are then
//! recomputed directly as `‖s − x‖`, so a sample that copies a training image gets the exact
//! distance 0 rather than the cancellation residue of the expanded form (which is
//! `≈ 4ε‖x‖²` in f64 — harmless for ranking, not for a ratio whose numerator is 0).

use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use rayon::prelude::*;
use serde::Serialize;

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
/// Errors: fewer than two training points, or mismatched dimensions.
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
    if samples.ncols() != training.ncols() {
        return Err(Error::DimensionMismatch {
            what: "samples (columns) against the training set".into(),
            expected: training.ncols(),
            got: samples.ncols(),
        });
    }
    linalg::ensure_finite_mat("samples", samples)?;
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

/// Summary of [`nearest_two_batch`] over a set of samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorizationSummary {
    /// Number of samples.
    pub samples: usize,
    /// The memorization ratio (eq. 3.3.4): the fraction with `d₁/d₂ < 1/3`.
    pub mem_ratio: f64,
    /// Mean cosine similarity to the nearest training image.
    pub mean_cosine: f64,
    /// Median of the same.
    pub median_cosine: f64,
    /// Median of `d₁/d₂`.
    pub median_ratio: f64,
}

/// The memorization ratio and nearest-image cosine statistics of `samples`.
pub fn summarize(training: &Mat, samples: &Mat) -> Result<(MemorizationSummary, Vec<NearestTwo>)> {
    let nearest = nearest_two_batch(training, samples)?;
    let n = nearest.len();
    if n == 0 {
        return Err(Error::InvalidArgument {
            what: "samples".into(),
            reason: "need at least one sample, got 0".into(),
        });
    }
    let memorized = nearest
        .iter()
        .filter(|p| p.ratio() < MEMORIZED_BELOW)
        .count();
    let cosines: Vec<f64> = nearest.iter().map(|p| p.cosine).collect();
    let ratios: Vec<f64> = nearest.iter().map(NearestTwo::ratio).collect();
    Ok((
        MemorizationSummary {
            samples: n,
            mem_ratio: memorized as f64 / n as f64,
            mean_cosine: cosines.iter().sum::<f64>() / n as f64,
            median_cosine: median(&cosines),
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
    }
}
