//! `exp generalization` — Kadkhodaie et al. Fig. 2: two models of the same architecture fitted
//! on disjoint training sets S₁, S₂ of size N (the first N images, and N images from the second
//! half of the data), sampled from the same noise. The distribution of the cosine similarity
//! between the two models' samples (model variance) is set against the cosine similarity of each
//! sample to the most similar image of its own training set (memorization): for small N the
//! models copy their training sets (second high, first low), for large N they agree (first high).
//!
//! Architectures: the empirical optimal denoiser, the linear and polynomial models, the
//! bottleneck MLPs, and `unet` — the standard (3-pooling) U-Net of `exp unet`
//! (`unet::sample_trained`): Kadkhodaie et al.'s figure with a conv net.
//!
//! The plot `generalization.png` has one row per architecture and one panel per N; each panel
//! overlays the two histograms on [−1, 1] (blue: between the two models' samples; orange: sample
//! against the most similar training image), labelled; the numbers are in metrics.json.
//!
//! The sweep over (architecture, N) shards ([`super::sweep`]): with `Settings::sweep_shard` a
//! run takes only its configurations (labelled `<architecture> N=<n>`) and writes them as JSON
//! lines to `shards/shard-<i>-of-<n>.jsonl`; `merge` joins the shards' lines, and
//! [`merged_metrics`] turns them into the metrics (and [`write_figure`] the figure) of the whole
//! sweep.

use super::bottleneck::BottleneckPredictor;
use super::linear::{LinearPredictor, Pca};
use super::memorization::sample_empirical;
use super::polynomial::{upload_projection, FeatureMap, PolynomialPredictor};
use super::sweep::{keeps, write_shard, Merged};
use super::{ddim_with_progress, paper_schedule, Context, RunFolder, Sampled, Timing};
use crate::error::{Error, Result};
use crate::gpu::gemm::GpuMat;
use crate::io::plot::{histogram_panels_png, Labels, HISTOGRAM_COLOURS};
use crate::linalg::{self, Mat};
use crate::stats::nearest::{
    cosine_similarity, median, most_similar_cosines, summarize, MemorizationSummary,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One architecture at one training-set size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeResult {
    /// The architecture.
    pub architecture: String,
    /// Training-set size N of each model.
    pub n: usize,
    /// Samples compared (both trajectories finite).
    pub compared: usize,
    /// Model 1's memorization ratios against S₁ under eq. 3.3.5 and eq. 3.3.6 (book Fig. 3.10's
    /// statistic against N); `None` for N = 1 (no second-nearest image) or no sample compared.
    pub memorization: Option<MemorizationSummary>,
    /// Median cosine similarity between the two models' samples (NaN when none compared).
    #[serde(deserialize_with = "crate::io::nan_if_null")]
    pub between_models_median: f64,
    /// Median cosine similarity of model 1's samples to their most similar image of S₁.
    #[serde(deserialize_with = "crate::io::nan_if_null")]
    pub to_training_median: f64,
    /// The per-sample values behind the histograms.
    pub between_models: Vec<f64>,
    /// The per-sample values behind the histograms.
    pub to_training: Vec<f64>,
    /// Fit and sampling time of both models.
    pub timing: Timing,
}

/// `metrics.json` of `exp generalization`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    /// Which implementation of the empirical denoiser produced its rows.
    pub empirical_route: String,
    /// Every (architecture, N).
    pub results: Vec<SizeResult>,
}

