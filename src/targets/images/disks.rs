//! The disk manifold of Kadkhodaie et al. (ICLR 2024, §4 and Fig. 5): "disk images with varying
//! positions, sizes, and foreground/background intensities", a five-dimensional curved manifold.
//!
//! A disk with centre `(c_x, c_y)` and radius `r` (in pixels), foreground grey level `f` and
//! background grey level `b` is, at the centre `p = (j + ½, i + ½)` of pixel (row `i`,
//! column `j`) and in every one of the 3 channels,
//!
//! `x(p) = b + (f − b) · ½(1 + erf((r − ‖p − c‖) / w))`,  edge width `w = `[`EDGE_WIDTH`]` = 1`
//! pixel.
//!
//! The soft edge makes `x` a smooth function of `(c_x, c_y, r, f, b)` (a hard edge would have a
//! zero derivative in `c` and `r` at almost every pixel), except that `‖p − c‖` has a cone point
//! when `c` sits exactly on a pixel centre, a measure-zero set where the kink is weighted by
//! `erf'(r/w) ∝ e^{−r²/w²}`. Values lie between `b` and `f`, hence in `[−0.9, 0.9]`.
//!
//! Parameters are drawn independently: `c_x, c_y ~ U[0.3, 0.7]·N`, `r ~ U[0.1, 0.25]·N`,
//! `f, b ~ U[−0.9, 0.9]`; the whole disk then lies inside `[0.05, 0.95]·N`.

use super::image_rng;

/// The width `w` of the erf edge, in pixels.
pub const EDGE_WIDTH: f64 = 1.0;

/// Key offset of the disk source's Philox streams (ASCII `"DISKS"`), see [`super::image_rng`].
const DISKS_DOMAIN: u64 = 0x4449_534B_5300_0000;

/// The five coordinates of a point of the disk manifold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskParams {
    /// Centre column `c_x` in pixels (pixel `j` spans `[j, j + 1)`).
    pub centre_x: f64,
    /// Centre row `c_y` in pixels, downwards (pixel `i` spans `[i, i + 1)`).
    pub centre_y: f64,
    /// Radius `r` in pixels.
    pub radius: f64,
    /// Grey level `f` inside the disk.
    pub foreground: f64,
    /// Grey level `b` outside the disk.
    pub background: f64,
}

impl DiskParams {
    /// `[c_x, c_y, r, f, b]`.
    pub fn to_array(&self) -> [f64; 5] {
        [
            self.centre_x,
            self.centre_y,
            self.radius,
            self.foreground,
            self.background,
        ]
    }

    /// The inverse of [`to_array`](DiskParams::to_array).
    pub fn from_array([centre_x, centre_y, radius, foreground, background]: [f64; 5]) -> Self {
        Self {
            centre_x,
            centre_y,
            radius,
            foreground,
            background,
        }
    }
}

/// The parameters of disk `index` of seed `seed` at side `size`: five uniforms read in the order
/// `c_x, c_y, r, f, b` from the image's own Philox stream (independent of how many disks are
/// drawn).
pub fn disk_params(seed: u64, index: u32, size: usize) -> DiskParams {
    let mut rng = image_rng(DISKS_DOMAIN, seed, index);
    let n = size as f64;
    let mut uniform = |low: f64, high: f64| low + (high - low) * rng.uniform();
    DiskParams {
        centre_x: n * uniform(0.3, 0.7),
        centre_y: n * uniform(0.3, 0.7),
        radius: n * uniform(0.1, 0.25),
        foreground: uniform(-0.9, 0.9),
        background: uniform(-0.9, 0.9),
    }
}

/// The disk image `x(p) = b + (f − b)·½(1 + erf((r − ‖p − c‖)/w))` (3 × size × size, CHW, the
/// same grey level in the 3 channels). Non-finite parameters give non-finite pixels.
pub fn disk_image(params: &DiskParams, size: usize) -> Vec<f64> {
    let grey: Vec<f64> = (0..size * size)
        .map(|pixel| {
            let (row, col) = (pixel / size, pixel % size);
            let distance =
                (col as f64 + 0.5 - params.centre_x).hypot(row as f64 + 0.5 - params.centre_y);
            let inside = 0.5 * (1.0 + libm::erf((params.radius - distance) / EDGE_WIDTH));
            params.background + (params.foreground - params.background) * inside
        })
        .collect();
    grey.repeat(3)
}
