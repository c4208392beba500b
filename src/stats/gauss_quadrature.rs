//! Gauss quadrature of a 1-D law from its moments (Golub & Welsch, *Calculation of Gauss
//! quadrature rules*, Math. Comp. 1969, §4): the N-node rule is the discrete law that matches
//! the law's moments of orders 0..=2N−1.
//!
//! With the Hankel matrix `H_ij = m_{i+j}` (0 ≤ i, j ≤ N) and its Cholesky factor `H = RᵀR`, the
//! three-term recurrence of the orthonormal polynomials has `α_k = R_{k,k+1}/R_{kk} −
//! R_{k−1,k}/R_{k−1,k−1}` and `β_k = R_{kk}/R_{k−1,k−1}`; the nodes are the eigenvalues of the
//! Jacobi matrix `tridiag(β, α, β)` and the weights `m_0·v_{0i}²` from its unit eigenvectors.
//! The law is standardised first (mean 0, variance 1), which keeps `κ(H)` modest for N ≤ 6.
//!
//! [`gauss_legendre`] is the N-node Gauss–Legendre rule on an interval (the Gauss rule of the
//! uniform law, times the length), by Newton's iteration on the Legendre recurrence.

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

/// The `nodes`-point Gauss–Legendre rule on `[a, b]`: pairs `(x_i, w_i)` with
/// `Σ w_i f(x_i) = ∫_a^b f` for every polynomial f of degree ≤ 2·nodes − 1.
///
/// The nodes are the roots of the Legendre polynomial `P_n` mapped from `[−1, 1]`, found by
/// Newton's iteration from `cos(π(i + ¾)/(n + ½))` with `P_n` and `P_n'` from the three-term
/// recurrence `k P_k = (2k − 1)x P_{k−1} − (k − 1)P_{k−2}` and
/// `P_n'(x) = n(x P_n − P_{n−1})/(x² − 1)`; the weights are `2/((1 − x²)P_n'(x)²)` times
/// `(b − a)/2`. Errors: `nodes = 0`, or `a < b` not both finite.
pub fn gauss_legendre(a: f64, b: f64, nodes: usize) -> Result<Vec<(f64, f64)>> {
    if nodes == 0 {
        return Err(Error::InvalidArgument {
            what: "Gauss–Legendre nodes".into(),
            reason: "a Gauss rule needs at least one node, got 0".into(),
        });
    }
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(Error::InvalidArgument {
            what: "Gauss–Legendre interval [a, b]".into(),
            reason: format!("need finite a < b, got [{a}, {b}]"),
        });
    }
    let n = nodes as f64;
    let (centre, half) = (0.5 * (a + b), 0.5 * (b - a));
    let legendre = |x: f64| {
        // (P_n(x), P_n'(x))
        let (mut p0, mut p1) = (1.0, x);
        for k in 2..=nodes {
            let k = k as f64;
            let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
            p0 = p1;
            p1 = p2;
        }
        if nodes == 1 {
            (x, 1.0)
        } else {
            (p1, n * (x * p1 - p0) / (x * x - 1.0))
        }
    };
    let mut out = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n + 0.5)).cos();
        for _ in 0..100 {
            let (p, dp) = legendre(x);
            let step = p / dp;
            x -= step;
            if step.abs() <= 4.0 * f64::EPSILON {
                break;
            }
        }
        let (_, dp) = legendre(x);
        out.push((centre + half * x, half * 2.0 / ((1.0 - x * x) * dp * dp)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The n-node rule integrates `x^k` on `[−1, 2]` exactly for k ≤ 2n − 1 (relative 10⁻¹³),
    /// and not `x^{2n}` (checked for n ≤ 5, where the remainder exceeds 10⁻⁸); the weights are
    /// positive and the nodes inside the interval.
    #[test]
    fn gauss_legendre_is_exact_to_degree_2n_minus_1() {
        for n in [1usize, 2, 5, 12, 24] {
            let rule = gauss_legendre(-1.0, 2.0, n).unwrap();
            assert!(rule
                .iter()
                .all(|&(x, w)| w > 0.0 && (-1.0..=2.0).contains(&x)));
            for k in 0..=2 * n {
                let exact =
                    (2f64.powi(k as i32 + 1) - (-1f64).powi(k as i32 + 1)) / (k as f64 + 1.0);
                let sum: f64 = rule.iter().map(|&(x, w)| w * x.powi(k as i32)).sum();
                let rel = (sum - exact).abs() / exact.abs();
                if k < 2 * n {
                    assert!(rel < 1e-13, "n {n} k {k}: {sum} vs {exact}");
                } else if n <= 5 {
                    // the degree-2n remainder is visible in f64 for few nodes only
                    assert!(rel > 1e-8, "n {n} k {k} integrated exactly");
                }
            }
        }
    }

    /// Zero nodes and empty or non-finite intervals are typed errors naming the value.
    #[test]
    fn gauss_legendre_rejects_bad_input() {
        assert!(gauss_legendre(0.0, 1.0, 0)
            .unwrap_err()
            .to_string()
            .contains("got 0"));
        let e = gauss_legendre(1.0, 1.0, 3).unwrap_err();
        assert!(e.to_string().contains("[1, 1]"), "{e}");
        assert!(gauss_legendre(f64::NAN, 1.0, 3).is_err());
    }
}
