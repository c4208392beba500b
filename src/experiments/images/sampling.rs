//! DDIM sampling of the image experiments: per-step predictors, escape detection, progress, and the checkpointed sampler that resumes where it stopped.

use super::*;

/// A family of per-step x₀ predictors: `predict(ℓ, x_t)` returns x̂₀ for every row of x_t at
/// step ℓ of the schedule (the paper's models are trained one per step, lazily here, so only
/// one step's model is in memory at a time).
pub trait StepPredictor {
    /// x̂₀(x_{t_ℓ}) for every row.
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat>;

    /// What the last [`StepPredictor::predict`] cost and reached, for predictors that train a
    /// model per step (kept in the DDIM checkpoint, so a resumed run's metrics cover every
    /// step, not only the steps of its own process); `None` for the others.
    fn last_step_record(&self) -> Option<StepRecord> {
        None
    }
}

/// One trained step of a [`StepPredictor`]: its final training loss and its training cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The DDIM step ℓ.
    pub step: usize,
    /// The last epoch's training loss.
    pub loss: f64,
    /// Training FLOPs of this step.
    pub flops: f64,
    /// Training wall time of this step in seconds.
    pub seconds: f64,
}

/// A row whose entries leave `[−ESCAPE_BOUND, ESCAPE_BOUND]` (or stop being finite) during
/// sampling has escaped: images live in [−1, 1] and the noise in a few units, so 10³ is far
/// outside anything a converging trajectory visits (high-degree polynomials do diverge).
pub const ESCAPE_BOUND: f64 = 1e3;

/// Samples of one model and which rows escaped.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// samples × d; an escaped row is frozen at 0 from the step it escaped.
    pub samples: Mat,
    /// Whether each row escaped.
    pub escaped: Vec<bool>,
    /// The predictor's [`StepRecord`]s of every step, from the first run of a checkpointed
    /// sampling to this one (empty for predictors that keep none).
    pub records: Vec<StepRecord>,
}

/// Deterministic DDIM with x₀ predictions: from `x_L = noise`,
/// `x_{ℓ−1} = (σ_{ℓ−1}/σ_ℓ)·x_ℓ + (α_{ℓ−1} − (σ_{ℓ−1}/σ_ℓ)·α_ℓ)·x̂₀(x_ℓ)`, ℓ = L … 1 (the same
/// coefficients as [`crate::diffusion::Ddim`]); returns x₀ and the escaped rows
/// (see [`ESCAPE_BOUND`]), which are set to 0 so the remaining rows go on.
pub fn ddim(
    schedule: &Schedule,
    predictor: &mut dyn StepPredictor,
    noise: &Mat,
) -> Result<Sampled> {
    ddim_checkpointed(schedule, predictor, noise, None)
}

/// A [`StepPredictor`] that advances a progress bar by one after every prediction.
pub(super) struct Counted<'p, 'b> {
    inner: &'p mut dyn StepPredictor,
    bar: &'b indicatif::ProgressBar,
}

impl StepPredictor for Counted<'_, '_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        let x0 = self.inner.predict(schedule, step, x_t)?;
        self.bar.inc(1);
        Ok(x0)
    }

    fn last_step_record(&self) -> Option<StepRecord> {
        self.inner.last_step_record()
    }
}

/// [`ddim`] with a progress bar (rate and ETA) counting its L steps, labelled `label`, hidden
/// when `show` is false.
pub(crate) fn ddim_with_progress(
    schedule: &Schedule,
    predictor: &mut dyn StepPredictor,
    noise: &Mat,
    label: &str,
    show: bool,
) -> Result<Sampled> {
    let bar = progress_bar(schedule.steps() as u64, label, show);
    let sampled = ddim(
        schedule,
        &mut Counted {
            inner: predictor,
            bar: &bar,
        },
        noise,
    );
    bar.finish_and_clear();
    sampled
}

