//! Scatter plots and histogram grids written as PNG for the experiments' figures: frames, faint
//! axes through the origin, points or bars, and their text — title, axis labels with the axis
//! ranges, panel (column) and row labels, and a legend ([`Labels`], drawn by [`super::text`]).
//! The numbers themselves belong in each run's JSON.

use super::text;
use crate::error::{Error, Result};
use crate::linalg::Mat;
use image::{Rgb, RgbImage};
use std::path::Path;

/// The text of a figure: what a reader needs to read it without the JSON beside it. Empty
/// fields take no room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    /// Above the figure (scale 2).
    pub title: String,
    /// Under the x axes, after their ranges.
    pub x_axis: String,
    /// Beside the y axes, read bottom to top.
    pub y_axis: String,
    /// One label above each column of panels (or of images, in a grid).
    pub columns: Vec<String>,
    /// One label left of each row of panels (or of images).
    pub rows: Vec<String>,
    /// Each series' name and colour, under the figure.
    pub legend: Vec<(String, [u8; 3])>,
}

/// The panels a figure's content holds, in content pixels `(left, top, width, height)`, and
/// the data ranges of their axes (written at the ends of the bottom row's x axes and of the
/// first column's y axes).
pub struct Layout {
    /// Panel rectangles, row by row.
    pub panels: Vec<(u32, u32, u32, u32)>,
    /// `(lo, hi)` of the x axes.
    pub x_range: Option<(f64, f64)>,
    /// `(lo, hi)` of the y axes.
    pub y_range: Option<(f64, f64)>,
}

const PAD: u32 = 4;
const LINE: u32 = text::GLYPH + 4;

