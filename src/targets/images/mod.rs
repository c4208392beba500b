//! Image data sets: generated geometric `C^α` images and the five-parameter disk manifold of
//! Kadkhodaie et al. (ICLR 2024, App. D Algorithm 2 and §4), a CelebA folder
//! (`img_align_celeba`), or a NumPy `.npy` file of images.
//!
//! Unlike the other targets these are *samples*, not closed forms: an [`ImageSet`] holds `N`
//! images as the rows of an `N × dim` matrix with values in `[−1, 1]`.
//!
//! # Layout
//! An image with `C` channels, `H` rows and `W` columns is flattened in **CHW** order, the order
//! of PyTorch's `x.view(N, -1)` applied to an `N × C × H × W` tensor: pixel `(c, i, j)` (channel
//! `c`, row `i` from the top, column `j` from the left) is entry `(c·H + i)·W + j`
//! ([`ImageShape::index`]).
//!
//! # Reproducibility
//! Image `i` of a generated source with seed `s` is a pure function of `(s, i)`: it reads the
//! Philox stream `(s ⊕ domain, i)` of [`crate::rng`] (one stream per image, `domain` a constant
//! per source), so the first 500 images of `n = 1000` are exactly the images of `n = 500`.

pub mod calpha;
pub mod celeba;
pub mod disks;

use crate::error::{Error, Result};
use crate::io::npy;
use crate::linalg::Mat;
use crate::rng::Rng;
use rayon::prelude::*;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use crate::io::grid::ImageShape;

/// `N` images of one shape, one flattened CHW image per row of `images`, values in `[−1, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// The shape of every image.
    pub shape: ImageShape,
    /// `N × shape.dim()`, row `n` = image `n` flattened in CHW order, values in `[−1, 1]`.
    pub images: Mat,
    /// One name per image: the file name (CelebA), `"<file>[n]"` (`.npy`), or
    /// `"<source>-<seed>-<n>"` (generated: `calpha-0-17`, `disks-0-17`).
    pub names: Vec<String>,
}

impl ImageSet {
    /// Checks that `images` has `shape.dim()` columns and one row per name, and that every
    /// value is finite and in `[−1, 1]`; the error names the first offending index.
    pub fn new(shape: ImageShape, images: Mat, names: Vec<String>) -> Result<Self> {
        if images.ncols() != shape.dim() {
            return Err(Error::DimensionMismatch {
                what: format!("image length for shape {shape}").into(),
                expected: shape.dim(),
                got: images.ncols(),
            });
        }
        if names.len() != images.nrows() {
            return Err(Error::DimensionMismatch {
                what: "number of image names".into(),
                expected: images.nrows(),
                got: names.len(),
            });
        }
        for n in 0..images.nrows() {
            for k in 0..images.ncols() {
                ensure_pixel_value(&names[n], n * images.ncols() + k, images[(n, k)])?;
            }
        }
        Ok(Self {
            shape,
            images,
            names,
        })
    }

    /// The number of images `N`.
    pub fn len(&self) -> usize {
        self.images.nrows()
    }

    /// `N = 0`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images `range.start .. range.end`, in order; a range past `N` is an error naming it.
    pub fn subset(&self, range: Range<usize>) -> Result<Self> {
        if range.start > range.end || range.end > self.len() {
            return Err(Error::InvalidArgument {
                what: "image range".into(),
                reason: format!("{range:?} is not inside 0..{}", self.len()),
            });
        }
        self.rows(&range.collect::<Vec<_>>())
    }

    /// The images at `indices`, in that order (repeats allowed); an index `≥ N` is an error
    /// naming it.
    pub fn rows(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument {
                what: "image index".into(),
                reason: format!("{bad} ≥ number of images {}", self.len()),
            });
        }
        Ok(Self {
            shape: self.shape,
            images: Mat::from_fn(indices.len(), self.shape.dim(), |r, k| {
                self.images[(indices[r], k)]
            }),
            names: indices.iter().map(|&i| self.names[i].clone()).collect(),
        })
    }

    /// Writes the images as a little-endian f32 `.npy` array of shape `(N, C, H, W)` (the
    /// CHW rows are already in C order), readable by `numpy.load` and by the `npy:` source.
    /// f32 keeps about 7 significant digits: a reload differs by at most `2⁻²⁴` per value.
    pub fn save_npy(&self, path: &Path) -> Result<()> {
        let data: Vec<f32> = (0..self.len())
            .flat_map(|n| (0..self.shape.dim()).map(move |k| self.images[(n, k)] as f32))
            .collect();
        npy::write_f32(
            path,
            &[
                self.len(),
                self.shape.channels,
                self.shape.height,
                self.shape.width,
            ],
            &data,
        )
    }
}