/// `progress.json` of a DDIM checkpoint folder; the current x is `state-<at_step>.npy` (f64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct DdimProgress {
    steps: usize,
    rows: usize,
    cols: usize,
    /// x holds `x_{t_ℓ}` for this ℓ (the steps above it are done).
    at_step: usize,
    escaped: Vec<bool>,
    /// The step records of the steps done (absent in checkpoints written before they were kept).
    #[serde(default)]
    records: Vec<StepRecord>,
}

/// [`ddim`] that, with `checkpoint = Some(dir)`, writes `dir/state-<ℓ>.npy` and then
/// `dir/progress.json` (by an atomic rename; it names the state file, so an interruption at any
/// point leaves a consistent pair) after every step and, when they exist for the same shape and step count,
/// resumes from them: an interrupted run loses at most one step's work. Generation being a
/// deterministic function of the noise, the resumed result equals an uninterrupted one.
pub(crate) fn ddim_checkpointed(
    schedule: &Schedule,
    predictor: &mut dyn StepPredictor,
    noise: &Mat,
    checkpoint: Option<&Path>,
) -> Result<Sampled> {
    let big_l = schedule.steps();
    let (rows, cols) = (noise.nrows(), noise.ncols());
    let mut x = noise.clone();
    let mut escaped = vec![false; rows];
    let mut at_step = big_l;
    let mut records = Vec::new();
    if let Some(dir) = checkpoint {
        if let Some((state, progress)) = read_checkpoint(dir)? {
            if (progress.steps, progress.rows, progress.cols) == (big_l, rows, cols) {
                x = state;
                escaped = progress.escaped;
                at_step = progress.at_step;
                records = progress.records;
            }
        }
    }
    for l in (1..=at_step).rev() {
        let x0 = predictor.predict(schedule, l, &x)?;
        records.extend(predictor.last_step_record());
        let (k, a, _) = step_coefficients(schedule, l, false);
        x = Mat::from_fn(rows, cols, |i, j| k * x[(i, j)] + a * x0[(i, j)]);
        for (i, gone) in escaped.iter_mut().enumerate() {
            if *gone || (0..cols).any(|j| !x[(i, j)].is_finite() || x[(i, j)].abs() > ESCAPE_BOUND)
            {
                *gone = true;
                for j in 0..cols {
                    x[(i, j)] = 0.0;
                }
            }
        }
        if let Some(dir) = checkpoint {
            write_checkpoint(
                dir,
                &x,
                &DdimProgress {
                    steps: big_l,
                    rows,
                    cols,
                    at_step: l - 1,
                    escaped: escaped.clone(),
                    records: records.clone(),
                },
            )?;
        }
    }
    Ok(Sampled {
        samples: x,
        escaped,
        records,
    })
}

pub(super) fn read_checkpoint(dir: &Path) -> Result<Option<(Mat, DdimProgress)>> {
    let progress_path = dir.join("progress.json");
    if !progress_path.exists() {
        return Ok(None);
    }
    let progress: DdimProgress = crate::io::read_json(&progress_path)?;
    let state = npy::read(&dir.join(state_file(progress.at_step)))?;
    if state.shape != [progress.rows, progress.cols] {
        return Err(Error::InvalidArgument {
            what: format!("checkpoint {}", dir.display()).into(),
            reason: format!(
                "its state file has shape {:?}, progress.json says ({}, {})",
                state.shape, progress.rows, progress.cols
            ),
        });
    }
    let x = Mat::from_fn(progress.rows, progress.cols, |i, j| {
        state.data[i * progress.cols + j]
    });
    Ok(Some((x, progress)))
}

pub(super) fn state_file(at_step: usize) -> String {
    format!("state-{at_step}.npy")
}

pub(super) fn write_checkpoint(dir: &Path, x: &Mat, progress: &DdimProgress) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    npy::write_mat(&dir.join(state_file(progress.at_step)), x)?;
    crate::io::write_json(&dir.join("progress.json"), progress)?;
    let previous = dir.join(state_file(progress.at_step + 1));
    if previous.exists() {
        std::fs::remove_file(&previous).map_err(|e| Error::io(&previous, e))?;
    }
    Ok(())
}