/// Samples the architecture `name` fitted on `training` from the shared noise, with a progress
/// bar labelled `label` counting DDIM steps when `show` is true.
fn sample_architecture(
    context: &Context,
    name: &str,
    training: &Mat,
    label: &str,
    show: bool,
) -> Result<(Sampled, f64)> {
    let settings = &context.settings;
    let noise = &context.noise;
    match name {
        "empirical" => sample_empirical(context, training, label, show),
        "linear" => {
            let mut p = LinearPredictor::new(context.gpu, Pca::fit(training)?)?;
            let schedule = paper_schedule(settings.linear_steps)?;
            let s = ddim_with_progress(&schedule, &mut p, noise, label, show)?;
            let flops = p.flops(context.noise.nrows()) * schedule.steps() as f64;
            Ok((s, flops))
        }
        "polynomial" => {
            let data = GpuMat::upload(context.gpu, "training images", training)?;
            let projection = upload_projection(context)?;
            // Non-empty: `Settings::validate` refuses an empty list.
            let degree = settings.degrees[0];
            let mut p = PolynomialPredictor::new(
                context,
                training,
                &data,
                &projection,
                degree,
                FeatureMap::Polynomial,
            )?;
            let schedule = paper_schedule(settings.steps)?;
            let s = ddim_with_progress(&schedule, &mut p, noise, label, show)?;
            Ok((s, p.flops))
        }
        "bottleneck" => {
            // Non-empty: `Settings::validate` refuses an empty list.
            let hidden = settings.hidden[settings.hidden.len() - 1];
            let mut p = BottleneckPredictor::new(context, training, hidden, None)?;
            let schedule = paper_schedule(settings.steps)?;
            let s = ddim_with_progress(&schedule, &mut p, noise, label, show)?;
            Ok((s, p.flops()))
        }
        "unet" => super::unet::sample_trained(context, training, label, show),
        other => Err(Error::InvalidArgument {
            what: "generalization architecture".into(),
            reason: format!(
                "unknown architecture {other:?}; choose from {}",
                super::GENERALIZATION_ARCHITECTURES.join(", ")
            ),
        }),
    }
}

/// Runs Fig. 2 for every architecture and size of the settings into `folder` (progress bars
/// counting DDIM steps when `show_progress`).
pub fn run(context: &Context, folder: &RunFolder, show_progress: bool) -> Result<Metrics> {
    let settings = &context.settings;
    let images = &context.data.images;
    let half = images.nrows() / 2;
    let rows_of =
        |from: usize, n: usize| Mat::from_fn(n, images.ncols(), |i, j| images[(from + i, j)]);
    let mut results = Vec::new();
    // the (architecture, N) configurations, architecture-major; a shard keeps those at its
    // positions
    let sweep: Vec<(&String, usize)> = settings
        .generalization_architectures
        .iter()
        .flat_map(|name| {
            settings
                .generalization_sizes
                .iter()
                .map(move |&n| (name, n))
        })
        .collect();
    let configurations: Vec<(&String, usize)> = sweep
        .iter()
        .enumerate()
        .filter(|&(position, _)| keeps(settings.sweep_shard, position))
        .map(|(_, &configuration)| configuration)
        .collect();
    for &(name, n) in &configurations {
        let start = Instant::now();
        let (s1, s2) = (rows_of(0, n), rows_of(half, n));
        let sample = |training: &Mat, half: &str| {
            let label = format!("generalization {name} N={n} {half}");
            sample_architecture(context, name, training, &label, show_progress)
        };
        let (a, fa) = sample(&s1, "S1")?;
        let (b, fb) = sample(&s2, "S2")?;
        let both: Vec<usize> = (0..a.samples.nrows())
            .filter(|&i| !a.escaped[i] && !b.escaped[i])
            .collect();
        let between: Vec<f64> = both
            .iter()
            .map(|&i| cosine_similarity(&linalg::row(&a.samples, i), &linalg::row(&b.samples, i)))
            .collect();
        let kept = Mat::from_fn(both.len(), images.ncols(), |r, j| a.samples[(both[r], j)]);
        let to_training = most_similar_cosines(&s1, &kept)?;
        // eq. 3.3.5 needs a second-nearest training image, and a sample
        let memorization = if n >= 2 && kept.nrows() > 0 {
            Some(summarize(&s1, &kept)?.0)
        } else {
            None
        };
        results.push(SizeResult {
            architecture: name.clone(),
            n,
            compared: both.len(),
            memorization,
            between_models_median: median(&between),
            to_training_median: median(&to_training),
            between_models: between,
            to_training,
            timing: Timing::since(&format!("{name} N={n}"), start, fa + fb),
        });
    }
    let metrics = Metrics {
        empirical_route: settings.empirical_route.describe().into(),
        results,
    };
    match settings.sweep_shard {
        Some(shard) => {
            let labels: Vec<String> = sweep.iter().map(|&(a, n)| label(a, n)).collect();
            let results = metrics
                .results
                .iter()
                .map(|r| Ok((label(&r.architecture, r.n), super::to_value(r)?)))
                .collect::<Result<Vec<_>>>()?;
            let run = serde_json::json!({ "empirical_route": metrics.empirical_route });
            write_shard(
                folder,
                "generalization",
                shard,
                (&labels, settings.seed),
                &run,
                &results,
            )?;
        }
        None => write_figure(&folder.path("generalization.png"), &metrics.results)?,
    }
    Ok(metrics)
}

