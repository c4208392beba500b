//! Moments of Gaussian mixtures and of Gauss rules, computed independently of the library’s moment code: monomials, Gauss–Hermite nodes, atoms, mismatches.

use super::*;

/// A placeholder worst case (ratio 0) that any real case replaces.
pub(super) fn no_case() -> Check {
    Check {
        residual: 0.0,
        tolerance: f64::INFINITY,
    }
}

/// `x^α = ∏_i x_i^{α_i}` by repeated multiplication (this module's own, independent of the
/// library's feature map).
pub(super) fn power_product(x: &[f64], alpha: &[usize]) -> f64 {
    let mut out = 1.0;
    for (v, &p) in x.iter().zip(alpha) {
        for _ in 0..p {
            out *= v;
        }
    }
    out
}

/// Every exponent vector in `n` variables of total degree 0..=`degree` (the constant included),
/// in odometer order — this module's own basis, independent of `stats::moments::monomials`.
pub fn exponents(n: usize, degree: usize) -> Vec<MultiIndex> {
    let mut out = lower_indices(&vec![degree; n]);
    out.retain(|e| e.iter().sum::<usize>() <= degree);
    out
}

/// `C(n, k)`.
pub(super) fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Every `β' ≤ β` (componentwise).
pub(super) fn lower_indices(beta: &[usize]) -> Vec<MultiIndex> {
    let mut out: Vec<MultiIndex> = vec![vec![]];
    for &p in beta {
        out = out
            .into_iter()
            .flat_map(|b| {
                (0..=p).map(move |q| {
                    let mut v = b.clone();
                    v.push(q);
                    v
                })
            })
            .collect();
    }
    out
}

/// `E[g^k]` for g ~ N(0, 1): `(k − 1)!!` for even k, 0 for odd k (this module's own).
pub(super) fn normal_moment(k: usize) -> f64 {
    if k % 2 == 1 {
        0.0
    } else {
        (1..k).step_by(2).map(|v| v as f64).product()
    }
}

/// The probabilists' Gauss–Hermite rule with `nodes` nodes: Golub–Welsch on the Jacobi matrix of
/// the Hermite polynomials He_k (`x He_k = He_{k+1} + k He_{k−1}`: zero diagonal, off-diagonal
/// `√k`), nodes its eigenvalues, weights the squared first components of its unit eigenvectors.
/// `Σ_j ω_j p(z_j) = E[p(g)]`, g ~ N(0, 1), for every polynomial p of degree ≤ 2·nodes − 1.
/// Returns (nodes, weights).
pub fn gauss_hermite(nodes: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    if nodes == 0 {
        return Err(Error::InvalidArgument {
            what: "Gauss–Hermite nodes".into(),
            reason: "needs at least one node, got 0".into(),
        });
    }
    let jacobi = Mat::from_fn(nodes, nodes, |i, j| {
        if i.abs_diff(j) == 1 {
            (i.max(j) as f64).sqrt()
        } else {
            0.0
        }
    });
    let (z, v) = linalg::sym_eigen(&jacobi)?;
    let w = (0..nodes).map(|j| v[(0, j)] * v[(0, j)]).collect();
    Ok((z, w))
}

/// The atoms `(w_k, x_k)` of a discrete law (a mixture of point masses); an error if a component
/// has positive variance.
pub(super) fn atoms(law: &GaussianMixture) -> Result<Vec<(f64, Vec<f64>)>> {
    law.components()
        .iter()
        .map(|c| {
            if c.factor.eigenvalues.iter().any(|&l| l != 0.0) {
                Err(Error::InvalidArgument {
                    what: "discrete law".into(),
                    reason: "every component must be a point mass".into(),
                })
            } else {
                Ok((c.weight, c.mean.clone()))
            }
        })
        .collect()
}

