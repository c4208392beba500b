//! The `.npy` reader and writer, and the `.npy` image source.

use super::{options, scratch_dir};
use diffusion_theorems::error::Error;
use diffusion_theorems::io::npy;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::targets::images::{load, DataSource, ImageShape};

/// A version-1 `.npy` file written by hand from the format's specification: magic, version,
/// little-endian u16 header length, the header dict padded with spaces and a newline to a
/// multiple of 64 bytes, then the data.
fn hand_made_npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn npy_reader_matches_hand_made_files() {
    let dir = scratch_dir("npy-read");
    let values = [1.5, -2.25, 3.0, 0.125, -0.5, 7.0];
    let little: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_le_bytes()).collect();
    let big: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_be_bytes()).collect();
    let single: Vec<u8> = values
        .iter()
        .flat_map(|&v| (v as f32).to_le_bytes())
        .collect();
    for (name, descr, data) in [
        ("le.npy", "<f8", &little),
        ("be.npy", ">f8", &big),
        ("f4.npy", "<f4", &single),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, hand_made_npy(descr, false, "(2, 3)", data)).unwrap();
        let array = npy::read(&path).unwrap();
        assert_eq!(array.shape, [2, 3], "{name}");
        assert_eq!(array.data, values, "{name}");
    }

    let refused = |name: &str, bytes: Vec<u8>, says: &str| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = npy::read(&path).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
    };
    refused(
        "fortran.npy",
        hand_made_npy("<f8", true, "(2, 3)", &little),
        "Fortran",
    );
    let ints: Vec<u8> = (0..6i32).flat_map(i32::to_le_bytes).collect();
    refused(
        "ints.npy",
        hand_made_npy("<i4", false, "(2, 3)", &ints),
        "<i4",
    );
    refused(
        "short.npy",
        hand_made_npy("<f8", false, "(2, 3)", &little[..40]),
        "truncated",
    );
    refused("text.npy", b"just some text".to_vec(), "header");
    let err = npy::read(&dir.join("absent.npy")).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("absent.npy")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npy_writer_round_trips_and_writes_the_documented_bytes() {
    let dir = scratch_dir("npy-write");
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.375 - 4.0).collect();
    let path = dir.join("a.npy");
    npy::write_f32(&path, &[2, 3, 4], &data).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    // npyz writes the tuple with a trailing comma, `(2, 3, 4, )`, which Python parses alike.
    assert!(header.contains("'shape': (2, 3, 4,"), "{header}");
    let payload: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(&bytes[10 + header_len..], payload.as_slice());
    let back = npy::read(&path).unwrap();
    assert_eq!(back.shape, [2, 3, 4]);
    assert_eq!(
        back.data,
        data.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
    );

    let wide: Vec<f64> = (0..6).map(|i| (i as f64).sqrt() - 1.0).collect();
    npy::write_f64(&path, &[6], &wide).unwrap();
    assert_eq!(npy::read(&path).unwrap().data, wide);

    let matrix = Mat::from_fn(2, 3, |i, j| (10 * i + j) as f64 + 0.1);
    npy::write_mat(&path, &matrix).unwrap();
    let back = npy::read(&path).unwrap();
    assert_eq!(back.shape, [2, 3]);
    assert_eq!(back.data, [0.1, 1.1, 2.1, 10.1, 11.1, 12.1]);

    let err = npy::write_f32(&path, &[2, 2], &[1.0; 3]).unwrap_err();
    assert!(matches!(
        err,
        Error::DimensionMismatch {
            expected: 4,
            got: 3,
            ..
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npy_image_source_round_trips_and_checks_shape_and_range() {
    let dir = scratch_dir("npy-source");
    let (disks, _) = load(&DataSource::Disks, &options(3, 8)).unwrap();
    let path = dir.join("disks.npy");
    disks.save_npy(&path).unwrap();
    let source = DataSource::Npy { path: path.clone() };
    let (back, _) = load(&source, &options(2, 8)).unwrap();
    assert_eq!(back.names, ["disks.npy[0]", "disks.npy[1]"]);
    assert_eq!(back.shape, ImageShape::rgb_square(8));
    for i in 0..2 {
        for k in 0..back.shape.dim() {
            // One f32 rounding of a value in [−1, 1]: at most 2⁻²⁴.
            assert!((back.images[(i, k)] - disks.images[(i, k)]).abs() <= 2f64.powi(-24));
        }
    }

    let err = load(&source, &options(2, 16)).unwrap_err().to_string();
    assert!(
        err.contains("8×8") && err.contains("16×16") && err.contains("disks.npy"),
        "{err}"
    );
    let err = load(&source, &options(4, 8)).unwrap_err().to_string();
    assert!(
        err.contains("holds 3 images") && err.contains("n = 4"),
        "{err}"
    );

    let mut values = vec![0.5f32; 2 * 3 * 4 * 4];
    values[7] = 1.5;
    values[60] = f32::NAN;
    npy::write_f32(&path, &[2, 3, 4, 4], &values).unwrap();
    let err = load(&source, &options(1, 4)).unwrap_err().to_string();
    assert!(err.contains("1.5") && err.contains("index 7"), "{err}");
    values[7] = 0.0;
    npy::write_f32(&path, &[2, 3, 4, 4], &values).unwrap();
    let err = load(&source, &options(2, 4)).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 60, .. }), "{err}");
    // The NaN lies in image 1; the first image alone loads.
    assert!(load(&source, &options(1, 4)).is_ok());

    npy::write_f32(&path, &[3, 16], &[0.0; 48]).unwrap();
    let err = load(&source, &options(1, 4)).unwrap_err().to_string();
    assert!(
        err.contains("[3, 16]") && err.contains("(N, C, H, W)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
