//! Gauss quadrature of a 1-D law from its moments (Golub & Welsch, *Calculation of Gauss
//! quadrature rules*, Math. Comp. 1969, §4): the N-node rule is the discrete law that matches
//! the law's moments of orders 0..=2N−1.
//!
//! With the Hankel matrix `H_ij = m_{i+j}` (0 ≤ i, j ≤ N) and its Cholesky factor `H = RᵀR`, the
//! three-term recurrence of the orthonormal polynomials has `α_k = R_{k,k+1}/R_{kk} −
//! R_{k−1,k}/R_{k−1,k−1}` and `β_k = R_{kk}/R_{k−1,k−1}`; the nodes are the eigenvalues of the
//! Jacobi matrix `tridiag(β, α, β)` and the weights `m_0·v_{0i}²` from its unit eigenvectors.
//! The law is standardised first (mean 0, variance 1), which keeps `κ(H)` modest for N ≤ 6.

use super::moments::mixture_moments;
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::targets::{GaussianMixture, Target};

/// An N-node Gauss rule of a 1-D law as a discrete law (a mixture of point masses), with the
/// condition number of the standardised Hankel matrix it was computed from.
#[derive(Debug, Clone)]
pub struct GaussRule {
    /// The discrete law `Σ_i w_i δ_{x_i}`.
    pub law: GaussianMixture,
    /// `κ(H)` of the standardised moments, which sets the rule's accuracy (≈ κ·ε).
    pub hankel_condition: f64,
}

/// The `nodes`-point Gauss rule of the 1-D mixture `target`.
pub fn gauss_rule(target: &GaussianMixture, nodes: usize) -> Result<GaussRule> {
    if target.dim() != 1 {
        return Err(Error::DimensionMismatch {
            what: "Gauss quadrature target dimension".into(),
            expected: 1,
            got: target.dim(),
        });
    }
    if nodes == 0 {
        return Err(Error::InvalidArgument {
            what: "nodes".into(),
            reason: "a Gauss rule needs at least one node, got 0".into(),
        });
    }
    let mean = target.mean()[0];
    let sd = target.covariance()[(0, 0)].sqrt();
    if sd <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "Gauss quadrature target".into(),
            reason: "a point mass has a one-node rule only (variance 0)".into(),
        });
    }
    let weights: Vec<f64> = target.components().iter().map(|c| c.weight).collect();
    let means: Vec<Vec<f64>> = target
        .components()
        .iter()
        .map(|c| vec![(c.mean[0] - mean) / sd])
        .collect();
    let covs: Vec<Mat> = target
        .components()
        .iter()
        .map(|c| {
            let v = c.factor.covariance()[(0, 0)] / (sd * sd);
            Mat::from_fn(1, 1, |_, _| v)
        })
        .collect();
    let standard = GaussianMixture::new(&weights, &means, &covs)?;
    let indices: Vec<Vec<usize>> = (0..=2 * nodes).map(|k| vec![k]).collect();
    let m = mixture_moments(&standard, &indices)?;
    let h = Mat::from_fn(nodes + 1, nodes + 1, |i, j| m[i + j]);
    let (eig, _) = linalg::sym_eigen(&h)?;
    if eig[0] <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "Gauss quadrature".into(),
            reason: format!(
                "the law has fewer than {} support points (Hankel matrix singular, smallest \
                 eigenvalue {})",
                nodes + 1,
                eig[0]
            ),
        });
    }
    let hankel_condition = eig[nodes] / eig[0];
    let l = h
        .llt(faer::Side::Lower)
        .map_err(|e| Error::Numerical(format!("Cholesky of the Hankel moment matrix: {e:?}")))?;
    let lower = l.L();
    let r = |i: usize, j: usize| lower[(j, i)];
    let mut jacobi = Mat::zeros(nodes, nodes);
    for k in 0..nodes {
        let mut a = r(k, k + 1) / r(k, k);
        if k > 0 {
            a -= r(k - 1, k) / r(k - 1, k - 1);
            let b = r(k, k) / r(k - 1, k - 1);
            jacobi[(k, k - 1)] = b;
            jacobi[(k - 1, k)] = b;
        }
        jacobi[(k, k)] = a;
    }
    let (t, v) = linalg::sym_eigen(&jacobi)?;
    let w: Vec<f64> = (0..nodes).map(|i| m[0] * v[(0, i)] * v[(0, i)]).collect();
    let total: f64 = w.iter().sum();
    let atoms: Vec<Vec<f64>> = t.iter().map(|ti| vec![mean + sd * ti]).collect();
    let zeros: Vec<Mat> = (0..nodes).map(|_| Mat::zeros(1, 1)).collect();
    let normalised: Vec<f64> = w.iter().map(|x| x / total).collect();
    Ok(GaussRule {
        law: GaussianMixture::new(&normalised, &atoms, &zeros)?,
        hankel_condition,
    })
}
