//! Image grids written as PNG, laid out like the papers' sample figures: one row per
//! configuration (a denoiser, a noise level), one column per initial noise.

use crate::error::{Error, Result};
use crate::io::plot::{decorate, Labels, Layout};
use crate::linalg::Mat;
use std::fmt;
use std::path::Path;

/// The shape `C × H × W` of one image; its flattened length is [`dim`](ImageShape::dim)` = C·H·W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    /// Number of colour channels `C` (3 for RGB, 1 for grey).
    pub channels: usize,
    /// Number of rows `H`.
    pub height: usize,
    /// Number of columns `W`.
    pub width: usize,
}

impl ImageShape {
    /// An RGB square: `3 × size × size`, the shape of every generated and CelebA image.
    pub fn rgb_square(size: usize) -> Self {
        Self {
            channels: 3,
            height: size,
            width: size,
        }
    }

    /// The flattened length `C·H·W`.
    pub fn dim(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The flat CHW index `(c·H + i)·W + j` of channel `c`, row `i`, column `j`.
    pub fn index(&self, channel: usize, row: usize, col: usize) -> usize {
        (channel * self.height + row) * self.width + col
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// Width in pixels of the white gutters around and between the images.
pub const GUTTER: u32 = 2;

/// The grey level `round((v + 1)·127.5)` of a value `v ∈ [−1, 1]` (clamped first).
pub fn to_byte(value: f64) -> u8 {
    ((value.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Writes a PNG grid: grid row `r` shows the images of `rows[r]` (one flattened CHW image of
/// `shape` per matrix row, values in `[−1, 1]`, clamped) side by side, each pixel drawn as a
/// `scale × scale` block (nearest neighbour), with [`GUTTER`]-pixel white gutters around and
/// between them. Rows may hold different numbers of images; the short ones end in white.
///
/// The PNG is `G + m·(W·scale + G)` wide and `G + R·(H·scale + G)` high, with `G` = [`GUTTER`],
/// `m` the longest row and `R = rows.len()`. A 1-channel shape is drawn grey, a 3-channel one as
/// RGB. Errors: another channel count, a matrix whose width is not `shape.dim()` (naming the
/// grid row), a non-finite value (naming row and index), `scale = 0`, no image at all, or a
/// picture too large for PNG's `u32` sides.
///
/// With non-empty `labels` the grid is framed by them ([`crate::io::plot::decorate`]): the
/// title above, `labels.columns` over the image columns, `labels.rows` left of the grid rows;
/// with `Labels::default()` the PNG is the grid alone, of the size above.
pub fn write_grid(
    path: &Path,
    shape: ImageShape,
    rows: &[&Mat],
    scale: u32,
    labels: &Labels,
) -> Result<()> {
    if shape.channels != 1 && shape.channels != 3 {
        return Err(Error::InvalidArgument {
            what: "grid image channels".into(),
            reason: format!("need 1 (grey) or 3 (RGB), got {}", shape.channels),
        });
    }
    for (r, m) in rows.iter().enumerate() {
        if m.ncols() != shape.dim() {
            return Err(Error::DimensionMismatch {
                what: format!("image length in grid row {r} (shape {shape})").into(),
                expected: shape.dim(),
                got: m.ncols(),
            });
        }
        crate::linalg::ensure_finite_mat(&format!("grid row {r}"), m)?;
    }
    let longest = rows.iter().map(|m| m.nrows()).max().unwrap_or(0);
    if scale == 0 || longest == 0 {
        return Err(Error::InvalidArgument {
            what: "image grid".into(),
            reason: format!(
                "need scale ≥ 1 and at least one image, got scale = {scale}, {} rows holding {longest} images at most",
                rows.len()
            ),
        });
    }
    let too_large = || Error::InvalidArgument {
        what: "image grid".into(),
        reason: format!(
            "{} rows × {longest} images of {shape} at scale {scale} exceed u32 pixel sides",
            rows.len()
        ),
    };
    let cell = |side: usize| {
        u32::try_from(side)
            .ok()
            .and_then(|s| s.checked_mul(scale))
            .ok_or_else(too_large)
    };
    let (cell_width, cell_height) = (cell(shape.width)?, cell(shape.height)?);
    let extent = |count: usize, cell: u32| {
        u32::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(cell + GUTTER))
            .and_then(|s| s.checked_add(GUTTER))
            .ok_or_else(too_large)
    };
    let (width, height) = (
        extent(longest, cell_width)?,
        extent(rows.len(), cell_height)?,
    );
    let mut picture = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let plane = shape.height * shape.width;
    for (r, m) in rows.iter().enumerate() {
        let top = GUTTER + r as u32 * (cell_height + GUTTER);
        for n in 0..m.nrows() {
            let left = GUTTER + n as u32 * (cell_width + GUTTER);
            for (y, x) in (0..cell_height).flat_map(|y| (0..cell_width).map(move |x| (y, x))) {
                let pixel = (y / scale) as usize * shape.width + (x / scale) as usize;
                let colour = if shape.channels == 1 {
                    [to_byte(m[(n, pixel)]); 3]
                } else {
                    std::array::from_fn(|c| to_byte(m[(n, c * plane + pixel)]))
                };
                picture.put_pixel(left + x, top + y, image::Rgb(colour));
            }
        }
    }
    if *labels != Labels::default() {
        let cells = rows
            .iter()
            .enumerate()
            .flat_map(|(r, m)| {
                (0..m.nrows()).map(move |n| {
                    (
                        GUTTER + n as u32 * (cell_width + GUTTER),
                        GUTTER + r as u32 * (cell_height + GUTTER),
                        cell_width,
                        cell_height,
                    )
                })
            })
            .collect();
        let layout = Layout {
            panels: cells,
            x_range: None,
            y_range: None,
        };
        picture = decorate(&picture, labels, &layout);
    }
    picture
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::file(path, e))
}
