//! The reference targets: validation of user input (typed errors naming the value), moments of
//! samples against the closed forms, and the `eval` command's JSON interface.

use diffusion_theorems::error::Error;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::two_sided_z;
use diffusion_theorems::targets::random_gmm;
use diffusion_theorems::targets::{
    gaussian::gaussian, ClosedForm, GaussianMixture, Target, TargetSpec,
};

#[test]
fn bad_inputs_return_typed_errors_naming_the_value() {
    let eye = Mat::identity(2, 2);
    let e = GaussianMixture::new(
        &[0.5, 0.6],
        &[vec![0.0, 0.0], vec![1.0, 1.0]],
        &[eye.clone(), eye.clone()],
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::InvalidWeights { .. }) && e.to_string().contains("1.1"),
        "{e}"
    );
    let e = GaussianMixture::new(
        &[1.5, -0.5],
        &[vec![0.0, 0.0], vec![1.0, 1.0]],
        &[eye.clone(), eye.clone()],
    )
    .unwrap_err();
    assert!(e.to_string().contains("-0.5"), "{e}");
    let not_psd = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 2.0 });
    let e = gaussian(&[0.0, 0.0], &not_psd).unwrap_err();
    assert!(
        matches!(e, Error::NotPsd { .. }) && e.to_string().contains("-1"),
        "{e}"
    );
    let asym = Mat::from_fn(2, 2, |i, j| {
        if i < j {
            0.5
        } else if i == j {
            1.0
        } else {
            0.0
        }
    });
    assert!(matches!(
        gaussian(&[0.0, 0.0], &asym).unwrap_err(),
        Error::NotPsd { .. }
    ));
    let e = gaussian(&[0.0, f64::NAN], &eye).unwrap_err();
    assert!(
        matches!(e, Error::NonFinite { .. }) && e.to_string().contains("NaN"),
        "{e}"
    );
    let e = gaussian(&[0.0, 0.0, 0.0], &eye).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{e}"
    );
    let g = gaussian(&[0.0, 0.0], &eye).unwrap();
    for sigma in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = g.posterior_mean(&[0.0, 0.0], sigma).unwrap_err();
        assert!(matches!(e, Error::InvalidSigma(_)), "{e}");
    }
    let e = g.score(&[0.0], 1.0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 2,
                got: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(g.log_density(&[f64::INFINITY, 0.0], 1.0).is_err());
}

/// Sample means and variances of 20000 draws against `mean()` and `covariance()`, each within
/// z·SE with a per-coordinate false-failure probability 1e-6 (SE of a variance estimated from
/// the sample fourth moment).
#[test]
fn sample_moments_match_mean_and_covariance() {
    let mut rng = Rng::new(77, 0);
    let z = two_sided_z(1e-6);
    for (d, k) in [(1usize, 3usize), (3, 5), (6, 2)] {
        let t = random_gmm(&mut rng, d, k).unwrap();
        let n = 20_000;
        let x = t.sample(&mut rng, n);
        let mean = t.mean();
        let cov = t.covariance();
        for i in 0..d {
            let col: Vec<f64> = (0..n).map(|r| x[(r, i)]).collect();
            let m = col.iter().sum::<f64>() / n as f64;
            let dev: Vec<f64> = col.iter().map(|v| (v - mean[i]).powi(2)).collect();
            let v = dev.iter().sum::<f64>() / n as f64;
            let v_se = (dev.iter().map(|q| (q - v).powi(2)).sum::<f64>() / (n * n) as f64).sqrt();
            assert!(
                (m - mean[i]).abs() <= z * (cov[(i, i)] / n as f64).sqrt(),
                "d={d} mean_{i}"
            );
            assert!(
                (v - cov[(i, i)]).abs() <= z * v_se,
                "d={d} var_{i}: {v} vs {}",
                cov[(i, i)]
            );
        }
    }
}

