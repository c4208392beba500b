//! Pointwise activations φ and what the rounding analyses need of them: φ, φ′, `sup|φ″|`,
//! `sup|φ′|`, the kernels' codes, and the f32 rounding of φ and of φ′-from-φ(z) in the GEMM
//! epilogues.

use super::{gamma_f32, F32_UNIT_ROUNDOFF as U};
use serde::{Deserialize, Serialize};

/// A pointwise activation φ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// `φ(z) = z`.
    Identity,
    /// `φ(z) = tanh z`.
    Tanh,
    /// `φ(z) = max(z, 0)`.
    Relu,
    /// `φ(z) = z` for `z > 0`, `slope·z` otherwise.
    LeakyRelu {
        /// The negative-side slope (PyTorch's default is 0.01, the paper uses 0.2).
        slope: f64,
    },
}

impl Activation {
    /// `φ(z)`.
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Self::Identity => z,
            Self::Tanh => z.tanh(),
            Self::Relu => z.max(0.0),
            Self::LeakyRelu { slope } => {
                if z > 0.0 {
                    z
                } else {
                    slope * z
                }
            }
        }
    }

    /// `φ'(z)` (at the kink z = 0 of the piecewise-linear ones: the left derivative, as PyTorch).
    pub fn derivative(self, z: f64) -> f64 {
        match self {
            Self::Identity => 1.0,
            Self::Tanh => 1.0 - z.tanh().powi(2),
            Self::Relu => f64::from(u8::from(z > 0.0)),
            Self::LeakyRelu { slope } => {
                if z > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
        }
    }

    /// `sup |φ''|` away from kinks: `4/(3√3) < 0.77` for tanh, 0 for the piecewise-linear ones.
    pub(crate) fn curvature_bound(self) -> f64 {
        match self {
            Self::Tanh => 0.77,
            _ => 0.0,
        }
    }

    /// `sup |φ'|`.
    pub(crate) fn lipschitz(self) -> f64 {
        match self {
            Self::LeakyRelu { slope } => slope.abs().max(1.0),
            _ => 1.0,
        }
    }

    /// (kind code, slope) as the WGSL kernels read them: 0 identity, 1 tanh, 2 ReLU, 3 leaky.
    pub(crate) fn gpu_code(self) -> (u32, f64) {
        match self {
            Self::Identity => (0, 0.0),
            Self::Tanh => (1, 0.0),
            Self::Relu => (2, 0.0),
            Self::LeakyRelu { slope } => (3, slope),
        }
    }
}

/// Bound on `|φ_f32(z) − φ(z)|`, the kernels' own rounding of φ at an f32 argument z (an
/// error δz in z adds `Lip(φ)·δz` on top):
/// * identity, ReLU (`max(z, 0)`): exact;
/// * leaky ReLU, `z ≤ 0`: the slope rounded to f32 and one product, `γ₂|slope·z|`;
/// * tanh, evaluated as `sign(z)(1 − E)/(1 + E)`, `E = exp(−2|z|)`: WGSL's `exp` is within
///   `3 + 2|x|` ULP (≤ `(6 + 8|z|)u` relative), and `E·|dt/dE| = (1 − t²)/2`, so E's error moves
///   t by `(1 − t²)(3 + 4|z|)u ≤ 4.8u` (`sup |z|·sech²z < 0.448`); `1 − E`, `1 + E` (u each) and
///   the division (2.5 ULP ≤ 5u) add `7u|t|`: `≤ 11.8u` to first order, 12u with the O(u²)
///   remainder. (An E flushed to zero for `|z| > 44` moves t by `2E < 2⁻¹²⁵`.)
pub fn activation_rounding(activation: Activation, z: f64) -> f64 {
    match activation {
        Activation::Identity | Activation::Relu => 0.0,
        Activation::LeakyRelu { slope } => {
            if z > 0.0 {
                0.0
            } else {
                gamma_f32(2) * (slope * z).abs()
            }
        }
        Activation::Tanh => 12.0 * U,
    }
}

