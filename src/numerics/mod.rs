//! Floating-point error analysis shared by every layer (a leaf: it uses nothing of the crate).
//!
//! Rounding model (Higham, *Accuracy and Stability of Numerical Algorithms*, §2.2 and §3.1):
//! `fl(a ∘ b) = (a ∘ b)(1 + δ)`, `|δ| ≤ u`; n such roundings compound to at most
//! `γ_n = nu/(1 − nu)` relative error. The f32 kernels use `u = 2⁻²⁴`. The f64 references use
//! machine epsilon `ε = 2⁻⁵²` (twice f64's unit roundoff) in place of u, which makes every f64
//! bound here conservative by a factor of about two.

pub mod activation;

/// Unit roundoff of f32, `u = 2⁻²⁴`.
pub const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Machine epsilon of f64, `ε = 2⁻⁵²`, the rounding unit of the f64 bounds.
pub const F64_EPSILON: f64 = f64::EPSILON;

/// `γ_n = nu/(1 − nu)` with f32's `u = 2⁻²⁴`: the relative error of n rounded f32 operations.
pub fn gamma_f32(n: usize) -> f64 {
    let nu = n as f64 * F32_UNIT_ROUNDOFF;
    nu / (1.0 - nu)
}

/// `γ_n = nε/(1 − nε)` with f64's `ε = 2⁻⁵²`: a (conservative) relative error bound of n rounded
/// f64 operations.
pub(crate) fn gamma_f64(n: usize) -> f64 {
    let ne = n as f64 * F64_EPSILON;
    ne / (1.0 - ne)
}

/// Running bound on a sum of products `Σ_l a_l b_l` computed in f32 (plus `extra` roundings)
/// from inputs known to within `ea`, `eb`: `γ_{k+extra}Σ(|a| + ea)(|b| + eb) + Σ(ea|b| + |a|eb)`
/// (first order), with its f64 value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DotBound {
    value: f64,
    mag: f64,
    prop: f64,
    terms: usize,
}

impl DotBound {
    /// A sum starting from the exact `init` (a bias, or 0).
    pub fn new(init: f64) -> Self {
        Self {
            value: init,
            mag: init.abs(),
            prop: 0.0,
            terms: 0,
        }
    }

    /// Adds the product of `a` (known to within `ea`) and `b` (within `eb`).
    pub fn add(&mut self, (a, ea): (f64, f64), (b, eb): (f64, f64)) {
        self.value += a * b;
        self.mag += (a.abs() + ea) * (b.abs() + eb);
        self.prop += ea * b.abs() + a.abs() * eb;
        self.terms += 1;
    }

    /// `(value, bound)` with `extra` roundings beyond the k products and additions.
    pub fn finish(&self, extra: usize) -> (f64, f64) {
        (
            self.value,
            gamma_f32(self.terms + extra) * self.mag + self.prop,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// γ by hand: γ₁ of f32 is u/(1 − u) with u = 2⁻²⁴; γ₄ of f64 is 4ε/(1 − 4ε).
    #[test]
    fn gammas_by_hand() {
        let u = 2f64.powi(-24);
        assert_eq!(gamma_f32(1), u / (1.0 - u));
        assert_eq!(
            gamma_f64(4),
            4.0 * 2f64.powi(-52) / (1.0 - 4.0 * 2f64.powi(-52))
        );
        assert_eq!(gamma_f32(0), 0.0);
    }

    /// A two-term dot product with exact and inexact inputs: value 1·2 + 3·(−4) + 0.5 = −9.5,
    /// bound γ₃(0.5 + 1·2 + (3 + 0.1)(4 + 0.2)) + (0.1·4 + 3·0.2).
    #[test]
    fn dot_bound_by_hand() {
        let mut dot = DotBound::new(0.5);
        dot.add((1.0, 0.0), (2.0, 0.0));
        dot.add((3.0, 0.1), (-4.0, 0.2));
        let (value, bound) = dot.finish(1);
        assert_eq!(value, -9.5);
        let expected = gamma_f32(3) * (0.5 + 2.0 + 3.1 * 4.2) + (0.1 * 4.0 + 3.0 * 0.2);
        assert!(
            (bound - expected).abs() <= 1e-15 * expected,
            "{bound} vs {expected}"
        );
    }
}
