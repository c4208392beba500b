//! Levine–Weiss Fig. 3: DDIM samples generated with the MSE-optimal polynomial denoisers of
//! degree 1, 3 and 5 for a 2-D three-component Gaussian mixture, written as PNG scatter plots,
//! with a summary of how far each generated law is from the target.

use crate::denoisers::polynomial::optimal_polynomial;
use crate::diffusion::samplers::step_coefficients;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::experiments::memory;
use crate::io::plot::{scatter_png, Labels, View};
use crate::linalg::{self, Mat};
use crate::rng::Rng;
use crate::stats::moments::{mixture_moments, monomial_value, monomials};
use crate::targets::{GaussianMixture, Target};
use serde::Serialize;
use std::path::Path;

/// The figure's target: three well-separated Gaussian blobs in the plane.
pub fn target() -> Result<GaussianMixture> {
    let blob = |a: f64, b: f64, c: f64| {
        Mat::from_fn(2, 2, |i, j| match (i, j) {
            (0, 0) => a,
            (1, 1) => b,
            _ => c,
        })
    };
    GaussianMixture::new(
        &[0.4, 0.35, 0.25],
        &[vec![-2.0, -1.0], vec![2.0, -1.0], vec![0.0, 2.5]],
        &[
            blob(0.3, 0.2, 0.05),
            blob(0.25, 0.3, -0.05),
            blob(0.2, 0.2, 0.0),
        ],
    )
}

/// The DDIM update of [`crate::diffusion::samplers`] (`x ← k_ℓ x + a_ℓ f(x/α_ℓ; σ_ℓ/α_ℓ)`) with
/// the optimal degree-d polynomial denoiser, dropping the rows whose state leaves `|x| ≤ 10⁶`;
/// returns the surviving samples and the number dropped.
pub(crate) fn ddim_dropping_escapes(
    target: &GaussianMixture,
    degree: usize,
    schedule: &Schedule,
    noise: &Mat,
) -> Result<(Mat, usize)> {
    let d = noise.ncols();
    let mut rows: Vec<Vec<f64>> = (0..noise.nrows())
        .map(|i| {
            linalg::row(noise, i)
                .iter()
                .map(|v| v * schedule.initial_scale())
                .collect()
        })
        .collect();
    let total = rows.len();
    for l in (1..=schedule.steps()).rev() {
        let alpha = schedule.alpha(l);
        let fit = optimal_polynomial(target, schedule.denoiser_noise(l), degree)?;
        let (k, a, _) = step_coefficients(schedule, l, false);
        for x in rows.iter_mut() {
            let y: Vec<f64> = x.iter().map(|v| v / alpha).collect();
            let f = fit.apply(&y);
            for j in 0..d {
                x[j] = k * x[j] + a * f[j];
            }
        }
        rows.retain(|x| x.iter().all(|v| v.is_finite() && v.abs() <= 1e6));
    }
    let kept = Mat::from_fn(rows.len(), d, |i, j| rows[i][j]);
    Ok((kept, total - rows.len()))
}

/// One degree's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DegreeSummary {
    /// The denoiser's degree d.
    pub degree: usize,
    /// The PNG written.
    pub plot: String,
    /// Samples whose trajectory escaped (|x| > 10⁶ at some step) and were dropped: the
    /// probability-flow field of an odd-degree polynomial denoiser can blow up in finite time.
    pub escaped: usize,
    /// `max_α |Ê_gen[x^α] − E_target[x^α]|` over moments of total degree ≤ 2, relative to
    /// `max(|E_target[x^α]|, 1)`: how well the generated law keeps the low moments.
    pub low_moment_error: f64,
    /// Largest `|∂f₁/∂y₂ − ∂f₂/∂y₁|` of the degree-d optimal denoiser at σ = 0.5 over the
    /// generated samples: a non-zero value means the model's score `(f(y) − y)/σ²` is not a
    /// gradient field there, so it is the score of no density, polynomial or not.
    pub jacobian_asymmetry: f64,
}

/// The experiment's summary (printed as JSON by the CLI).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Samples per panel.
    pub samples: usize,
    /// DDIM steps (VP cosine).
    pub steps: usize,
    /// The target's samples plot.
    pub target_plot: String,
    /// Per degree.
    pub degrees: Vec<DegreeSummary>,
}

/// Runs the figure: `samples` draws per panel, `steps` DDIM steps, seed for the noise, PNGs
/// written to `out_dir` (created if missing).
pub fn run(out_dir: &Path, samples: usize, steps: usize, seed: u64) -> Result<Summary> {
    if samples == 0 {
        return Err(Error::InvalidArgument {
            what: "samples".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    // the target samples, the noise and three generated sets, samples×2 f64 each
    memory::ensure_fits(
        &format!("exp polynomial-2d with {samples} samples"),
        memory::bytes(&[samples, 2, 8, 5]),
        memory::limit(None)?,
    )?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let target = target()?;
    let view = View {
        centre: (0.0, 0.5),
        half_width: 5.0,
    };
    let data = target.sample(&mut Rng::new(seed, 0), samples);
    let target_plot = out_dir.join("polynomial-2d-target.png");
    let labels = |title: String| Labels {
        title,
        x_axis: "x1".into(),
        y_axis: "x2".into(),
        ..Labels::default()
    };
    scatter_png(
        &target_plot,
        &data,
        view,
        512,
        [40, 40, 40],
        &labels(format!("Target: {samples} samples")),
    )?;
    let schedule = Schedule::vp_cosine(0.999, steps)?;
    let mut noise_rng = Rng::new(seed, 1);
    let noise = Mat::from_fn(samples, 2, |_, _| noise_rng.normal());
    let low = monomials(2, 2);
    let exact = mixture_moments(&target, &low)?;
    let mut degrees = Vec::new();
    for (degree, colour) in [
        (1usize, [200, 60, 40]),
        (3, [40, 120, 200]),
        (5, [40, 160, 80]),
    ] {
        let (generated, escaped) = ddim_dropping_escapes(&target, degree, &schedule, &noise)?;
        let plot = out_dir.join(format!("polynomial-2d-degree-{degree}.png"));
        scatter_png(
            &plot,
            &generated,
            view,
            512,
            colour,
            &labels(format!(
                "DDIM with the degree-{degree} polynomial denoiser ({} kept)",
                generated.nrows()
            )),
        )?;
        let low_moment_error = low
            .iter()
            .zip(&exact)
            .map(|(a, e)| {
                let kept = generated.nrows().max(1);
                let m = (0..generated.nrows())
                    .map(|i| monomial_value(&linalg::row(&generated, i), a))
                    .sum::<f64>()
                    / kept as f64;
                (m - e).abs() / e.abs().max(1.0)
            })
            .fold(0.0, f64::max);
        let fit = optimal_polynomial(&target, 0.5, degree)?;
        let jacobian_asymmetry = (0..generated.nrows())
            .map(|i| {
                let j = fit.jacobian(&linalg::row(&generated, i));
                (j[(0, 1)] - j[(1, 0)]).abs()
            })
            .fold(0.0, f64::max);
        degrees.push(DegreeSummary {
            degree,
            plot: plot.display().to_string(),
            escaped,
            low_moment_error,
            jacobian_asymmetry,
        });
    }
    Ok(Summary {
        samples,
        steps,
        target_plot: target_plot.display().to_string(),
        degrees,
    })
}
