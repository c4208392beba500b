//! A bottleneck network's construction, parameters, forward pass and `Denoiser` impl.

use super::architecture::{sigma_feature, Architecture};
use super::Activation;
use super::{BottleneckNet, Layer, Trace};
use crate::denoisers::{check_input, Denoiser};
use crate::error::{ensure_finite, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::numerics::gamma_f64;
use crate::rng::Rng;
use crate::stats::finite_difference::Derivative;

impl BottleneckNet {
    /// Validates the architecture, the layer shapes and finiteness.
    pub fn new(arch: Architecture, layers: Vec<Layer>) -> Result<Self> {
        arch.validate()?;
        let shapes = arch.layer_shapes();
        if layers.len() != shapes.len() {
            return Err(Error::DimensionMismatch {
                what: "number of layers".into(),
                expected: shapes.len(),
                got: layers.len(),
            });
        }
        for (l, (layer, &(o, i))) in layers.iter().zip(&shapes).enumerate() {
            if layer.weight.nrows() != o || layer.weight.ncols() != i || layer.bias.len() != o {
                return Err(Error::InvalidArgument {
                    what: format!("layer {l}").into(),
                    reason: format!(
                        "W must be {o}×{i} and b of length {o}, got {}×{} and {}",
                        layer.weight.nrows(),
                        layer.weight.ncols(),
                        layer.bias.len()
                    ),
                });
            }
            linalg::ensure_finite_mat(&format!("layer {l} W"), &layer.weight)?;
            ensure_finite(&format!("layer {l} b"), &layer.bias)?;
        }
        Ok(Self { arch, layers })
    }

    /// Random weights with fan-in scaling: `W_ij ~ N(0, g²/in)` with gain g = √2 before
    /// (leaky) ReLUs and 1 otherwise, `b_i ~ N(0, 0.1²)`, so pre-activations stay O(1).
    pub fn random(arch: Architecture, rng: &mut Rng) -> Result<Self> {
        arch.validate()?;
        let layers = arch
            .layer_shapes()
            .iter()
            .enumerate()
            .map(|(l, &(o, i))| {
                let g = match arch.activation(l) {
                    Activation::Relu | Activation::LeakyRelu { .. } => 2f64.sqrt(),
                    _ => 1.0,
                };
                let s = g / (i as f64).sqrt();
                Layer {
                    weight: Mat::from_fn(o, i, |_, _| s * rng.normal()),
                    bias: (0..o).map(|_| 0.1 * rng.normal()).collect(),
                }
            })
            .collect();
        Self::new(arch, layers)
    }

    /// The architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The code width h.
    pub fn bottleneck(&self) -> usize {
        self.arch.bottleneck
    }

    /// All parameters flattened: per layer, W row-major then b.
    pub fn parameters(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.arch.parameter_count());
        for layer in &self.layers {
            for i in 0..layer.weight.nrows() {
                out.extend((0..layer.weight.ncols()).map(|j| layer.weight[(i, j)]));
            }
            out.extend(&layer.bias);
        }
        out
    }

    /// The network with the same architecture and parameters `theta` (layout of
    /// [`BottleneckNet::parameters`]).
    pub fn with_parameters(&self, theta: &[f64]) -> Result<Self> {
        Self::from_parameters(self.arch.clone(), theta)
    }

    /// The network of architecture `arch` with flat parameters `theta` (per layer, W row-major
    /// then b).
    pub(crate) fn from_parameters(arch: Architecture, theta: &[f64]) -> Result<Self> {
        arch.validate()?;
        crate::error::ensure_len("parameters", theta, arch.parameter_count())?;
        let mut k = 0;
        let layers = arch
            .layer_shapes()
            .iter()
            .map(|&(o, i)| {
                let weight = Mat::from_fn(o, i, |r, c| theta[k + r * i + c]);
                k += o * i;
                let bias = theta[k..k + o].to_vec();
                k += o;
                Layer { weight, bias }
            })
            .collect();
        Self::new(arch, layers)
    }

    fn with_sigma(&self, l: usize, a: &[f64], sigma: f64) -> Vec<f64> {
        let mut v = a.to_vec();
        if self.arch.takes_sigma(l) {
            v.push(sigma_feature(sigma));
        }
        v
    }

    /// Runs layers `range` from input `a` (without σ feature), recording the trace.
    pub(super) fn run(&self, range: std::ops::Range<usize>, a: &[f64], sigma: f64) -> Trace {
        let mut trace = Trace {
            inputs: vec![],
            pre: vec![],
            input_error: vec![],
        };
        let mut a = a.to_vec();
        let mut err = vec![0.0; a.len()];
        for l in range {
            let layer = &self.layers[l];
            let input = self.with_sigma(l, &a, sigma);
            // ln σ is correctly rounded to within ε|s|.
            let mut input_err = err.clone();
            if input.len() > a.len() {
                input_err.push(EPS * input[a.len()].abs());
            }
            let (o, i) = (layer.weight.nrows(), layer.weight.ncols());
            let act = self.arch.activation(l);
            let mut z = vec![0.0; o];
            let mut next_err = vec![0.0; o];
            for r in 0..o {
                let (mut s, mut mag, mut prop) = (layer.bias[r], layer.bias[r].abs(), 0.0);
                for c in 0..i {
                    let w = layer.weight[(r, c)];
                    s += w * input[c];
                    mag += (w * input[c]).abs();
                    prop += w.abs() * input_err[c];
                }
                z[r] = s;
                let dz = gamma_f64(i + 1) * mag + prop;
                next_err[r] = act.lipschitz() * dz + 2.0 * EPS * act.apply(s).abs();
            }
            a = z.iter().map(|&v| act.apply(v)).collect();
            trace.inputs.push(input);
            trace.input_error.push(input_err);
            trace.pre.push(z);
            err = next_err;
        }
        trace.inputs.push(a);
        trace.input_error.push(err);
        trace
    }

    /// The forward trace of `f(y, σ)` (all layers).
    pub fn trace(&self, y: &[f64], sigma: f64) -> Result<Trace> {
        check_input(self.arch.dim, y, sigma)?;
        Ok(self.run(0..self.layers.len(), y, sigma))
    }

    /// The code `E(y, σ) ∈ ℝʰ`.
    pub fn encode(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.arch.dim, y, sigma)?;
        let t = self.run(0..self.arch.code_layer() + 1, y, sigma);
        Ok(t.inputs.last().cloned().unwrap_or_default())
    }

    /// The decoder `D(z, σ) ∈ ℝⁿ` (σ is read only with [`SigmaInput::EncoderAndDecoder`]).
    ///
    /// [`SigmaInput::EncoderAndDecoder`]: super::SigmaInput::EncoderAndDecoder
    pub(crate) fn decode(&self, z: &[f64], sigma: f64) -> Result<Vec<f64>> {
        crate::error::ensure_len("code z", z, self.arch.bottleneck)?;
        ensure_finite("code z", z)?;
        crate::error::ensure_sigma(sigma)?;
        let t = self.run(self.arch.code_layer() + 1..self.layers.len(), z, sigma);
        Ok(t.inputs.last().cloned().unwrap_or_default())
    }
}

impl Denoiser for BottleneckNet {
    fn dim(&self) -> usize {
        self.arch.dim
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        let t = self.trace(y, sigma)?;
        Ok(t.inputs.last().cloned().unwrap_or_default())
    }

    /// `∇D(E(y))·∇E(y)` (chain rule through every layer, the product at the code formed last)
    /// with the bound `|∇D||∇E|γ_h + B_D|∇E| + |∇D|B_E` (B the factor bounds).
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        let ((e, be), (d, bd)) = self.factor_jacobians(y, sigma)?;
        let value = &d * &e;
        let abs = |m: &Mat| Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)].abs());
        let error = (&abs(&d) * &abs(&e)) * gamma_f64(self.arch.bottleneck)
            + &bd * &abs(&e)
            + &abs(&d) * &be;
        Ok(Derivative { value, error })
    }
}
