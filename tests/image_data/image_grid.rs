//! The PNG image grid's size, gutters and colours.

use super::scratch_dir;
use diffusion_theorems::error::Error;
use diffusion_theorems::io::grid;
use diffusion_theorems::io::plot::Labels;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::targets::images::ImageShape;

#[test]
fn image_grid_has_the_documented_size_gutters_and_colours() {
    let dir = scratch_dir("grid");
    let shape = ImageShape {
        channels: 3,
        height: 4,
        width: 5,
    };
    let plane = shape.height * shape.width;
    // Row 0: a red image, a grey ramp, a clamped white image. Row 1: one blue image.
    let row0 = Mat::from_fn(3, shape.dim(), |n, k| match n {
        0 => {
            if k < plane {
                1.0
            } else {
                -1.0
            }
        }
        1 => (k % plane) as f64 / (plane - 1) as f64 * 2.0 - 1.0,
        _ => 3.0,
    });
    let row1 = Mat::from_fn(
        1,
        shape.dim(),
        |_, k| if k >= 2 * plane { 1.0 } else { -1.0 },
    );
    let path = dir.join("grid.png");
    let scale = 2;
    grid::write_grid(&path, shape, &[&row0, &row1], scale, &Labels::default()).unwrap();
    let picture = image::open(&path).unwrap().to_rgb8();
    let g = grid::GUTTER;
    let (cell_w, cell_h) = (5 * scale, 4 * scale);
    assert_eq!(
        picture.dimensions(),
        (g + 3 * (cell_w + g), g + 2 * (cell_h + g))
    );
    let at = |x: u32, y: u32| picture.get_pixel(x, y).0;
    let white = [255, 255, 255];
    for (x, y) in [
        (0, 0),
        (1, 5),
        (g + cell_w, g),
        (g + cell_w + 1, g + 3),
        (5, g + cell_h),
    ] {
        assert_eq!(at(x, y), white, "gutter at ({x}, {y})");
    }
    assert_eq!(at(g, g), [255, 0, 0]);
    assert_eq!(at(g + cell_w - 1, g + cell_h - 1), [255, 0, 0]);
    // Grey ramp, nearest-neighbour upscaling: image pixel (i, j) fills a scale × scale block.
    let left = g + (cell_w + g);
    for i in 0..4u32 {
        for j in 0..5u32 {
            let v = (i * 5 + j) as f64 / (plane - 1) as f64 * 2.0 - 1.0;
            let byte = grid::to_byte(v);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                assert_eq!(at(left + scale * j + dx, g + scale * i + dy), [byte; 3]);
            }
        }
    }
    assert_eq!(at(g + 2 * (cell_w + g), g), white); // 3.0 clamped to white
    let top = g + cell_h + g;
    assert_eq!(at(g, top), [0, 0, 255]);
    // The short row ends in white.
    assert_eq!(at(g + (cell_w + g) + 3, top + 3), white);
    assert_eq!(grid::to_byte(-1.0), 0);
    assert_eq!(grid::to_byte(0.0), 128);

    let narrow = Mat::zeros(1, shape.dim() - 1);
    let err = grid::write_grid(&path, shape, &[&row0, &narrow], 1, &Labels::default()).unwrap_err();
    assert!(err.to_string().contains("grid row 1"), "{err}");
    let two_channels = ImageShape {
        channels: 2,
        ..shape
    };
    assert!(grid::write_grid(&path, two_channels, &[&row0], 1, &Labels::default()).is_err());
    assert!(grid::write_grid(&path, shape, &[&row0], 0, &Labels::default()).is_err());
    let mut bad = row1.clone();
    bad[(0, 3)] = f64::NAN;
    let err = grid::write_grid(&path, shape, &[&bad], 1, &Labels::default()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 3, .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With labels the grid is framed: the same picture, shifted right and down by the margins the
/// title, the row labels and the column labels take, with ink in those margins; the unlabelled
/// grid keeps its documented size.
#[test]
fn labelled_grid_frames_the_same_picture_with_its_labels() {
    let dir = scratch_dir("grid-labelled");
    let shape = ImageShape {
        channels: 3,
        height: 4,
        width: 5,
    };
    let ramp = Mat::from_fn(2, shape.dim(), |n, k| ((k + 7 * n) % 11) as f64 / 5.0 - 1.0);
    let (plain_path, labelled_path) = (dir.join("plain.png"), dir.join("labelled.png"));
    grid::write_grid(&plain_path, shape, &[&ramp, &ramp], 3, &Labels::default()).unwrap();
    let labels = Labels {
        title: "Fig. T".into(),
        rows: vec!["model a".into(), "model b".into()],
        columns: vec!["1".into(), "2".into()],
        ..Labels::default()
    };
    grid::write_grid(&labelled_path, shape, &[&ramp, &ramp], 3, &labels).unwrap();
    let plain = image::open(&plain_path).unwrap().to_rgb8();
    let labelled = image::open(&labelled_path).unwrap().to_rgb8();
    let (w, h) = plain.dimensions();
    let (lw, lh) = labelled.dimensions();
    assert!(lw > w && lh > h, "{:?} vs {:?}", (lw, lh), (w, h));
    // find the offset at which the plain grid sits inside the labelled one
    let offset = (0..=lh - h)
        .flat_map(|y| (0..=lw - w).map(move |x| (x, y)))
        .find(|&(ox, oy)| {
            (0..h).step_by(3).all(|y| {
                (0..w)
                    .step_by(3)
                    .all(|x| plain.get_pixel(x, y) == labelled.get_pixel(ox + x, oy + y))
            })
        })
        .expect("the plain grid inside the labelled one");
    assert!(offset.0 > 0 && offset.1 > 0);
    let white = image::Rgb([255u8, 255, 255]);
    let inked = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| *labelled.get_pixel(x, y) != white)
            .count()
    };
    assert!(inked(0..lw, 0..offset.1) > 0, "title and column labels");
    assert!(inked(0..offset.0, offset.1..offset.1 + h) > 0, "row labels");
}
