//! What every image experiment shares downstream of sampling: GPU products of host and resident matrices, timings, model samples, the run folder and progress bars.

use super::*;

/// `op(A)·op(B)` on the GPU for a host A and a resident B, returned to the host.
pub(crate) fn multiply_resident(
    gpu: &Gpu,
    a: &Mat,
    trans_a: bool,
    b: &GpuMat,
    trans_b: bool,
) -> Result<Mat> {
    multiply_on_gpu(
        gpu,
        &GpuMat::upload(gpu, "host operand", a)?,
        trans_a,
        b,
        trans_b,
    )
}

/// `op(A)·op(B)` on the GPU for resident A and B, returned to the host.
pub(crate) fn multiply_on_gpu(
    gpu: &Gpu,
    a: &GpuMat,
    trans_a: bool,
    b: &GpuMat,
    trans_b: bool,
) -> Result<Mat> {
    let m = if trans_a { a.shape().1 } else { a.shape().0 };
    let n = if trans_b { b.shape().0 } else { b.shape().1 };
    let c = GpuMat::poisoned(gpu, "product", m, n)?;
    run_products(
        gpu,
        &[product(
            gpu,
            (a, trans_a),
            (b, trans_b),
            1.0,
            0.0,
            None,
            &c,
        )?],
        1,
    )?;
    c.download(gpu)
}

/// Wall time and floating-point work of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// What was timed.
    pub phase: String,
    /// Wall seconds.
    #[serde(deserialize_with = "crate::io::nan_if_null")]
    pub seconds: f64,
    /// Floating-point operations counted for the phase (0 where not counted).
    #[serde(deserialize_with = "crate::io::nan_if_null")]
    pub flops: f64,
    /// `flops / seconds / 10¹²`.
    #[serde(deserialize_with = "crate::io::nan_if_null")]
    pub tflops_per_second: f64,
}

impl Timing {
    /// The timing of a phase that started at `start` and did `flops` operations.
    pub fn since(phase: &str, start: Instant, flops: f64) -> Self {
        let seconds = start.elapsed().as_secs_f64();
        Self {
            phase: phase.into(),
            seconds,
            flops,
            tflops_per_second: if seconds > 0.0 {
                flops / seconds / 1e12
            } else {
                0.0
            },
        }
    }
}

/// The samples a model generated from the shared noise.
#[derive(Debug, Clone)]
pub struct ModelSamples {
    /// The architecture and its configuration, e.g. `"linear K=10"`.
    pub label: String,
    /// samples × d.
    pub samples: Mat,
    /// Rows that escaped during sampling (0 in `samples`).
    pub escaped: Vec<bool>,
}

impl ModelSamples {
    /// Labels the output of [`ddim`].
    pub fn new(label: &str, sampled: Sampled) -> Self {
        Self {
            label: label.into(),
            samples: sampled.samples,
            escaped: sampled.escaped,
        }
    }

    /// The rows that did not escape.
    pub(crate) fn finite_rows(&self) -> Mat {
        let keep: Vec<usize> = (0..self.samples.nrows())
            .filter(|&i| !self.escaped[i])
            .collect();
        Mat::from_fn(keep.len(), self.samples.ncols(), |r, j| {
            self.samples[(keep[r], j)]
        })
    }

    /// How many rows escaped.
    pub(crate) fn escaped_count(&self) -> usize {
        self.escaped.iter().filter(|&&e| e).count()
    }
}

/// A run folder: creates it and writes JSON, PNG grids and `.npy` files into it.
#[derive(Debug, Clone)]
pub struct RunFolder {
    root: PathBuf,
}

impl RunFolder {
    /// Creates `root` (and its parents).
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// `root/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A sub-folder `root/name`, created.
    pub fn child(&self, name: &str) -> Result<Self> {
        Self::create(&self.path(name))
    }

    /// Writes `text` to `root/name` (atomically: a temporary file renamed).
    pub(crate) fn write_text(&self, name: &str, text: &str) -> Result<()> {
        crate::io::write_atomic(&self.path(name), text.as_bytes())
    }

    /// Writes `value` as pretty JSON to `root/name`.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        crate::io::write_json(&self.path(name), value)
    }

    /// Writes the first `columns` samples of every model as one PNG grid row per model, titled
    /// `title`, each row labelled with its model's label and each column with its initial noise
    /// ("noise 1", …: the same noise down a column), and every model's samples as
    /// `<file stem>-<row>.npy` (f32, shape (samples, C, H, W)).
    pub(crate) fn write_figure(
        &self,
        name: &str,
        title: &str,
        context: &Context,
        rows: &[&ModelSamples],
    ) -> Result<()> {
        let shape = context.data.shape;
        let columns = context.settings.columns;
        let heads: Vec<Mat> = rows
            .iter()
            .map(|m| {
                let c = columns.min(m.samples.nrows());
                Mat::from_fn(c, m.samples.ncols(), |i, j| m.samples[(i, j)])
            })
            .collect();
        let refs: Vec<&Mat> = heads.iter().collect();
        let scale = if shape.height < 32 { 4 } else { 2 };
        let longest = heads.iter().map(Mat::nrows).max().unwrap_or(0);
        let labels = Labels {
            title: title.into(),
            // "noise c" over each column where it fits the cell, the bare number otherwise
            columns: (1..=longest)
                .map(|c| {
                    let label = format!("noise {c}");
                    let cell = shape.width as u32 * scale;
                    if crate::io::text::width(&label, 1) < cell {
                        label
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
            rows: rows.iter().map(|m| m.label.clone()).collect(),
            ..Labels::default()
        };
        write_grid(
            &self.path(&format!("{name}.png")),
            shape,
            &refs,
            scale,
            &labels,
        )?;
        for (r, m) in rows.iter().enumerate() {
            let flat: Vec<f32> = (0..m.samples.nrows())
                .flat_map(|i| (0..m.samples.ncols()).map(move |j| (i, j)))
                .map(|(i, j)| m.samples[(i, j)] as f32)
                .collect();
            npy::write_f32(
                &self.path(&format!("{name}-{r}.npy")),
                &[m.samples.nrows(), shape.channels, shape.height, shape.width],
                &flat,
            )?;
        }
        Ok(())
    }
}

/// A progress bar with rate and ETA, or a hidden one when `show` is false.
pub(crate) fn progress_bar(len: u64, label: &str, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(label.to_string());
    bar
}