/// `(E[x^α], Σ_k w_k E_k|…|)` for a mixture whose components have diagonal covariances (1-D
/// mixtures, products of 1-D mixtures), written out on its own:
/// `E_k[x^α] = ∏_i Σ_{j even} C(α_i, j) μ_{ki}^{α_i−j} v_{ki}^{j/2} (j − 1)!!`. The second value
/// sums the absolute values of every term, so the rounding of the first is at most
/// `γ_{6|α| + 4n + K + 8}` times it. An error for a component with off-diagonal covariance.
pub fn diagonal_mixture_moment(p: &GaussianMixture, alpha: &[usize]) -> Result<(f64, f64)> {
    let n = p.dim();
    let (mut value, mut majorant) = (0.0, 0.0);
    for c in p.components() {
        let cov = c.factor.covariance();
        if (0..n).any(|i| (0..n).any(|j| i != j && cov[(i, j)] != 0.0)) {
            return Err(Error::InvalidArgument {
                what: "independent moments".into(),
                reason: "needs components with diagonal covariances".into(),
            });
        }
        let (mut term, mut abs_term) = (c.weight, c.weight);
        for (i, &a) in alpha.iter().enumerate() {
            let (mu, sd) = (c.mean[i], cov[(i, i)].max(0.0).sqrt());
            let (mut s, mut sa) = (0.0, 0.0);
            for j in (0..=a).step_by(2) {
                let t =
                    binomial(a, j) * mu.powi((a - j) as i32) * sd.powi(j as i32) * normal_moment(j);
                s += t;
                sa += t.abs();
            }
            term *= s;
            abs_term *= sa;
        }
        value += term;
        majorant += abs_term;
    }
    Ok((value, majorant))
}

/// `(Σ_k w_k x_k^α, Σ_k w_k |x_k^α|)` over a discrete law's atoms.
pub(super) fn atom_moment(atoms: &[(f64, Vec<f64>)], alpha: &[usize]) -> (f64, f64) {
    atoms.iter().fold((0.0, 0.0), |(v, m), (w, x)| {
        let t = w * power_product(x, alpha);
        (v + t, m + t.abs())
    })
}

/// `max_α |E_P[x^α] − E_Q[x^α]| / max(|E_P[x^α]|, s^{|α|})` over all α of total degree 1..=k,
/// s the RMS of P: the measured relative mismatch of a diagonal-component mixture P's moments
/// (written out, [`diagonal_mixture_moment`]) and those of a discrete law Q (summed over its
/// atoms) — neither through `stats::moments`.
pub fn moment_mismatch(p: &GaussianMixture, q: &GaussianMixture, order: usize) -> Result<f64> {
    let n = p.dim();
    let q_atoms = atoms(q)?;
    let s2 = (0..n)
        .map(|i| {
            let mut e = vec![0; n];
            e[i] = 2;
            diagonal_mixture_moment(p, &e).map(|m| m.0)
        })
        .sum::<Result<f64>>()?;
    let s = (s2 / n as f64).sqrt();
    let mut worst: f64 = 0.0;
    for alpha in exponents(n, order) {
        let deg = alpha.iter().sum::<usize>();
        if deg == 0 {
            continue;
        }
        let (mp, _) = diagonal_mixture_moment(p, &alpha)?;
        let (mq, _) = atom_moment(&q_atoms, &alpha);
        worst = worst.max((mp - mq).abs() / mp.abs().max(s.powi(deg as i32)));
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric 1-D mixture ½N(2, 1) + ½N(−2, 1): the first moment is 0 and its majorant
    /// (the sum of |terms|) is ½·2 + ½·2 = 2; the second moment is 4 + 1 = 5 with majorant 5.
    #[test]
    fn diagonal_mixture_moment_and_majorant_by_hand() {
        let one = Mat::identity(1, 1);
        let p = GaussianMixture::new(&[0.5, 0.5], &[vec![2.0], vec![-2.0]], &[one.clone(), one])
            .unwrap();
        assert_eq!(diagonal_mixture_moment(&p, &[1]).unwrap(), (0.0, 2.0));
        assert_eq!(diagonal_mixture_moment(&p, &[2]).unwrap(), (5.0, 5.0));
    }
}
