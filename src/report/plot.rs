//! Scatter plots written as PNG (no fonts: a frame, faint axes through the origin, and points),
//! for the experiments' figures.

use crate::error::{Error, Result};
use crate::linalg::Mat;
use std::path::Path;

/// The square `[−half_width, half_width]²` a plot shows, centred at `centre`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Centre (x, y).
    pub centre: (f64, f64),
    /// Half the side length.
    pub half_width: f64,
}

/// Writes the first two columns of `points` as a `size`×`size` PNG scatter plot: white
/// background, grey frame and axes, one 3×3 dot of `colour` (RGB) per point inside the view.
pub fn scatter_png(
    path: &Path,
    points: &Mat,
    view: View,
    size: u32,
    colour: [u8; 3],
) -> Result<()> {
    if points.ncols() < 2 {
        return Err(Error::DimensionMismatch {
            what: "scatter points (columns)".into(),
            expected: 2,
            got: points.ncols(),
        });
    }
    if !(view.half_width.is_finite() && view.half_width > 0.0) || size < 16 {
        return Err(Error::InvalidArgument {
            what: "plot view".into(),
            reason: format!(
                "needs half_width > 0 and size ≥ 16, got {} and {size}",
                view.half_width
            ),
        });
    }
    let mut img = image::RgbImage::from_pixel(size, size, image::Rgb([255, 255, 255]));
    let last = size - 1;
    let to_px = |v: f64, c: f64| ((v - c) / view.half_width * 0.5 + 0.5) * f64::from(last);
    let grey = image::Rgb([200, 200, 200]);
    for i in 0..size {
        for (x, y) in [(i, 0), (i, last), (0, i), (last, i)] {
            img.put_pixel(x, y, grey);
        }
    }
    let (ax, ay) = (
        to_px(0.0, view.centre.0),
        f64::from(last) - to_px(0.0, view.centre.1),
    );
    for i in 0..size {
        if (0.0..=f64::from(last)).contains(&ax) {
            img.put_pixel(ax as u32, i, image::Rgb([235, 235, 235]));
        }
        if (0.0..=f64::from(last)).contains(&ay) {
            img.put_pixel(i, ay as u32, image::Rgb([235, 235, 235]));
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
                    img.put_pixel(x as u32, y as u32, image::Rgb(colour));
                }
            }
        }
    }
    img.save(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