/// The documented JSON formats parse, and `eval` prints {"values": …} whose numbers equal the
/// library's.
#[test]
fn eval_command_prints_library_values_as_json() {
    let dir = std::env::temp_dir().join(format!("dt-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = r#"{"kind":"gmm","weights":[0.3,0.7],"means":[[0,0],[2,1]],"covariances":[[[1,0],[0,1]],[[0.5,0.1],[0.1,0.3]]]}"#;
    std::fs::write(dir.join("t.json"), target).unwrap();
    std::fs::write(dir.join("p.json"), "[[0.5, 0.5], [3, -1]]").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
        .args(["eval", "--target"])
        .arg(dir.join("t.json"))
        .args(["--sigma", "0.7", "--points"])
        .arg(dir.join("p.json"))
        .args(["--quantity", "posterior-mean"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spec: TargetSpec = serde_json::from_str(target).unwrap();
    let t = spec.build().unwrap();
    let expected = t.posterior_mean(&[3.0, -1.0], 0.7).unwrap();
    let got: Vec<f64> = serde_json::from_value(json["values"][1].clone()).unwrap();
    assert_eq!(got, expected);
    // A bad σ is an error naming the value, with a non-zero exit.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
        .args(["eval", "--target"])
        .arg(dir.join("t.json"))
        .args(["--sigma=-2", "--points"])
        .arg(dir.join("p.json"))
        .args(["--quantity", "score"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-2"));
    for (kind, body) in [
        (
            "gaussian",
            r#"{"kind":"gaussian","mean":[0,0],"covariance":[[1,0],[0,0]]}"#,
        ),
        (
            "empirical",
            r#"{"kind":"empirical","points":[[0,1],[1,0],[2,2]]}"#,
        ),
        (
            "lowrank_gmm",
            r#"{"kind":"lowrank_gmm","weights":[1],"means":[[0,0,0]],"factors":[[[1],[0],[1]]]}"#,
        ),
        ("two_point", r#"{"kind":"two_point"}"#),
    ] {
        let spec: TargetSpec = serde_json::from_str(body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        spec.build().unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh folder holding the README's 2-D Gaussian target as `t.json` and `points` as
/// `p.json`, and the `eval` command on them at σ for `quantity` (stderr captured).
fn eval_on_gaussian(
    name: &str,
    points: &str,
    sigma: &str,
    quantity: &str,
) -> (std::path::PathBuf, std::process::Command) {
    let dir = std::env::temp_dir().join(format!("dt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("t.json"),
        r#"{"kind":"gaussian","mean":[1,2],"covariance":[[1,0.3],[0.3,2]]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("p.json"), points).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"));
    c.args(["eval", "--target"])
        .arg(dir.join("t.json"))
        .args(["--sigma", sigma, "--points"])
        .arg(dir.join("p.json"))
        .args(["--quantity", quantity])
        .stderr(std::process::Stdio::piped());
    (dir, c)
}

/// Output that cannot be written is a typed error with exit 2, never a panic (exit 101): to a
/// full disk (`/dev/full`) and to a pipe whose reader has gone (`… | head -c 50`).
#[test]
fn eval_to_a_full_disk_or_a_closed_pipe_is_a_typed_error() {
    // 20,000 points print ~1 MB, far more than a pipe's buffer.
    let points: Vec<String> = (0..20_000)
        .map(|i| format!("[{}, {}]", 0.1 * i as f64, -0.05 * i as f64))
        .collect();
    let points = format!("[{}]", points.join(","));
    let eval = || eval_on_gaussian("eval-out", &points, "0.5", "posterior-mean");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (dir, mut to_full) = eval();
    let out = to_full.stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("<stdout>") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let (_, mut to_pipe) = eval();
    let mut child = to_pipe
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Broken pipe") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A result f64 cannot hold (σ = 1e-200 or 1e300, a point at 1e160) is a typed error naming
/// the quantity and σ with exit 2 — never a JSON `null` with exit 0.
#[test]
fn eval_refuses_results_beyond_f64() {
    for (sigma, point, quantity) in [
        ("1e-200", "[[1, 2]]", "score"),
        ("1e300", "[[1, 2]]", "score"),
        ("1", "[[1e160, 0]]", "log-density"),
    ] {
        let (dir, mut eval) = eval_on_gaussian("eval-nan", point, sigma, quantity);
        let out = eval.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "σ = {sigma}: {stderr}");
        assert!(
            stderr.contains(quantity) && !String::from_utf8_lossy(&out.stdout).contains("null")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
