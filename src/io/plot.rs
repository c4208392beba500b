//! Scatter plots written as PNG (no fonts: frames, faint axes through the origin, and points),
//! for the experiments' figures.

use crate::error::{Error, Result};
use crate::linalg::Mat;
use std::path::Path;

/// The square `[c_x ± half_width] × [c_y ± half_width]` a panel shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Centre (x, y).
    pub centre: (f64, f64),
    /// Half the side length.
    pub half_width: f64,
}

impl View {
    /// The square around the bounding box of the first two columns of every matrix, plus 5%.
    pub(crate) fn covering(panels: &[&Mat]) -> Self {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for m in panels {
            for i in 0..m.nrows() {
                for j in 0..2.min(m.ncols()) {
                    if m[(i, j)].is_finite() {
                        lo[j] = lo[j].min(m[(i, j)]);
                        hi[j] = hi[j].max(m[(i, j)]);
                    }
                }
            }
        }
        if !(lo[0].is_finite() && lo[1].is_finite()) {
            return Self {
                centre: (0.0, 0.0),
                half_width: 1.0,
            };
        }
        let span = (0..2).map(|j| hi[j] - lo[j]).fold(1e-9, f64::max);
        Self {
            centre: ((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0),
            half_width: 0.55 * span,
        }
    }
}

/// Writes one `size`×`size` panel per `(points, colour)` side by side into a PNG, all sharing
/// `view`: white background, grey frame and axes, a 3×3 dot per point inside the view (the first
/// two columns of `points`; non-finite rows are skipped).
pub(crate) fn scatter_panels_png(
    path: &Path,
    panels: &[(&Mat, [u8; 3])],
    view: View,
    size: u32,
) -> Result<()> {
    if let Some((m, _)) = panels.iter().find(|(m, _)| m.ncols() < 2) {
        return Err(Error::DimensionMismatch {
            what: "scatter points (columns)".into(),
            expected: 2,
            got: m.ncols(),
        });
    }
    if panels.is_empty() || !(view.half_width.is_finite() && view.half_width > 0.0) || size < 16 {
        return Err(Error::InvalidArgument {
            what: "plot".into(),
            reason: format!(
                "needs ≥ 1 panel, half_width > 0 and size ≥ 16, got {} panels, {} and {size}",
                panels.len(),
                view.half_width
            ),
        });
    }
    let count = panels.len() as u32;
    let mut img = image::RgbImage::from_pixel(size * count, size, image::Rgb([255, 255, 255]));
    let last = size - 1;
    let to_px = |v: f64, c: f64| ((v - c) / view.half_width * 0.5 + 0.5) * f64::from(last);
    for (k, (points, colour)) in panels.iter().enumerate() {
        let x0 = k as u32 * size;
        let grey = image::Rgb([200, 200, 200]);
        for i in 0..size {
            for (x, y) in [(i, 0), (i, last), (0, i), (last, i)] {
                img.put_pixel(x0 + x, y, grey);
            }
        }
        let (ax, ay) = (
            to_px(0.0, view.centre.0),
            f64::from(last) - to_px(0.0, view.centre.1),
        );
        for i in 1..last {
            if (1.0..f64::from(last)).contains(&ax) {
                img.put_pixel(x0 + ax as u32, i, image::Rgb([235, 235, 235]));
            }
            if (1.0..f64::from(last)).contains(&ay) {
                img.put_pixel(x0 + i, ay as u32, image::Rgb([235, 235, 235]));
            }
        }
        for r in 0..points.nrows() {
            let px = to_px(points[(r, 0)], view.centre.0);
            let py = f64::from(last) - to_px(points[(r, 1)], view.centre.1);
            if !(px.is_finite() && py.is_finite()) {
                continue;
            }
            for dx in -1i64..=1 {
                for dy in -1i64..=1 {
                    let (x, y) = (px as i64 + dx, py as i64 + dy);
                    if x >= 0 && y >= 0 && x <= i64::from(last) && y <= i64::from(last) {
                        img.put_pixel(x0 + x as u32, y as u32, image::Rgb(*colour));
                    }
                }
            }
        }
    }
    img.save(path).map_err(|e| Error::file(path, e))
}

/// One panel: [`scatter_panels_png`] with a single point cloud.
pub(crate) fn scatter_png(
    path: &Path,
    points: &Mat,
    view: View,
    size: u32,
    colour: [u8; 3],
) -> Result<()> {
    scatter_panels_png(path, &[(points, colour)], view, size)
}

/// Colours of the two overlaid histograms of [`histogram_panels_png`]: blue, orange.
pub const HISTOGRAM_COLOURS: [[u8; 3]; 2] = [[31, 119, 180], [255, 127, 14]];

/// A grid of `size`×`size` panels (row r, column c = `panels[r][c]`), each overlaying the
/// histograms of its two value sets on `range` with `bins` bins, drawn as outlined bars
/// ([`HISTOGRAM_COLOURS`]), each scaled to its own tallest bin; values outside `range` or
/// non-finite are not counted. No text: the numbers belong in the run's JSON.
pub fn histogram_panels_png(
    path: &Path,
    panels: &[Vec<[&[f64]; 2]>],
    range: (f64, f64),
    bins: usize,
    size: u32,
) -> Result<()> {
    let columns = panels.iter().map(Vec::len).max().unwrap_or(0) as u32;
    if panels.is_empty()
        || columns == 0
        || bins == 0
        || size < 16
        || !range.0.is_finite()
        || !range.1.is_finite()
        || range.1 <= range.0
    {
        return Err(Error::InvalidArgument {
            what: "histogram plot".into(),
            reason: format!(
                "needs ≥ 1 panel, ≥ 1 bin, size ≥ 16 and lo < hi, got {} rows, {bins} bins, \
                 size {size}, range {range:?}",
                panels.len()
            ),
        });
    }
    let rows = panels.len() as u32;
    let mut img =
        image::RgbImage::from_pixel(size * columns, size * rows, image::Rgb([255, 255, 255]));
    let last = size - 1;
    for (r, row) in panels.iter().enumerate() {
        for (c, pair) in row.iter().enumerate() {
            let (x0, y0) = (c as u32 * size, r as u32 * size);
            for i in 0..size {
                for (x, y) in [(i, 0), (i, last), (0, i), (last, i)] {
                    img.put_pixel(x0 + x, y0 + y, image::Rgb([200, 200, 200]));
                }
            }
            for (values, colour) in pair.iter().zip(HISTOGRAM_COLOURS) {
                let mut counts = vec![0usize; bins];
                for &v in values.iter() {
                    if v.is_finite() && v >= range.0 && v <= range.1 {
                        let b = ((v - range.0) / (range.1 - range.0) * bins as f64) as usize;
                        counts[b.min(bins - 1)] += 1;
                    }
                }
                let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
                let inner = f64::from(size - 4);
                for (b, &count) in counts.iter().enumerate() {
                    if count == 0 {
                        continue;
                    }
                    let left = 2 + (b as f64 * inner / bins as f64) as u32;
                    let right = (2 + ((b + 1) as f64 * inner / bins as f64) as u32).max(left + 1);
                    let height = (count as f64 / top * (inner - 2.0)).max(1.0) as u32;
                    let bottom = last - 2;
                    for x in left..right.min(last - 1) {
                        for y in (bottom - height)..=bottom {
                            let edge = x == left || x + 1 == right || y == bottom - height;
                            if edge {
                                img.put_pixel(x0 + x, y0 + y, image::Rgb(colour));
                            }
                        }
                    }
                }
            }
        }
    }
    img.save(path).map_err(|e| Error::file(path, e))
}
