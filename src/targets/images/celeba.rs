//! A CelebA `img_align_celeba` folder (or any folder of photographs) as an [`ImageSet`].
//!
//! The images are the files whose extension is `jpg`, `jpeg` or `png` (any case), sorted by file
//! name; other files and sub-folders are ignored. Each is decoded (format sniffed from the
//! content), converted to 8-bit RGB, cropped to its largest central square (offsets
//! `⌊(W − s)/2⌋, ⌊(H − s)/2⌋`, `s = min(W, H)`; CelebA's 178 × 218 loses 20 rows at the top and
//! at the bottom), resized to `size × size` with a triangle (bilinear) filter, and scaled to
//! `[−1, 1]` by `v ↦ v/127.5 − 1`, stored CHW.
//!
//! The set is the first `N` *readable* images in name order. Decoding runs in parallel (rayon);
//! the order of the result is the name order regardless.

use super::{ImageSet, ImageShape, LoadOptions, LoadReport};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use image::imageops::{self, FilterType};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The file extensions read (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The image files of `dir` (extension in [`IMAGE_EXTENSIONS`], any case), sorted by file name.
/// A missing or unreadable folder is an [`Error::Io`] naming it.
pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io_error = |e: std::io::Error| Error::io(dir, e);
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let is_image = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            IMAGE_EXTENSIONS
                .iter()
                .any(|known| e.eq_ignore_ascii_case(known))
        });
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// One image file as a flattened `3 × size × size` CHW vector in `[−1, 1]`: decode, RGB8,
/// central square crop, triangle-filter resize, `v/127.5 − 1`. An unreadable or corrupt file is
/// an [`Error::Io`] naming it, with the decoder's reason.
pub(crate) fn read_image(path: &Path, size: u32) -> Result<Vec<f64>> {
    let io_error = |reason: String| Error::file(path, reason);
    let decoded = image::ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(|e| io_error(e.to_string()))?
        .decode()
        .map_err(|e| io_error(format!("cannot decode image: {e}")))?;
    let rgb = decoded.to_rgb8();
    let (width, height) = rgb.dimensions();
    let side = width.min(height);
    if side == 0 {
        return Err(io_error(format!(
            "image is {width}×{height}, nothing to crop"
        )));
    }
    let square = imageops::crop_imm(&rgb, (width - side) / 2, (height - side) / 2, side, side);
    let resized = imageops::resize(&*square, size, size, FilterType::Triangle);
    let plane = size as usize * size as usize;
    let mut chw = vec![0.0; 3 * plane];
    for (pixel, rgb) in resized.pixels().enumerate() {
        for (channel, &value) in rgb.0.iter().enumerate() {
            chw[channel * plane + pixel] = f64::from(value) / 127.5 - 1.0;
        }
    }
    Ok(chw)
}

/// The first `options.n` readable images of `dir` at `options.size`, in file-name order.
///
/// Errors (typed, naming the folder or file): the folder is missing or holds fewer than `n`
/// image files; a file cannot be decoded and `skip_bad` is off; with `skip_bad`, fewer than `n`
/// files are readable. With `skip_bad`, every file passed over is listed in the report.
pub(crate) fn load_folder(dir: &Path, options: &LoadOptions) -> Result<(ImageSet, LoadReport)> {
    let size = u32::try_from(options.size).map_err(|_| Error::InvalidArgument {
        what: "image size".into(),
        reason: format!("{} does not fit an image dimension (u32)", options.size),
    })?;
    let files = image_files(dir)?;
    let folder = || format!("image folder {}", dir.display());
    if files.len() < options.n {
        return Err(Error::InvalidArgument {
            what: folder().into(),
            reason: format!(
                "found {} image files (jpg/jpeg/png), fewer than n = {}",
                files.len(),
                options.n
            ),
        });
    }
    let mut images: Vec<(PathBuf, Vec<f64>)> = Vec::with_capacity(options.n);
    let mut report = LoadReport::default();
    let mut next = 0;
    // Decode exactly as many files as are still missing; a skipped file makes one more round.
    while images.len() < options.n {
        let batch = &files[next..(next + options.n - images.len()).min(files.len())];
        if batch.is_empty() {
            return Err(Error::InvalidArgument {
                what: folder().into(),
                reason: format!(
                    "only {} of the {} image files (jpg/jpeg/png) are readable ({} skipped), \
                     fewer than n = {}",
                    images.len(),
                    files.len(),
                    report.skipped.len(),
                    options.n
                ),
            });
        }
        next += batch.len();
        let decoded: Vec<Result<Vec<f64>>> = batch
            .par_iter()
            .map(|path| read_image(path, size))
            .collect();
        for (path, result) in batch.iter().zip(decoded) {
            match result {
                Ok(pixels) => images.push((path.clone(), pixels)),
                Err(error) if options.skip_bad => {
                    let reason = match error {
                        Error::Io { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    report.skipped.push((path.clone(), reason));
                }
                Err(error) => return Err(error),
            }
        }
    }
    let shape = ImageShape::rgb_square(options.size);
    let matrix = Mat::from_fn(images.len(), shape.dim(), |i, k| images[i].1[k]);
    let names = images
        .iter()
        .map(|(path, _)| {
            path.file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
        })
        .collect();
    Ok((ImageSet::new(shape, matrix, names)?, report))
}