/// `content` framed by `labels`: the title on top, column labels over the top row's panels, row
/// labels and the y range left of the first column, the x range, the x-axis label and the
/// legend underneath, and the y-axis label turned along the left edge.
pub fn decorate(content: &RgbImage, labels: &Labels, layout: &Layout) -> RgbImage {
    let numbers = |r: Option<(f64, f64)>| r.map(|(a, b)| (text::number(a), text::number(b)));
    let (x_numbers, y_numbers) = (numbers(layout.x_range), numbers(layout.y_range));
    let columns_h = if labels.columns.is_empty() { 0 } else { LINE };
    let y_axis_w = if labels.y_axis.is_empty() { 0 } else { LINE };
    let rows_w = labels
        .rows
        .iter()
        .map(|r| text::width(r, 1) + PAD)
        .max()
        .unwrap_or(0);
    let y_numbers_w = y_numbers
        .as_ref()
        .map_or(0, |(a, b)| text::width(a, 1).max(text::width(b, 1)) + PAD);
    let legend_h = if labels.legend.is_empty() { 0 } else { LINE };
    let below = [x_numbers.is_some(), !labels.x_axis.is_empty()]
        .iter()
        .filter(|&&b| b)
        .count() as u32
        * LINE
        + legend_h;
    let left = PAD + y_axis_w + rows_w + y_numbers_w;
    // the title at scale 2 where it fits over the content, at scale 1 otherwise
    let title_scale = if text::width(&labels.title, 2) <= left + content.width() {
        2
    } else {
        1
    };
    let title_h = if labels.title.is_empty() {
        0
    } else {
        title_scale * text::GLYPH + PAD
    };
    let top = PAD + title_h + columns_h;
    let legend_w: u32 = labels
        .legend
        .iter()
        .map(|(name, _)| text::GLYPH + 4 + text::width(name, 1) + 16)
        .sum();
    let width = (left + content.width() + PAD)
        .max(PAD + text::width(&labels.title, title_scale) + PAD)
        .max(left + legend_w + PAD)
        .max(left + text::width(&labels.x_axis, 1) + PAD);
    let height = top + content.height() + below + PAD;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    image::imageops::replace(&mut img, content, i64::from(left), i64::from(top));
    let (l, t) = (i64::from(left), i64::from(top));
    let content_w = i64::from(content.width());
    let centre = l + content_w / 2;
    text::draw_centred(
        &mut img,
        centre.max(i64::from(width) / 2),
        i64::from(PAD),
        &labels.title,
        text::INK,
        title_scale,
    );
    let first_top = layout.panels.iter().map(|p| p.1).min().unwrap_or(0);
    let top_row: Vec<_> = layout.panels.iter().filter(|p| p.1 == first_top).collect();
    for (label, p) in labels.columns.iter().zip(&top_row) {
        let cx = l + i64::from(p.0 + p.2 / 2);
        text::draw_centred(&mut img, cx, t - i64::from(LINE) + 2, label, text::INK, 1);
    }
    let first_left = layout.panels.iter().map(|p| p.0).min().unwrap_or(0);
    let first_column: Vec<_> = layout.panels.iter().filter(|p| p.0 == first_left).collect();
    let rows_x = i64::from(PAD + y_axis_w);
    for (label, p) in labels.rows.iter().zip(&first_column) {
        let cy = t + i64::from(p.1 + p.3 / 2) - i64::from(text::GLYPH / 2);
        text::draw(&mut img, rows_x, cy, label, text::INK, 1);
    }
    if let Some((lo, hi)) = &y_numbers {
        for p in &first_column {
            let right = l - i64::from(PAD / 2);
            let top_y = t + i64::from(p.1);
            let bottom_y = t + i64::from(p.1 + p.3) - i64::from(text::GLYPH);
            text::draw(
                &mut img,
                right - i64::from(text::width(hi, 1)),
                top_y,
                hi,
                text::INK,
                1,
            );
            text::draw(
                &mut img,
                right - i64::from(text::width(lo, 1)),
                bottom_y,
                lo,
                text::INK,
                1,
            );
        }
    }
    let mut y = t + i64::from(content.height()) + 2;
    if let Some((lo, hi)) = &x_numbers {
        let last_top = layout.panels.iter().map(|p| p.1).max().unwrap_or(0);
        for p in layout.panels.iter().filter(|p| p.1 == last_top) {
            let (x0, x1) = (l + i64::from(p.0), l + i64::from(p.0 + p.2));
            text::draw(&mut img, x0, y, lo, text::INK, 1);
            text::draw(
                &mut img,
                x1 - i64::from(text::width(hi, 1)),
                y,
                hi,
                text::INK,
                1,
            );
        }
        y += i64::from(LINE);
    }
    if !labels.x_axis.is_empty() {
        text::draw_centred(&mut img, centre, y, &labels.x_axis, text::INK, 1);
        y += i64::from(LINE);
    }
    let mut x = l;
    for (name, colour) in &labels.legend {
        for dy in 0..text::GLYPH {
            for dx in 0..text::GLYPH {
                let (px, py) = (x + i64::from(dx), y + i64::from(dy));
                if px < i64::from(width) && py < i64::from(height) {
                    img.put_pixel(px as u32, py as u32, Rgb(*colour));
                }
            }
        }
        text::draw(
            &mut img,
            x + i64::from(text::GLYPH + 4),
            y,
            name,
            text::INK,
            1,
        );
        x += i64::from(text::GLYPH + 4 + text::width(name, 1) + 16);
    }
    if !labels.y_axis.is_empty() {
        text::draw_vertical(
            &mut img,
            i64::from(PAD),
            t + i64::from(content.height()) / 2,
            &labels.y_axis,
            text::INK,
            1,
        );
    }
    img
}

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
/// two columns of `points`; non-finite rows are skipped), framed by `labels` with the view's
/// ranges on the axes ([`decorate`]).
pub(crate) fn scatter_panels_png(
    path: &Path,
    panels: &[(&Mat, [u8; 3])],
    view: View,
    size: u32,
    labels: &Labels,
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
    let gap = 12;
    let mut img =
        RgbImage::from_pixel(size * count + gap * (count - 1), size, Rgb([255, 255, 255]));
    let last = size - 1;
    let to_px = |v: f64, c: f64| ((v - c) / view.half_width * 0.5 + 0.5) * f64::from(last);
    for (k, (points, colour)) in panels.iter().enumerate() {
        let x0 = k as u32 * (size + gap);
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
    let layout = Layout {
        panels: (0..count)
            .map(|k| (k * (size + gap), 0, size, size))
            .collect(),
        x_range: Some((
            view.centre.0 - view.half_width,
            view.centre.0 + view.half_width,
        )),
        y_range: Some((
            view.centre.1 - view.half_width,
            view.centre.1 + view.half_width,
        )),
    };
    decorate(&img, labels, &layout)
        .save(path)
        .map_err(|e| Error::file(path, e))
}

/// One panel: [`scatter_panels_png`] with a single point cloud.
pub(crate) fn scatter_png(
    path: &Path,
    points: &Mat,
    view: View,
    size: u32,
    colour: [u8; 3],
    labels: &Labels,
) -> Result<()> {
    scatter_panels_png(path, &[(points, colour)], view, size, labels)
}

/// Colours of the two overlaid histograms of [`histogram_panels_png`]: blue, orange.
pub const HISTOGRAM_COLOURS: [[u8; 3]; 2] = [[31, 119, 180], [255, 127, 14]];

/// A grid of `size`×`size` panels (row r, column c = `panels[r][c]`), each overlaying the
/// histograms of its two value sets on `range` with `bins` bins, drawn as outlined bars
/// ([`HISTOGRAM_COLOURS`]), each scaled to its own tallest bin; values outside `range` or
/// non-finite are not counted. Framed by `labels`, with `range` on the x axes ([`decorate`]).
pub fn histogram_panels_png(
    path: &Path,
    panels: &[Vec<[&[f64]; 2]>],
    range: (f64, f64),
    bins: usize,
    size: u32,
    labels: &Labels,
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
    let gap = 8;
    let pitch = size + gap;
    let mut img = RgbImage::from_pixel(
        pitch * columns - gap,
        pitch * rows - gap,
        Rgb([255, 255, 255]),
    );
    let last = size - 1;
    let mut rectangles = Vec::new();
    for (r, row) in panels.iter().enumerate() {
        for (c, pair) in row.iter().enumerate() {
            let (x0, y0) = (c as u32 * pitch, r as u32 * pitch);
            rectangles.push((x0, y0, size, size));
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
    let layout = Layout {
        panels: rectangles,
        x_range: Some(range),
        y_range: None,
    };
    decorate(&img, labels, &layout)
        .save(path)
        .map_err(|e| Error::file(path, e))
}
