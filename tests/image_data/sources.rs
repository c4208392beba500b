//! Data sources: parsing and printing back, refusals of `load`, and `ImageSet` subsets.

use super::options;
use diffusion_theorems::error::Error;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::targets::images::{load, DataSource, ImageSet, ImageShape};

#[test]
fn data_sources_parse_and_print_back() {
    let cases = [
        ("calpha", DataSource::CAlpha { alpha: 2.0 }),
        ("calpha:0.75", DataSource::CAlpha { alpha: 0.75 }),
        ("disks", DataSource::Disks),
        (
            "celeba:/data/img_align_celeba",
            DataSource::CelebA {
                dir: "/data/img_align_celeba".into(),
            },
        ),
        (
            "npy:x:y.npy",
            DataSource::Npy {
                path: "x:y.npy".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        let parsed: DataSource = text.parse().unwrap();
        assert_eq!(parsed, expected, "{text}");
        let printed = parsed.to_string();
        assert_eq!(printed.parse::<DataSource>().unwrap(), parsed, "{printed}");
    }
    assert_eq!(DataSource::CAlpha { alpha: 2.0 }.to_string(), "calpha:2");
    for (bad, named) in [
        ("calpha:0", "got 0"),
        ("calpha:-2", "got -2"),
        ("calpha:nan", "got NaN"),
        ("calpha:two", "two"),
        ("mnist", "mnist"),
        ("disks:3", "disks:3"),
        ("celeba:", "celeba:"),
        ("npy:", "npy:"),
    ] {
        let err = bad.parse::<DataSource>().unwrap_err();
        assert!(err.to_string().contains(named), "{bad}: {err}");
    }
    let err = "mnist".parse::<DataSource>().unwrap_err().to_string();
    for form in [
        "calpha",
        "calpha:<alpha",
        "disks",
        "celeba:<dir>",
        "npy:<path>",
    ] {
        assert!(err.contains(form), "{err}");
    }
}

#[test]
fn load_refuses_zero_images_or_size() {
    for (n, size) in [(0, 16), (4, 0)] {
        let err = load(&DataSource::Disks, &options(n, size)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("n = {n}, size = {size}")),
            "{err}"
        );
    }
}

#[test]
fn image_set_subsets_and_validates() {
    let (set, _) = load(&DataSource::Disks, &options(5, 8)).unwrap();
    assert_eq!(set.len(), 5);
    assert!(!set.is_empty());
    let picked = set.rows(&[4, 1, 1]).unwrap();
    assert_eq!(picked.names, ["disks-0-4", "disks-0-1", "disks-0-1"]);
    assert_eq!(picked.images[(0, 7)], set.images[(4, 7)]);
    assert!(set.rows(&[5]).unwrap_err().to_string().contains('5'));
    assert!(set.subset(3..6).unwrap_err().to_string().contains("3..6"));
    assert!(set.subset(2..2).unwrap().is_empty());

    let shape = ImageShape {
        channels: 1,
        height: 2,
        width: 2,
    };
    let mut images = Mat::zeros(2, 4);
    images[(1, 2)] = 1.25;
    let err = ImageSet::new(shape, images.clone(), vec!["a".into(), "b".into()]).unwrap_err();
    assert!(
        err.to_string().contains("1.25") && err.to_string().contains("index 6"),
        "{err}"
    );
    images[(1, 2)] = f64::NAN;
    let err = ImageSet::new(shape, images, vec!["a".into(), "b".into()]).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 6, .. }), "{err}");
    let err = ImageSet::new(shape, Mat::zeros(1, 5), vec!["a".into()]).unwrap_err();
    assert!(matches!(
        err,
        Error::DimensionMismatch {
            expected: 4,
            got: 5,
            ..
        }
    ));
}