/// Where images come from, parsed from the strings `calpha`, `calpha:<α>`, `disks`,
/// `celeba:<dir>` and `npy:<path>` ([`FromStr`]); [`Display`](fmt::Display) writes the same
/// form back (`calpha` comes back as `calpha:2`).
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// Geometric `C^α` images ([`calpha`]), regularity `α > 0` (default
    /// [`calpha::DEFAULT_ALPHA`]` = 2`).
    CAlpha {
        /// The Hölder regularity α of the contour and of both backgrounds.
        alpha: f64,
    },
    /// The five-parameter disk manifold ([`disks`]).
    Disks,
    /// The first `N` readable images of a CelebA `img_align_celeba` folder ([`celeba`]).
    CelebA {
        /// The folder.
        dir: PathBuf,
    },
    /// The first `N` images of an `(N, C, H, W)` float `.npy` array with values in `[−1, 1]`.
    Npy {
        /// The file.
        path: PathBuf,
    },
}

/// The accepted spellings of a [`DataSource`], quoted by the parse error.
const ACCEPTED_SOURCES: &str = "calpha, calpha:<alpha > 0>, disks, celeba:<dir>, npy:<path>";

impl FromStr for DataSource {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let unknown = || Error::InvalidArgument {
            what: "data source".into(),
            reason: format!("unknown data source {text:?}; accepted: {ACCEPTED_SOURCES}"),
        };
        let (kind, argument) = match text.split_once(':') {
            Some((kind, argument)) => (kind, Some(argument)),
            None => (text, None),
        };
        match (kind, argument) {
            ("calpha", None) => Ok(Self::CAlpha {
                alpha: calpha::DEFAULT_ALPHA,
            }),
            ("calpha", Some(alpha_text)) => {
                let alpha: f64 = alpha_text.parse().map_err(|_| Error::InvalidArgument {
                    what: "data source calpha:<alpha>".into(),
                    reason: format!("alpha {alpha_text:?} is not a number"),
                })?;
                crate::error::ensure_positive_finite("C^alpha regularity alpha", alpha)?;
                Ok(Self::CAlpha { alpha })
            }
            ("disks", None) => Ok(Self::Disks),
            ("celeba", Some(dir)) if !dir.is_empty() => Ok(Self::CelebA { dir: dir.into() }),
            ("npy", Some(path)) if !path.is_empty() => Ok(Self::Npy { path: path.into() }),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CAlpha { alpha } => write!(f, "calpha:{alpha}"),
            Self::Disks => write!(f, "disks"),
            Self::CelebA { dir } => write!(f, "celeba:{}", dir.display()),
            Self::Npy { path } => write!(f, "npy:{}", path.display()),
        }
    }
}

/// How many images to load and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// The number of images `N` (the first `N` of the source).
    pub n: usize,
    /// Side length of the square images: 64 at paper scale, 16 in quick mode.
    pub size: usize,
    /// Seed of the generated sources (ignored by `celeba:` and `npy:`).
    pub seed: u64,
    /// CelebA: skip an unreadable file and list it in [`LoadReport::skipped`] instead of failing.
    pub skip_bad: bool,
}

impl Default for LoadOptions {
    /// `N = 1000` images of `64 × 64`, seed 0, a corrupt file is fatal.
    fn default() -> Self {
        Self {
            n: 1000,
            size: 64,
            seed: 0,
            skip_bad: false,
        }
    }
}

/// What [`load`] skipped on the way (only with [`LoadOptions::skip_bad`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Every file passed over, with the decoder's reason, in sorted-name order.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Loads `options.n` images of `3 × size × size` (or the `.npy` file's channels) from `source`.
///
/// Generated sources are reproducible: image `i` depends on `(seed, i)` only. Errors: `n = 0`,
/// `size = 0`, more than `2³²` generated images, and every source-specific failure (a missing
/// folder or too few images, a corrupt file, a `.npy` of the wrong shape or with a value
/// outside `[−1, 1]`), each naming the offending value or file.
pub fn load(source: &DataSource, options: &LoadOptions) -> Result<(ImageSet, LoadReport)> {
    if options.n == 0 || options.size == 0 {
        return Err(Error::InvalidArgument {
            what: "load options".into(),
            reason: format!(
                "need n ≥ 1 and size ≥ 1, got n = {}, size = {}",
                options.n, options.size
            ),
        });
    }
    match source {
        DataSource::CAlpha { alpha } => {
            let generator = calpha::CAlphaGenerator::new(*alpha, options.size)?;
            let set = generate(options, "calpha", |index| {
                generator.image(options.seed, index)
            })?;
            Ok((set, LoadReport::default()))
        }
        DataSource::Disks => {
            let set = generate(options, "disks", |index| {
                disks::disk_image(
                    &disks::disk_params(options.seed, index, options.size),
                    options.size,
                )
            })?;
            Ok((set, LoadReport::default()))
        }
        DataSource::CelebA { dir } => celeba::load_folder(dir, options),
        DataSource::Npy { path } => Ok((npy_images(path, options)?, LoadReport::default())),
    }
}

