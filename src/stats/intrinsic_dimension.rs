//! Local-PCA intrinsic dimension of a point cloud: around each of a set of anchor points take
//! its k nearest neighbours, the eigenvalues `λ₁ ≥ … ≥ λ_d` of their covariance, and the local
//! dimension `d̂ = min{j : (λ₁ + … + λ_j)/(λ₁ + … + λ_d) ≥ τ}` (τ = explained-variance
//! threshold, 0.95 by convention). On samples of a smooth curve, `λ₂/λ₁ = O((k/n)²·curvature²)`
//! so `d̂ = 1`; on a full-dimensional density `λ₂/λ₁ = O(1)`.

use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use serde::Serialize;

/// The estimate over all anchors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalPca {
    /// Mean of the local dimensions `d̂`.
    pub mean_dimension: f64,
    /// Fraction of anchors with `d̂ = 1`.
    pub fraction_one: f64,
    /// Median over anchors of `λ₂/λ₁` (0 in 1-D).
    pub median_ratio: f64,
    /// Neighbours per anchor.
    pub k: usize,
    /// The explained-variance threshold τ.
    pub threshold: f64,
}

/// Local PCA at every `stride`-th point of `points` (n×d) with `k` nearest neighbours (the anchor
/// included) and explained-variance threshold `threshold ∈ (0, 1]`.
pub fn local_pca(points: &Mat, k: usize, stride: usize, threshold: f64) -> Result<LocalPca> {
    let (n, d) = (points.nrows(), points.ncols());
    if k < 2 || k > n || stride == 0 || !(threshold > 0.0 && threshold <= 1.0) || d == 0 {
        return Err(Error::InvalidArgument {
            what: "local PCA".into(),
            reason: format!(
                "need 2 ≤ k ≤ n, stride ≥ 1, 0 < τ ≤ 1, d ≥ 1; got k = {k}, n = {n}, \
                 stride = {stride}, τ = {threshold}, d = {d}"
            ),
        });
    }
    linalg::ensure_finite_mat("points", points)?;
    let mut dims = vec![];
    let mut ratios = vec![];
    // the points one per contiguous row, so the distances read memory in order
    let row_major: Vec<f64> = (0..n)
        .flat_map(|i| (0..d).map(move |j| points[(i, j)]))
        .collect();
    let row = |i: usize| &row_major[i * d..(i + 1) * d];
    for a in (0..n).step_by(stride) {
        let mut dist: Vec<(f64, usize)> = (0..n)
            .map(|i| {
                let s: f64 = row(i)
                    .iter()
                    .zip(row(a))
                    .map(|(x, y)| (x - y).powi(2))
                    .sum();
                (s, i)
            })
            .collect();
        dist.select_nth_unstable_by(k - 1, |x, y| x.0.total_cmp(&y.0));
        let idx: Vec<usize> = dist[..k].iter().map(|v| v.1).collect();
        let mean: Vec<f64> = (0..d)
            .map(|j| idx.iter().map(|&i| points[(i, j)]).sum::<f64>() / k as f64)
            .collect();
        // the neighbourhood centred, one contiguous column per coordinate: the covariance's
        // sums below are those of (x_ip − x̄_p)(x_iq − x̄_q) over idx in order, formed for
        // q ≤ p and mirrored (the products commute exactly)
        let centred: Vec<Vec<f64>> = (0..d)
            .map(|p| idx.iter().map(|&i| points[(i, p)] - mean[p]).collect())
            .collect();
        let mut cov = Mat::zeros(d, d);
        for q in 0..d {
            for p in q..d {
                let v = centred[p]
                    .iter()
                    .zip(&centred[q])
                    .map(|(x, y)| x * y)
                    .sum::<f64>()
                    / k as f64;
                cov[(p, q)] = v;
                cov[(q, p)] = v;
            }
        }
        let (mut eig, _) = linalg::sym_eigen(&cov)?;
        eig.sort_by(|x, y| y.total_cmp(x));
        let eig: Vec<f64> = eig.iter().map(|v| v.max(0.0)).collect();
        let total: f64 = eig.iter().sum();
        let mut acc = 0.0;
        let mut dim = d;
        for (j, v) in eig.iter().enumerate() {
            acc += v;
            if total == 0.0 || acc >= threshold * total {
                dim = j + 1;
                break;
            }
        }
        dims.push(dim as f64);
        ratios.push(if d > 1 && eig[0] > 0.0 {
            eig[1] / eig[0]
        } else {
            0.0
        });
    }
    ratios.sort_by(f64::total_cmp);
    let count = dims.len() as f64;
    Ok(LocalPca {
        mean_dimension: dims.iter().sum::<f64>() / count,
        fraction_one: dims.iter().filter(|&&v| v == 1.0).count() as f64 / count,
        median_ratio: ratios[ratios.len() / 2],
        k,
        threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circle_is_one_dimensional_and_a_square_grid_two() {
        let n = 400;
        let circle = Mat::from_fn(n, 2, |i, j| {
            let t = i as f64 / n as f64 * std::f64::consts::TAU;
            if j == 0 {
                t.cos()
            } else {
                t.sin()
            }
        });
        let c = local_pca(&circle, 10, 7, 0.95).unwrap();
        assert_eq!(c.mean_dimension, 1.0);
        let grid = Mat::from_fn(400, 2, |i, j| {
            if j == 0 {
                (i % 20) as f64
            } else {
                (i / 20) as f64
            }
        });
        let g = local_pca(&grid, 10, 7, 0.95).unwrap();
        assert!(g.mean_dimension > 1.9, "{g:?}");
        assert!(local_pca(&grid, 1, 1, 0.95).is_err());
    }
}
