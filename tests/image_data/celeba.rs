//! The CelebA folder loader: crop, resize and scale, corrupt files, missing folders.

use super::{options, scratch_dir};
use diffusion_theorems::error::Error;
use diffusion_theorems::targets::images::{load, DataSource, ImageSet, ImageShape, LoadOptions};
use std::path::PathBuf;

/// 178 × 218 (CelebA's aligned size), green bands in the 20 rows the central crop removes at the
/// top and at the bottom, red left half (columns < 89), blue right half.
fn split_image() -> image::RgbImage {
    image::RgbImage::from_fn(178, 218, |x, y| {
        if !(20..198).contains(&y) {
            image::Rgb([0, 255, 0])
        } else if x < 89 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    })
}

/// A folder with, in name order: a constant PNG, the split PNG, a constant grey JPEG with an
/// upper-case extension, a gradient `.jpeg`; plus files that are not images: a text file and a
/// sub-folder named like a PNG.
fn celeba_folder(test: &str) -> PathBuf {
    let dir = scratch_dir(test);
    image::RgbImage::from_pixel(178, 218, image::Rgb([200, 100, 50]))
        .save(dir.join("a_const.png"))
        .unwrap();
    split_image().save(dir.join("b_split.png")).unwrap();
    let grey = image::RgbImage::from_pixel(178, 218, image::Rgb([100, 100, 100]));
    let mut jpeg = vec![];
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(&grey)
        .unwrap();
    std::fs::write(dir.join("c_grey.JPG"), jpeg).unwrap();
    image::RgbImage::from_fn(178, 218, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save_with_format(dir.join("d_ramp.jpeg"), image::ImageFormat::Jpeg)
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    std::fs::create_dir(dir.join("e_folder.png")).unwrap();
    dir
}

fn channel_values(set: &ImageSet, image: usize, channel: usize) -> Vec<f64> {
    let plane = set.shape.height * set.shape.width;
    (0..plane)
        .map(|k| set.images[(image, channel * plane + k)])
        .collect()
}

#[test]
fn celeba_folder_is_cropped_resized_and_scaled_in_name_order() {
    let dir = celeba_folder("order");
    let size = 16;
    let (set, report) = load(&DataSource::CelebA { dir: dir.clone() }, &options(4, size)).unwrap();
    assert!(report.skipped.is_empty());
    assert_eq!(
        set.names,
        ["a_const.png", "b_split.png", "c_grey.JPG", "d_ramp.jpeg"]
    );
    assert_eq!(set.shape, ImageShape::rgb_square(size));

    // A constant image stays exactly constant through crop and resize: v/127.5 − 1.
    for (channel, v) in [200.0, 100.0, 50.0].into_iter().enumerate() {
        let expected = v / 127.5 - 1.0;
        assert!(channel_values(&set, 0, channel)
            .iter()
            .all(|&x| x == expected));
    }

    // The split image: the crop removes both green bands (G = 0 everywhere), and output column
    // j is a pure colour when the triangle filter's support around its centre
    // c = (j + ½)·178/16 — input pixel centres within ±178/16 — lies in one half (left: pixel
    // centres ≤ 88.5; right: ≥ 89.5); the columns in between mix red and blue.
    let ratio = 178.0 / size as f64;
    let (red, green, blue) = (
        channel_values(&set, 1, 0),
        channel_values(&set, 1, 1),
        channel_values(&set, 1, 2),
    );
    assert!(green.iter().all(|&g| g == -1.0), "green band leaked");
    let (mut pure_left, mut pure_right) = (0, 0);
    for col in 0..size {
        let centre = (col as f64 + 0.5) * ratio;
        for row in 0..size {
            let (r, b) = (red[row * size + col], blue[row * size + col]);
            if centre + ratio <= 89.5 {
                assert_eq!((r, b), (1.0, -1.0), "column {col}");
            } else if centre - ratio >= 88.5 {
                assert_eq!((r, b), (-1.0, 1.0), "column {col}");
            } else {
                assert!(r > -1.0 && r < 1.0 && b > -1.0 && b < 1.0, "column {col}");
            }
        }
        pure_left += usize::from(centre + ratio <= 89.5);
        pure_right += usize::from(centre - ratio >= 88.5);
    }
    assert_eq!((pure_left, pure_right), (7, 7));

    // A constant grey JPEG block holds only its DC coefficient 8·(100 − 128) = −224, a multiple
    // of the quality-75 luminance DC step 8, and neutral chroma: it decodes to 100 up to the
    // decoder's colour-conversion rounding (one grey level).
    for channel in 0..3 {
        for x in channel_values(&set, 2, channel) {
            assert!(
                (x - (100.0 / 127.5 - 1.0)).abs() <= 1.0 / 127.5 + 1e-12,
                "{x}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn celeba_corrupt_file_is_fatal_or_skipped_by_name() {
    let dir = celeba_folder("corrupt");
    std::fs::write(dir.join("b_zz_corrupt.jpg"), b"\xff\xd8\xff garbage").unwrap();
    let source = DataSource::CelebA { dir: dir.clone() };
    let err = load(&source, &options(4, 8)).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("b_zz_corrupt.jpg")),
        "{err}"
    );

    let skipping = LoadOptions {
        skip_bad: true,
        ..options(4, 8)
    };
    let (set, report) = load(&source, &skipping).unwrap();
    assert_eq!(
        set.names,
        ["a_const.png", "b_split.png", "c_grey.JPG", "d_ramp.jpeg"]
    );
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].0.ends_with("b_zz_corrupt.jpg"));
    assert!(!report.skipped[0].1.is_empty());

    // Five image files, four readable: asking for five fails and says so.
    let err = load(
        &source,
        &LoadOptions {
            n: 5,
            ..skipping.clone()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&dir.display().to_string())
            && err.contains("only 4 of the 5 image files")
            && err.contains("1 skipped")
            && err.contains("n = 5"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn celeba_missing_folder_or_too_few_images_is_an_error_naming_the_folder() {
    let dir = celeba_folder("few");
    let err = load(&DataSource::CelebA { dir: dir.clone() }, &options(6, 8))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.display().to_string())
            && err.contains("n = 6")
            && err.contains("found 4 image files"),
        "{err}"
    );
    let missing = dir.join("no_such_folder");
    let err = load(
        &DataSource::CelebA {
            dir: missing.clone(),
        },
        &options(1, 8),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing.display().to_string()),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