/// The sweep label of architecture `name` at training-set size n.
fn label(name: &str, n: usize) -> String {
    format!("{name} N={n}")
}

/// The metrics of a merged generalization sweep ([`super::sweep::merge`]).
/// Errors: a line whose result or run fields are not a generalization run's.
pub fn merged_metrics(merged: &Merged) -> Result<Metrics> {
    let results = merged
        .results
        .iter()
        .map(|(configuration, value)| {
            serde_json::from_value::<SizeResult>(value.clone())
                .map_err(|e| Error::json(format!("generalization result {configuration}"), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let empirical_route = merged.run["empirical_route"]
        .as_str()
        .ok_or_else(|| Error::InvalidArgument {
            what: "generalization shards".into(),
            reason: "the lines name no empirical route".into(),
        })?
        .to_string();
    Ok(Metrics {
        empirical_route,
        results,
    })
}

/// Writes the histogram grid of `results` (one row per architecture, one column per N, in the
/// order the results come) to `path`.
pub fn write_figure(path: &Path, results: &[SizeResult]) -> Result<()> {
    let mut architectures: Vec<&str> = results.iter().map(|r| r.architecture.as_str()).collect();
    architectures.dedup();
    let mut sizes: Vec<usize> = Vec::new();
    for r in results {
        if !sizes.contains(&r.n) {
            sizes.push(r.n);
        }
    }
    let panels: Vec<Vec<[&[f64]; 2]>> = architectures
        .iter()
        .map(|name| {
            results
                .iter()
                .filter(|r| r.architecture == *name)
                .map(|r| [r.between_models.as_slice(), r.to_training.as_slice()])
                .collect()
        })
        .collect();
    let labels = Labels {
        title: "Fig. 2: cosine similarity of samples from models trained on disjoint halves".into(),
        x_axis: "cosine similarity".into(),
        y_axis: "count (each scaled to its tallest bin)".into(),
        columns: sizes.iter().map(|n| format!("N = {n}")).collect(),
        rows: architectures.iter().map(|a| a.to_string()).collect(),
        legend: vec![
            ("between the two models".into(), HISTOGRAM_COLOURS[0]),
            ("to the nearest training image".into(), HISTOGRAM_COLOURS[1]),
        ],
    };
    histogram_panels_png(path, &panels, (-1.0, 1.0), 40, 160, &labels)
}

/// Kadkhodaie et al. Fig. 2 (memorization to generalization as the training set grows).
pub struct Generalization;

impl super::ImageExperiment for Generalization {
    fn name(&self) -> &'static str {
        "generalization"
    }

    fn about(&self) -> &'static str {
        "Kadkhodaie et al. Fig. 2: models fitted on disjoint halves, N ∈ {1, 10, 100, 1000}."
    }

    fn run(
        &self,
        context: &Context,
        folder: &RunFolder,
        _earlier: &[super::ModelSamples],
        show_progress: bool,
    ) -> Result<super::Outcome> {
        let metrics = run(context, folder, show_progress)?;
        Ok(super::Outcome {
            flops: metrics.results.iter().map(|r| r.timing.flops).sum(),
            metrics: super::to_value(&metrics)?,
            samples: Vec::new(),
        })
    }
}
