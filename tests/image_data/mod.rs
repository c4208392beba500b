//! The image data sets (`targets::images`), the `.npy` reader/writer (`report::npy`) and the PNG
//! image grid (`io::grid`).
//!
//! Regularity of the generated `C^α` images is checked on their construction (the power spectrum
//! of the background and of the contour decays like `|ω|^{−2α}`, with a `z·SE` bound at
//! false-failure probability 10⁻⁶); the disk manifold is checked to be five-dimensional twice
//! (Jacobian rank with a finite-difference error bound, and local PCA); the loaders are checked
//! on files written here with known content.

mod calpha_images;
mod celeba;
mod disk_images;
mod image_grid;
mod npy_files;
mod sources;

use diffusion_theorems::targets::images::LoadOptions;
use std::path::PathBuf;

/// Per-check false-failure probability of the statistical checks.
const FALSE_FAILURE: f64 = 1e-6;

/// A fresh, empty scratch folder for one test.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-image-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(n: usize, size: usize) -> LoadOptions {
    LoadOptions {
        n,
        size,
        ..LoadOptions::default()
    }
}