/// `φ'(z)` from `h = φ(z)`, as the derivative-mask epilogue computes it: identity 1, tanh
/// `1 − h²`, ReLU `[h > 0]`, leaky ReLU (slope ≥ 0) 1 for `h > 0`, else the slope.
pub fn derivative_from_output(activation: Activation, h: f64) -> f64 {
    match activation {
        Activation::Identity => 1.0,
        Activation::Tanh => 1.0 - h * h,
        Activation::Relu => f64::from(u8::from(h > 0.0)),
        Activation::LeakyRelu { slope } => {
            if h > 0.0 {
                1.0
            } else {
                slope
            }
        }
    }
}

/// Bound on the f32 error of [`derivative_from_output`] as the kernels compute it (the GEMM's
/// derivative-mask epilogue, the residual kernel's output mask) from an f32 `ĥ` with
/// `|ĥ − h| ≤ δh`, `h = φ(z)`, the f32 pre-activation within `δz` of z, against the exact
/// `φ'(z)`:
/// * identity: exact;
/// * tanh, `1 − ĥ²`: `|ĥ² − h²| ≤ (2|h| + δh)δh`, the square rounds by `u(|h| + δh)²` and the
///   subtraction by `u(|φ'| + (2|h| + δh)δh)`;
/// * ReLU and leaky ReLU (slope ≥ 0, so the sign of h is the sign of z): the mask is 1 or the
///   slope exactly — unless `|z| ≤ δz`, where the f32 pre-activation may sit across the kink
///   and the mask flips (`|1 − slope|`) — plus the slope's f32 rounding `u·slope` on the
///   negative side.
pub fn derivative_from_output_error(
    activation: Activation,
    (z, dz): (f64, f64),
    (h, dh): (f64, f64),
) -> f64 {
    match activation {
        Activation::Identity => 0.0,
        Activation::Tanh => {
            let m = 1.0 - h * h;
            let sq = (2.0 * h.abs() + dh) * dh;
            sq + U * (h.abs() + dh).powi(2) + U * (m.abs() + sq)
        }
        Activation::Relu | Activation::LeakyRelu { .. } => {
            let slope = match activation {
                Activation::LeakyRelu { slope } => slope,
                _ => 0.0,
            };
            let flip = if z.abs() <= dz {
                (1.0 - slope).abs()
            } else {
                0.0
            };
            flip + if h > 0.0 { 0.0 } else { U * slope.abs() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask bound by hand: tanh at h = 0.5, δh = 0.01 is `(2·0.5 + 0.01)·0.01 = 0.0101`
    /// plus `u·0.51² + u(0.75 + 0.0101)`; a leaky(0.2) mask within δz of the kink may flip by
    /// `|1 − 0.2| = 0.8` (plus `0.2u` on the negative side), away from it only the slope's
    /// rounding remains, and nothing on the positive side; identity is exact.
    #[test]
    fn derivative_from_output_error_by_hand() {
        let tanh = derivative_from_output_error(Activation::Tanh, (0.55, 0.01), (0.5, 0.01));
        let expected = 0.0101 + U * 0.51 * 0.51 + U * (0.75 + 0.0101);
        assert!((tanh - expected).abs() <= 1e-15, "{tanh} vs {expected}");
        let leaky = Activation::LeakyRelu { slope: 0.2 };
        let near = derivative_from_output_error(leaky, (-1e-3, 2e-3), (-2e-4, 1e-3));
        assert!((near - (0.8 + 0.2 * U)).abs() <= 1e-15, "{near}");
        assert_eq!(
            derivative_from_output_error(leaky, (-1.0, 1e-3), (-0.2, 1e-3)),
            0.2 * U
        );
        assert_eq!(
            derivative_from_output_error(leaky, (1.0, 1e-3), (1.0, 1e-3)),
            0.0
        );
        assert_eq!(
            derivative_from_output_error(Activation::Relu, (1e-4, 1e-3), (1e-4, 1e-3)),
            1.0
        );
        assert_eq!(
            derivative_from_output_error(Activation::Identity, (0.0, 1.0), (0.0, 1.0)),
            0.0
        );
    }
}
