//! The f64 reference of [`GpuTrainer::evaluate`] with elementwise first-order running bounds on
//! the kernels' f32 error.

use super::*;

/// What [`reference_with_bounds`] returns: the f64 values of one batch's forward and backward
/// pass and elementwise bounds on the GPU's f32 error in each.
#[derive(Debug, Clone)]
pub struct MlpReference {
    /// The outputs X̂ (m×n).
    pub output: Mat,
    /// Bounds on `|X̂_gpu − X̂|`.
    pub output_bound: Mat,
    /// The loss `(1/m)Σ_r w_r‖x̂_r − x_r‖²`.
    pub loss: f64,
    /// Bound on the GPU's loss error.
    pub loss_bound: f64,
    /// The gradient of the loss (flat layout of [`flat_parameters`]).
    pub gradient: Vec<f64>,
    /// Bounds on the GPU's gradient error.
    pub gradient_bound: Vec<f64>,
}

/// A value with a bound on the GPU's error in it.
type Bounded = (f64, f64);

/// The f64 forward and backward pass of one batch through `layers` (as [`GpuTrainer`] holds
/// them: weights, biases, inputs and the features rounded to f32 on upload), with first-order
/// running bounds on the kernels' f32 results (u = 2⁻²⁴, γ_n = nu/(1 − nu), each bound written
/// as `γ_{k+c}·Σ(|a| + δa)(|b| + δb) + Σ(δa|b| + |a|δb)` — [`DotBound`] — where c counts the
/// roundings a term meets beyond the k − 1 additions of a k-term sum, in any summation order
/// that gives no term more than k − 1 additions, so split-K sums are covered):
/// * forward `z = Σ_c a_c W_c + s·w_s + b` (k = in terms): a main term meets W's rounding, the
///   product, at most `k_main − 1` additions, `+ P` and `+ b`; the σ term s's and w_s's
///   roundings (s's as `δs = u|s|`), the product and the two additions; b its rounding and one
///   addition — all within `γ_{k+3}`; then `H = φ(z)` errs by `Lip(φ)·δz + ρ_φ(z)`
///   ([`activation_rounding`]);
/// * the residual `res = x̂ − x`: `δres = δx̂ + u|x| + u(|res| + δx̂ + u|x|)` (x's rounding, the
///   subtraction); the output mask `μ = φ'(x̂)` within `δμ` ([`derivative_from_output_error`]);
///   `g = ((fl(2/m)·ŵ)·res)·μ` meets five roundings:
///   `δg = (2/m)w(|μ|δres + δμ(|res| + δres)) + γ₅(2/m)w(|res| + δres)(|μ| + δμ)`;
/// * each row's `S = Σ_j res²` (64 strided partial sums, then a 6-level tree:
///   `γ_{⌈n/64⌉+7}Σ(|res| + δres)² + Σ(2|res|δres + δres²)`) times ŵ (`+ γ₂w(S + δS)`), and the
///   loss, the sequential column sum of the m row losses (`γ_m`), divided by m in f64;
/// * backward: `∇W_a = dZᵀH`, `∇w_s = dZᵀs` (k = m, `γ_{m+1}`), `∇b = colsum dZ` (`γ_m`),
///   `dH = dZ·W_a` (k = out, W's rounding: `γ_{out+2}`) and `dZ_prev = dH·μ` with the mask's
///   error as above and one rounding:
///   `|μ|δdH + δμ(|dH| + δdH) + u(|dH| + δdH)(|μ| + δμ)`.
pub fn reference_with_bounds(layers: &[MlpLayer], batch: &Batch) -> Result<MlpReference> {
    let dim = validate_layers(layers)?;
    batch.validate(dim)?;
    let m = batch.y.nrows();
    let offsets: Vec<usize> = layers
        .iter()
        .scan(0, |k, layer| {
            let s = *k;
            *k += layer.parameter_count();
            Some(s)
        })
        .collect();
    let p = flat_parameters(layers).len();
    let mut grad: Vec<DotBound> = vec![DotBound::new(0.0); p];
    let mut output = Mat::zeros(m, dim);
    let mut output_bound = Mat::zeros(m, dim);
    let mut row_loss = DotBound::new(0.0);
    let scale = 2.0 / m as f64;
    for r in 0..m {
        let s = batch.feature[r];
        let es = U * s.abs();
        // forward: every layer's main input, pre-activation and output, with bounds
        let mut inputs: Vec<Vec<Bounded>> = vec![(0..dim)
            .map(|j| (batch.y[(r, j)], U * batch.y[(r, j)].abs()))
            .collect()];
        let mut pre: Vec<Vec<Bounded>> = Vec::with_capacity(layers.len());
        for layer in layers {
            let a = &inputs[inputs.len() - 1];
            let k = layer.main_inputs();
            let mut zs = Vec::with_capacity(layer.bias.len());
            let mut hs = Vec::with_capacity(layer.bias.len());
            for q in 0..layer.weight.nrows() {
                let mut acc = DotBound::new(layer.bias[q]);
                for (c, &ac) in a.iter().enumerate() {
                    acc.add(ac, (layer.weight[(q, c)], 0.0));
                }
                if layer.sigma {
                    acc.add((s, es), (layer.weight[(q, k)], 0.0));
                }
                let (z, ez) = acc.finish(3);
                let act = layer.activation;
                zs.push((z, ez));
                hs.push((
                    act.apply(z),
                    act.lipschitz() * ez + activation_rounding(act, z),
                ));
            }
            pre.push(zs);
            inputs.push(hs);
        }
        let out = inputs.pop().unwrap_or_default();
        // the residual kernel: G = dZ of the last layer, and the row's weighted loss
        let w = batch.weight[r];
        let last = layers[layers.len() - 1].activation;
        let mut dz: Vec<Bounded> = Vec::with_capacity(dim);
        let (mut sq, mut sq_mag, mut sq_prop) = (0.0, 0.0, 0.0);
        for j in 0..dim {
            let ((xh, exh), xv) = (out[j], batch.x[(r, j)]);
            output[(r, j)] = xh;
            output_bound[(r, j)] = exh;
            let res = xh - xv;
            let ex = exh + U * xv.abs();
            let eres = ex + U * (res.abs() + ex);
            let mu = derivative_from_output(last, xh);
            let emu = derivative_from_output_error(last, pre[layers.len() - 1][j], (xh, exh));
            let g = scale * w * res * mu;
            let eg = scale * w * (mu.abs() * eres + emu * (res.abs() + eres))
                + gamma_f32(5) * scale * w * (res.abs() + eres) * (mu.abs() + emu);
            dz.push((g, eg));
            sq += res * res;
            sq_mag += (res.abs() + eres).powi(2);
            sq_prop += 2.0 * res.abs() * eres + eres * eres;
        }
        let esq = gamma_f32(dim.div_ceil(64) + 7) * sq_mag + sq_prop;
        row_loss.add(
            (w * sq, w * esq + gamma_f32(2) * w * (sq + esq)),
            (1.0, 0.0),
        );
        // backward
        for l in (0..layers.len()).rev() {
            let layer = &layers[l];
            let (o, i) = (layer.weight.nrows(), layer.weight.ncols());
            let k = layer.main_inputs();
            let base = offsets[l];
            for (q, &dzq) in dz.iter().enumerate() {
                for (c, &ac) in inputs[l].iter().enumerate() {
                    grad[base + q * i + c].add(dzq, ac);
                }
                if layer.sigma {
                    grad[base + q * i + k].add(dzq, (s, es));
                }
                grad[base + o * i + q].add(dzq, (1.0, 0.0));
            }
            if l == 0 {
                break;
            }
            let prev = layers[l - 1].activation;
            dz = (0..k)
                .map(|c| {
                    let mut acc = DotBound::new(0.0);
                    for (q, &dzq) in dz.iter().enumerate() {
                        acc.add(dzq, (layer.weight[(q, c)], 0.0));
                    }
                    let (dh, edh) = acc.finish(2);
                    let (hv, eh) = inputs[l][c];
                    let mu = derivative_from_output(prev, hv);
                    let emu = derivative_from_output_error(prev, pre[l - 1][c], (hv, eh));
                    (
                        dh * mu,
                        mu.abs() * edh
                            + emu * (dh.abs() + edh)
                            + U * (dh.abs() + edh) * (mu.abs() + emu),
                    )
                })
                .collect();
        }
    }
    // weight entries are dZᵀ·input products (γ_{m+1}), bias entries column sums (γ_m)
    let mut gradient = Vec::with_capacity(p);
    let mut gradient_bound = Vec::with_capacity(p);
    for (l, layer) in layers.iter().enumerate() {
        let weights = layer.weight.nrows() * layer.weight.ncols();
        for (k, g) in grad[offsets[l]..offsets[l] + layer.parameter_count()]
            .iter()
            .enumerate()
        {
            let (v, e) = g.finish(usize::from(k < weights));
            gradient.push(v);
            gradient_bound.push(e);
        }
    }
    let (total, total_bound) = row_loss.finish(0);
    let loss = total / m as f64;
    Ok(MlpReference {
        output,
        output_bound,
        loss,
        loss_bound: total_bound / m as f64 + f64::EPSILON * loss,
        gradient,
        gradient_bound,
    })
}