/// The Philox reader of image `index` of a generated source: stream `index` under the key
/// `seed ⊕ domain`. The per-source constant `domain` keeps two sources, and any other use of
/// `Rng::new(seed, stream)` with the same small seed (noise for a sampler), from reading the
/// same words.
pub(crate) fn image_rng(domain: u64, seed: u64, index: u32) -> Rng {
    Rng::new(seed ^ domain, index)
}

/// Images `0..n` of a generated source, in parallel; image `i` is `image(i)`.
fn generate(
    options: &LoadOptions,
    prefix: &str,
    image: impl Fn(u32) -> Vec<f64> + Sync,
) -> Result<ImageSet> {
    let count = u32::try_from(options.n - 1).map_err(|_| Error::InvalidArgument {
        what: "number of images n".into(),
        reason: format!(
            "{} exceeds the 2³² images one seed indexes (one Philox stream per image)",
            options.n
        ),
    })?;
    let images: Vec<Vec<f64>> = (0..=count).into_par_iter().map(&image).collect();
    let shape = ImageShape::rgb_square(options.size);
    ImageSet::new(
        shape,
        Mat::from_fn(images.len(), shape.dim(), |i, k| images[i][k]),
        (0..options.n)
            .map(|i| format!("{prefix}-{}-{i}", options.seed))
            .collect(),
    )
}

/// The first `options.n` images of an `(N, C, H, W)` `.npy` array: `H = W = size`, `N ≥ n`,
/// every value of those images finite and in `[−1, 1]` (errors name the file and the index).
fn npy_images(path: &Path, options: &LoadOptions) -> Result<ImageSet> {
    let array = npy::read(path)?;
    let file = path.display().to_string();
    let &[count, channels, height, width] = array.shape.as_slice() else {
        return Err(Error::InvalidArgument {
            what: format!("npy images {file}").into(),
            reason: format!("shape {:?} is not (N, C, H, W)", array.shape),
        });
    };
    if channels != 1 && channels != 3 {
        return Err(Error::InvalidArgument {
            what: format!("npy images {file}").into(),
            reason: format!(
                "images have {channels} channels (C of (N, C, H, W)); need 1 (grey) or 3 (RGB), \
                 which the figures can draw"
            ),
        });
    }
    if height != options.size || width != options.size {
        return Err(Error::InvalidArgument {
            what: format!("npy images {file}").into(),
            reason: format!(
                "images are {height}×{width} (H×W) but size is {0}×{0}",
                options.size
            ),
        });
    }
    if count < options.n {
        return Err(Error::InvalidArgument {
            what: format!("npy images {file}").into(),
            reason: format!("holds {count} images, fewer than n = {}", options.n),
        });
    }
    let shape = ImageShape {
        channels,
        height,
        width,
    };
    let dim = shape.dim();
    for (index, &value) in array.data[..options.n * dim].iter().enumerate() {
        ensure_pixel_value(&file, index, value)?;
    }
    let name = path
        .file_name()
        .map_or_else(|| file.clone(), |f| f.to_string_lossy().into_owned());
    ImageSet::new(
        shape,
        Mat::from_fn(options.n, dim, |i, k| array.data[i * dim + k]),
        (0..options.n).map(|i| format!("{name}[{i}]")).collect(),
    )
}

/// A pixel value must be finite and in `[−1, 1]`; the error names `what` and the flat index.
fn ensure_pixel_value(what: &str, index: usize, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::NonFinite {
            what: what.to_string().into(),
            index,
            value,
        });
    }
    if !(-1.0..=1.0).contains(&value) {
        return Err(Error::InvalidArgument {
            what: what.to_string().into(),
            reason: format!("pixel value {value} at flat index {index} is outside [-1, 1]"),
        });
    }
    Ok(())
}
