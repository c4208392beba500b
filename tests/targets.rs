//! The reference targets: validation of user input (typed errors naming the value), moments of
//! samples against the closed forms, and the `eval` command's JSON interface.

use crate::common;

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
    // eval goes through the batched route: equal to the per-point one within twice the
    // rounding bound of either (tests/targets.rs::batch_closed_forms_match_the_per_point_routes)
    let expected = t.posterior_mean(&[3.0, -1.0], 0.7).unwrap();
    let bound =
        diffusion_theorems::theorems::tweedie::rounding_bound(&t, &[3.0, -1.0], 0.7).unwrap();
    let got: Vec<f64> = serde_json::from_value(json["values"][1].clone()).unwrap();
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 2.0 * bound, "{got:?} vs {expected:?}");
    }
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

/// A result f64 cannot hold is a typed error with exit 2 — never a JSON `null` with exit 0: a
/// σ whose square is not a normal f64 (1e-200, 1e300) is refused naming σ and the range, and a
/// point at 1e160 (log-density −∞ in f64) names the quantity.
#[test]
fn eval_refuses_results_beyond_f64() {
    for (sigma, point, quantity, named) in [
        ("1e-200", "[[1, 2]]", "score", "sigma = 1e-200"),
        ("1e300", "[[1, 2]]", "score", "sigma = 1e300"),
        ("1e300", "[[1, 2]]", "posterior-mean", "sigma = 1e300"),
        ("1", "[[1e160, 0]]", "log-density", "log-density"),
    ] {
        let (dir, mut eval) = eval_on_gaussian("eval-nan", point, sigma, quantity);
        let out = eval.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "σ = {sigma}: {stderr}");
        assert!(
            stderr.contains(named) && !String::from_utf8_lossy(&out.stdout).contains("null"),
            "{stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The same quantities by an independent dense route (nalgebra's Cholesky of `C = Σ + σ²I`):
/// log-density, score `−C⁻¹δ`, Hessian `−C⁻¹` and posterior covariance `σ²I − σ⁴C⁻¹` of
/// `N(μ, Σ)`.
fn dense_gaussian(mean: &[f64], cov: &Mat, y: &[f64], sigma: f64) -> (f64, Vec<f64>, Mat, Mat) {
    let d = mean.len();
    let s2 = sigma * sigma;
    let c = nalgebra::DMatrix::from_fn(d, d, |i, j| cov[(i, j)] + if i == j { s2 } else { 0.0 });
    let chol = c.cholesky().expect("C is SPD");
    let delta = nalgebra::DVector::from_fn(d, |i, _| y[i] - mean[i]);
    let solved = chol.solve(&delta);
    let precision = chol.inverse();
    let log_det = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    let log_density =
        -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det + delta.dot(&solved));
    let score = solved.iter().map(|v| -v).collect();
    let hessian = Mat::from_fn(d, d, |i, j| -precision[(i, j)]);
    let posterior = Mat::from_fn(d, d, |i, j| {
        (if i == j { s2 } else { 0.0 }) - s2 * s2 * precision[(i, j)]
    });
    (log_density, score, hessian, posterior)
}

/// Issue 22 item 2: at small σ the closed forms stay right. Before, `δ − UUᵀδ` and
/// `I/σ² − UUᵀ/σ²` were formed for full-rank components, so rounding ~ε‖δ‖ was divided by σ²:
/// the score's relative error grew as 5.7e-16/σ² (5.7 at σ = 1e-8), the Hessian at σ = 1e-8 was
/// [[−5.4, 0.5], [0.5, −4]] against [[−1.047, 0.157], [0.157, −0.524]], the log-density at
/// σ = 1e-20 was −1.5e9 against −3.2, and the README's GMM dropped a component at σ ≤ 1e-18.
/// Now every quantity agrees with the dense route within `64·d·κ(C)·ε` of its norm
/// (κ(Σ) = 2.08/0.92 < 2.5 for this Σ, and κ(C) ≤ κ(Σ)): the spectral and Cholesky routes each err by γ_{O(d)}·κ
/// relative; the factor 64 is calibrated slack on the O(d) constant, not a proved bound.
#[test]
fn closed_forms_stay_accurate_down_to_tiny_sigma() {
    let (mean, cov) = (
        [1.0, 2.0],
        Mat::from_fn(2, 2, |i, j| [[1.0, 0.3], [0.3, 2.0]][i][j]),
    );
    let target = gaussian(&mean, &cov).unwrap();
    let kappa = 2.0 / 0.8;
    let tol = 64.0 * 2.0 * kappa * f64::EPSILON;
    let norm = |m: &Mat| m.norm_l2();
    for sigma in [1e-3, 1e-8, 1e-12, 1e-20, 1e-100, 1e-150] {
        for y in [[0.0, 0.0], [1.5, 2.5], [-3.0, 7.0]] {
            let (log_density, score, hessian, posterior) = dense_gaussian(&mean, &cov, &y, sigma);
            let got = target.log_density(&y, sigma).unwrap();
            assert!(
                (got - log_density).abs() <= tol * log_density.abs().max(1.0),
                "σ = {sigma}, y = {y:?}: log p {got} vs {log_density}"
            );
            let got = target.score(&y, sigma).unwrap();
            let err = got
                .iter()
                .zip(&score)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>();
            let size = score.iter().map(|v| v * v).sum::<f64>();
            assert!(
                err.sqrt() <= tol * size.sqrt(),
                "σ = {sigma}: score {got:?} vs {score:?}"
            );
            let got = target.score_hessian(&y, sigma).unwrap();
            assert!(
                norm(&(&got - &hessian)) <= tol * norm(&hessian),
                "σ = {sigma}: Hessian {got:?} vs {hessian:?}"
            );
            let got = target.posterior_covariance(&y, sigma).unwrap();
            assert!(
                norm(&(&got - &posterior)) <= tol * norm(&posterior),
                "σ = {sigma}: posterior covariance {got:?} vs {posterior:?}"
            );
        }
    }
    // the README's GMM: log p_σ → log p as σ → 0, with both components counted
    let eye = Mat::identity(2, 2);
    let second = Mat::from_fn(2, 2, |i, j| [[0.5, 0.1], [0.1, 0.3]][i][j]);
    let gmm = GaussianMixture::new(
        &[0.3, 0.7],
        &[vec![0.0, 0.0], vec![2.0, 1.0]],
        &[eye.clone(), second.clone()],
    )
    .unwrap();
    let y = [1.0, 0.5];
    // the larger of the components' condition numbers 1 and 0.541/0.259
    const KAPPA: f64 = 2.1;
    for sigma in [1e-8, 1e-18, 1e-30, 1e-150] {
        let (a, score_a, _, _) = dense_gaussian(&[0.0, 0.0], &eye, &y, sigma);
        let (b, score_b, _, _) = dense_gaussian(&[2.0, 1.0], &second, &y, sigma);
        let (la, lb) = (0.3f64.ln() + a, 0.7f64.ln() + b);
        let top = la.max(lb);
        let log_density = top + ((la - top).exp() + (lb - top).exp()).ln();
        let got = gmm.log_density(&y, sigma).unwrap();
        assert!(
            (got - log_density).abs() <= 64.0 * 2.0 * KAPPA * f64::EPSILON * log_density.abs(),
            "σ = {sigma}: GMM log p {got} vs {log_density}"
        );
        let (ra, rb) = ((la - log_density).exp(), (lb - log_density).exp());
        let score: Vec<f64> = (0..2).map(|i| ra * score_a[i] + rb * score_b[i]).collect();
        let got = gmm.score(&y, sigma).unwrap();
        let err = got
            .iter()
            .zip(&score)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let size = (0..2)
            .map(|i| ra * score_a[i].abs() + rb * score_b[i].abs())
            .sum::<f64>();
        assert!(
            err <= 64.0 * 2.0 * KAPPA * f64::EPSILON * size,
            "σ = {sigma}: GMM score {got:?} vs {score:?}"
        );
    }
}

/// Issue 22 item 9: messages name the input, the value and what would be accepted — ragged
/// empirical points name the point and both lengths (not "mean of component 1"); a polynomial
/// degree too high for the law's scale (degree 16 on a Gaussian, degree 3 at mean 1000) says
/// the matrix is numerically singular and to lower the degree (not "too few support points"
/// or a raw Cholesky pivot).
#[test]
fn messages_name_the_input_and_the_cause() {
    let spec: TargetSpec =
        serde_json::from_str(r#"{"kind":"empirical","points":[[0,1],[1],[2,2]]}"#).unwrap();
    let e = spec.build().unwrap_err().to_string();
    assert!(
        e.contains("point 1") && e.contains('2') && e.contains('1'),
        "{e}"
    );
    for (mean, degree) in [(0.0, 16), (1000.0, 3)] {
        let target = gaussian(&[mean], &Mat::identity(1, 1)).unwrap();
        let e = diffusion_theorems::denoisers::polynomial::optimal_polynomial(&target, 0.5, degree)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("numerically singular") && e.contains("lower the degree"),
            "mean {mean}, degree {degree}: {e}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(common::config(64))]

    /// The batched closed forms (`posterior_mean_batch`, `score_batch`, `log_density_batch`:
    /// each component's factor formed once per σ, the points as matrix products) agree with
    /// the per-point routes at every point of a batch, on random mixtures (d 1–8, K 1–5,
    /// point masses and singular components included, σ 1e-2–10, near and far points):
    /// within twice `tweedie::rounding_bound` for E[x|y] and for σ²∇log p_σ (the two
    /// computations are the same route with the sums reordered, each within that bound), and
    /// within twice `32(d+2)εκ(1+Q)` for log p_σ — the bound with its vector-size factor S√d
    /// removed, the log-evidence error its analysis assumes (calibrated by that analogy, not
    /// derived for log p_σ on its own).
    #[test]
    fn batch_closed_forms_match_the_per_point_routes(
        case in common::case(1..=8, 1..=5),
        reaches in proptest::collection::vec((0usize..5, proptest::collection::vec(-1.0f64..1.0, 8), 0.0f64..4.0), 1..6),
    ) {
        use diffusion_theorems::theorems::point_near_component;
        use diffusion_theorems::theorems::tweedie::rounding_bound;
        let (t, sigma) = (&case.target, case.sigma);
        let d = t.dim();
        let mut points = vec![case.y.clone()];
        for (comp, dir, reach) in &reaches {
            let c = &t.components()[comp % t.components().len()];
            points.push(point_near_component(c, sigma, *reach, &dir[..d]));
        }
        let batch = Mat::from_fn(points.len(), d, |i, j| points[i][j]);
        let means = t.posterior_mean_batch(&batch, sigma).unwrap();
        let scores = t.score_batch(&batch, sigma).unwrap();
        let logs = t.log_density_batch(&batch, sigma).unwrap();
        let s2 = sigma * sigma;
        for (i, y) in points.iter().enumerate() {
            let bound = rounding_bound(t, y, sigma).unwrap();
            let size = y.iter().fold(t.scale(), |m, v| m.max(v.abs()));
            let log_bound = bound / (size * (d as f64).sqrt());
            let mean = t.posterior_mean(y, sigma).unwrap();
            let score = t.score(y, sigma).unwrap();
            for j in 0..d {
                proptest::prop_assert!((means[(i, j)] - mean[j]).abs() <= 2.0 * bound,
                    "point {i} coordinate {j}: batch mean {} vs {} (bound {bound})", means[(i, j)], mean[j]);
                proptest::prop_assert!(s2 * (scores[(i, j)] - score[j]).abs() <= 2.0 * bound,
                    "point {i} coordinate {j}: batch score {} vs {} (bound {bound}/σ²)", scores[(i, j)], score[j]);
            }
            let log = t.log_density(y, sigma).unwrap();
            proptest::prop_assert!((logs[i] - log).abs() <= 2.0 * log_bound,
                "point {i}: batch log p {} vs {log} (bound {log_bound})", logs[i]);
        }
    }
}

/// The batched closed forms refuse what the per-point ones refuse: points of the wrong width,
/// a NaN, σ ≤ 0.
#[test]
fn batch_closed_forms_refuse_bad_points() {
    let t = random_gmm(&mut Rng::new(3, 0), 3, 2).unwrap();
    let wrong = Mat::zeros(4, 2);
    assert!(matches!(
        t.posterior_mean_batch(&wrong, 1.0),
        Err(Error::DimensionMismatch { .. })
    ));
    let mut nan = Mat::zeros(2, 3);
    nan[(1, 2)] = f64::NAN;
    assert!(t.score_batch(&nan, 1.0).is_err());
    assert!(t.log_density_batch(&Mat::zeros(2, 3), 0.0).is_err());
}

/// Issue 24: `eval` reads points from a `.npy` array (n, d) and writes the values to a `.npy`
/// file with `--out` — shape (n,) for log-density, (n, d) for score, (n, d, d) for the
/// posterior covariance — equal to the JSON output for the same points; a 3-D points array is
/// refused naming its shape.
#[test]
fn eval_reads_and_writes_npy() {
    use diffusion_theorems::io::npy;
    let dir = std::env::temp_dir().join(format!("dt-eval-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = r#"{"kind":"gmm","weights":[0.3,0.7],"means":[[0,0],[2,1]],"covariances":[[[1,0],[0,1]],[[0.5,0.1],[0.1,0.3]]]}"#;
    std::fs::write(dir.join("t.json"), target).unwrap();
    let points = Mat::from_fn(5, 2, |i, j| i as f64 * 0.7 - j as f64);
    npy::write_mat(&dir.join("p.npy"), &points).unwrap();
    let rows: Vec<Vec<f64>> = (0..5)
        .map(|i| vec![points[(i, 0)], points[(i, 1)]])
        .collect();
    std::fs::write(dir.join("p.json"), serde_json::to_string(&rows).unwrap()).unwrap();
    let eval = |points: &str, quantity: &str, out: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"));
        c.args(["eval", "--sigma", "0.7", "--quantity", quantity, "--target"])
            .arg(dir.join("t.json"))
            .arg("--points")
            .arg(dir.join(points));
        if let Some(o) = out {
            c.arg("--out").arg(dir.join(o));
        }
        let done = c.output().unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        done.stdout
    };
    for (quantity, shape) in [
        ("log-density", vec![5]),
        ("score", vec![5, 2]),
        ("posterior-covariance", vec![5, 2, 2]),
    ] {
        let printed: serde_json::Value =
            serde_json::from_slice(&eval("p.json", quantity, None)).unwrap();
        let written = eval("p.npy", quantity, Some("v.npy"));
        assert!(written.is_empty(), "with --out nothing goes to stdout");
        let array = npy::read(&dir.join("v.npy")).unwrap();
        assert_eq!(array.shape, shape, "{quantity}");
        let flat: Vec<f64> = printed["values"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|v| match v {
                serde_json::Value::Number(x) => vec![x.as_f64().unwrap()],
                serde_json::Value::Array(row) => row
                    .iter()
                    .flat_map(|e| match e {
                        serde_json::Value::Array(r) => {
                            r.iter().map(|x| x.as_f64().unwrap()).collect()
                        }
                        x => vec![x.as_f64().unwrap()],
                    })
                    .collect(),
                _ => panic!("{v}"),
            })
            .collect();
        assert_eq!(array.data, flat, "{quantity}");
    }
    npy::write_f64(&dir.join("cube.npy"), &[2, 2, 2], &[0.0; 8]).unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
        .args(["eval", "--sigma", "0.7", "--quantity", "score", "--target"])
        .arg(dir.join("t.json"))
        .arg("--points")
        .arg(dir.join("cube.npy"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("[2, 2, 2]"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `eval` states its memory need before it allocates its results: past `--max-memory` (here a
/// kibibyte for 64 posterior covariances in d = 2) it exits 2 naming the need and the limit.
#[test]
fn eval_beyond_its_memory_limit_is_refused() {
    let dir = std::env::temp_dir().join(format!("dt-eval-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("t.json"),
        r#"{"kind":"gaussian","mean":[0,0],"covariance":[[1,0],[0,1]]}"#,
    )
    .unwrap();
    let points: Vec<[f64; 2]> = (0..64).map(|i| [i as f64, 0.0]).collect();
    std::fs::write(dir.join("p.json"), serde_json::to_string(&points).unwrap()).unwrap();
    let run = |limit: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
            .args([
                "eval",
                "--sigma",
                "0.5",
                "--quantity",
                "posterior-covariance",
            ])
            .args(["--max-memory", limit, "--target"])
            .arg(dir.join("t.json"))
            .arg("--points")
            .arg(dir.join("p.json"))
            .output()
            .unwrap()
    };
    let refused = run("0.000001");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("64 points") && stderr.contains("GiB"),
        "{stderr}"
    );
    assert!(run("1").status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A zero covariance of the wrong size (3×3 for a 2-D mixture) is a dimension error naming the
/// component, not read as a point mass; a zero covariance of the right size is a point mass.
#[test]
fn zero_covariance_of_the_wrong_size_is_refused() {
    let means = [vec![0.0, 0.0], vec![1.0, 1.0]];
    let eye = Mat::identity(2, 2);
    let e =
        GaussianMixture::new(&[0.5, 0.5], &means, &[eye.clone(), Mat::zeros(3, 3)]).unwrap_err();
    assert!(
        matches!(&e, Error::DimensionMismatch { what, expected: 2, got: 3 } if what.contains("component 1")),
        "{e}"
    );
    let point_mass = GaussianMixture::new(&[0.5, 0.5], &means, &[eye, Mat::zeros(2, 2)]).unwrap();
    assert_eq!(point_mass.components()[1].factor.rank(), 0);
}

/// `κε/(1 − κε)` with `ε = d·γ_{3d+1} + 4dε_mach` and `κ = (t + σ²)/σ²` (t the largest
/// absolute column sum of Σ): the normwise relative error bound of `s = C⁻¹δ` through a
/// Cholesky factor in f64 (Higham Thm 10.4, `‖|L||Lᵀ|‖₂ ≤ d‖C‖₂`), with `4dε_mach` for Σ itself
/// reassembled from the spectral factor `UΛUᵀ` the other route uses.
fn cholesky_solve_bound(cov: &Mat, sigma: f64) -> f64 {
    let d = cov.nrows();
    let t = diffusion_theorems::targets::gaussian::column_sum_max(cov);
    let s2 = sigma * sigma;
    let kappa = (t + s2) / s2;
    let u = f64::EPSILON / 2.0;
    let gamma = (3 * d + 1) as f64 * u / (1.0 - (3 * d + 1) as f64 * u);
    let eps = d as f64 * gamma + 4.0 * d as f64 * f64::EPSILON;
    kappa * eps / (1.0 - kappa * eps)
}

proptest::proptest! {
    #![proptest_config(common::config(64))]

    /// Issue 24: the Cholesky route of a dense Gaussian (`DenseGaussian::noisy`: one factor
    /// of Σ + σ²I, `E[x|y] = y + σ²∇log p_σ`, the score by two triangular solves, Cov[x|y] =
    /// σ²(I − σ²C⁻¹)) against the spectral route of the same Gaussian as a one-component
    /// mixture (`GaussianMixture`: eigen-factor, the posterior route `μ + FK⁻¹Fᵀδ` for the mean),
    /// on random Gaussians (d 1–10, singular and point-mass covariances included, σ 1e-2–10):
    /// the score within `‖s‖·cholesky_solve_bound` plus the spectral route's own
    /// `tweedie::rounding_bound/σ²`, the posterior mean within σ² times that, the log-density
    /// within `½(d + 3q)·bound` plus the batch test's log bound, Cov[x|y] within
    /// `4σ²·bound` entrywise plus the spectral route's `rounding_bound` (the score's and the
    /// mean's tolerances are derived; the log-density's and Cov's are first-order estimates
    /// built on the same bound, calibrated rather than derived).
    #[test]
    fn dense_gaussian_cholesky_route_matches_the_spectral_route(
        case in common::case(1..=10, 1..=1),
        others in proptest::collection::vec(proptest::collection::vec(-3.0f64..3.0, 10), 1..5),
    ) {
        use diffusion_theorems::targets::gaussian::DenseGaussian;
        use diffusion_theorems::theorems::tweedie::rounding_bound;
        let (t, sigma) = (&case.target, case.sigma);
        let d = t.dim();
        let c = &t.components()[0];
        let cov = c.factor.covariance();
        let dense = DenseGaussian::new(c.mean.clone(), cov.clone()).unwrap();
        let noisy = dense.noisy(sigma).unwrap();
        let mut points = vec![case.y.clone()];
        points.extend(others.iter().map(|o| o[..d].to_vec()));
        let batch = Mat::from_fn(points.len(), d, |i, j| points[i][j]);
        let scores = noisy.score_batch(&batch).unwrap();
        let means = noisy.posterior_mean_batch(&batch).unwrap();
        let logs = noisy.log_density_batch(&batch).unwrap();
        let covariance = noisy.posterior_covariance();
        let bound = cholesky_solve_bound(&cov, sigma);
        let s2 = sigma * sigma;
        for (i, y) in points.iter().enumerate() {
            let spectral = rounding_bound(t, y, sigma).unwrap();
            let score = t.score(y, sigma).unwrap();
            let mean = t.posterior_mean(y, sigma).unwrap();
            let s_norm = score.iter().map(|v| v * v).sum::<f64>().sqrt();
            let gap = |row: &Mat, reference: &[f64]| {
                (0..d).map(|j| (row[(i, j)] - reference[j]).powi(2)).sum::<f64>().sqrt()
            };
            let score_tol = bound * s_norm + spectral / s2;
            proptest::prop_assert!(gap(&scores, &score) <= score_tol,
                "point {i}: score gap {} > {score_tol}", gap(&scores, &score));
            proptest::prop_assert!(gap(&means, &mean) <= s2 * score_tol + spectral,
                "point {i}: mean gap {} > {}", gap(&means, &mean), s2 * score_tol + spectral);
            let q: f64 = -(0..d).map(|j| (y[j] - c.mean[j]) * score[j]).sum::<f64>();
            let size = y.iter().fold(t.scale(), |m, v| m.max(v.abs()));
            let log_tol = 0.5 * (d as f64 + 3.0 * q.abs()) * bound
                + 2.0 * spectral / (size * (d as f64).sqrt());
            let log = t.log_density(y, sigma).unwrap();
            proptest::prop_assert!((logs[i] - log).abs() <= log_tol,
                "point {i}: log p {} vs {log} (tolerance {log_tol})", logs[i]);
            let reference = t.posterior_covariance(y, sigma).unwrap();
            for a in 0..d {
                for b in 0..d {
                    let tol = 4.0 * s2 * bound + spectral;
                    proptest::prop_assert!((covariance[(a, b)] - reference[(a, b)]).abs() <= tol,
                        "Cov[{a},{b}]: {} vs {} (tolerance {tol})", covariance[(a, b)], reference[(a, b)]);
                }
            }
        }
    }
}

/// The dense Gaussian's validation: a covariance with a negative eigenvalue (−0.1 in d = 3) is
/// refused naming the pivot where the shifted Cholesky broke down; an asymmetric one, a NaN
/// and a wrong shape are refused as for the mixture; a singular PSD covariance and the zero
/// covariance (a point mass, score −(y − μ)/σ²) are accepted; σ = 0 is refused.
#[test]
fn dense_gaussian_refuses_what_is_not_a_covariance() {
    use diffusion_theorems::targets::gaussian::DenseGaussian;
    let mean = vec![0.0; 3];
    let mut indefinite = Mat::identity(3, 3);
    indefinite[(2, 2)] = -0.1;
    let e = DenseGaussian::new(mean.clone(), indefinite).unwrap_err();
    assert!(
        matches!(&e, Error::NotPsd { reason, .. } if reason.contains("pivot 2") && reason.contains("τ")),
        "{e}"
    );
    let mut asymmetric = Mat::identity(3, 3);
    asymmetric[(0, 1)] = 0.5;
    assert!(DenseGaussian::new(mean.clone(), asymmetric)
        .unwrap_err()
        .to_string()
        .contains("asymmetric"));
    let mut nan = Mat::identity(3, 3);
    nan[(1, 1)] = f64::NAN;
    assert!(matches!(
        DenseGaussian::new(mean.clone(), nan),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        DenseGaussian::new(mean.clone(), Mat::identity(2, 2)),
        Err(Error::DimensionMismatch { .. })
    ));
    let singular = Mat::from_fn(3, 3, |i, j| if i == j && i < 2 { 1.0 } else { 0.0 });
    assert!(DenseGaussian::new(mean.clone(), singular).is_ok());
    let point_mass = DenseGaussian::new(mean.clone(), Mat::zeros(3, 3)).unwrap();
    let y = Mat::from_fn(1, 3, |_, j| j as f64 + 1.0);
    let score = point_mass.noisy(0.5).unwrap().score_batch(&y).unwrap();
    for j in 0..3 {
        assert!((score[(0, j)] + y[(0, j)] / 0.25).abs() <= 1e-15 * y[(0, j)].abs() / 0.25);
    }
    assert!(point_mass.noisy(0.0).is_err());
}

/// Issue 24: a Gaussian target may name its mean and covariance as `.npy` files, relative to
/// the target file (here read from another working directory); `eval` then gives the values of
/// the same target written inline; a missing file exits 2 naming it; `--backend gpu` on a
/// mixture exits 2 saying the GPU route covers Gaussian targets.
#[test]
fn eval_reads_a_gaussian_target_from_npy_files() {
    use diffusion_theorems::io::npy;
    let dir = std::env::temp_dir().join(format!("dt-eval-npy-target-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let cov = [[1.0, 0.3, 0.0], [0.3, 2.0, 0.1], [0.0, 0.1, 0.5]];
    let mean = [0.5, -1.0, 2.0];
    npy::write_f64(&dir.join("data/c.npy"), &[3, 3], &cov.concat()).unwrap();
    npy::write_f64(&dir.join("data/m.npy"), &[3], &mean).unwrap();
    std::fs::write(
        dir.join("data/t.json"),
        r#"{"kind":"gaussian","mean":"m.npy","covariance":"c.npy"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("inline.json"),
        serde_json::json!({"kind": "gaussian", "mean": mean, "covariance": cov}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("p.json"), "[[0,0,0],[1,2,3]]").unwrap();
    std::fs::write(
        dir.join("gmm.json"),
        r#"{"kind":"gmm","weights":[1],"means":[[0,0,0]],"covariances":[[[1,0,0],[0,1,0],[0,0,1]]]}"#,
    )
    .unwrap();
    let eval = |target: &str, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
            .current_dir(std::env::temp_dir())
            .args(["eval", "--sigma", "0.5", "--quantity", "score", "--target"])
            .arg(dir.join(target))
            .arg("--points")
            .arg(dir.join("p.json"))
            .args(extra)
            .output()
            .unwrap()
    };
    let from_files = eval("data/t.json", &[]);
    assert!(
        from_files.status.success(),
        "{}",
        String::from_utf8_lossy(&from_files.stderr)
    );
    assert_eq!(from_files.stdout, eval("inline.json", &[]).stdout);
    std::fs::remove_file(dir.join("data/c.npy")).unwrap();
    let missing = eval("data/t.json", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("c.npy"));
    let gpu_mixture = eval("gmm.json", &["--backend", "gpu"]);
    assert_eq!(gpu_mixture.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gpu_mixture.stderr).contains("Gaussian targets"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 24: `.npy` files written by NumPy's own `np.save` (tests/common/npy, the commands in
/// its README) are read to the exact values (f8 and f4, −0.0 and a subnormal-range 5e-300
/// kept), a Fortran-order file is refused saying so; and the crate's writer, given the same
/// array, produces NumPy's data section byte for byte and a header NumPy parses to the same
/// dtype, order and shape (magic `\x93NUMPY`, a dict with `'descr': '<f8'`,
/// `'fortran_order': False` and shape (2, 3), total header length a multiple of 64).
#[test]
fn npy_files_round_trip_through_numpys_own_format() {
    use diffusion_theorems::io::npy;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/npy");
    let f8 = npy::read(&fixtures.join("numpy_f8_2x3.npy")).unwrap();
    assert_eq!(f8.shape, vec![2, 3]);
    let expected: [f64; 6] = [1.5, -2.0, 3.0, 4.0, 5e-300, -0.0];
    assert_eq!(
        f8.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let f4 = npy::read(&fixtures.join("numpy_f4_4.npy")).unwrap();
    assert_eq!(f4.shape, vec![4]);
    let expected_f4: Vec<f64> = [0.1f32, -1e30, 3.25, 7.0]
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    assert_eq!(f4.data, expected_f4);
    let fortran = npy::read(&fixtures.join("numpy_f8_fortran.npy")).unwrap_err();
    assert!(fortran.to_string().contains("Fortran"), "{fortran}");
    let dir = std::env::temp_dir().join(format!("dt-npy-round-trip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    npy::write_f64(&dir.join("ours.npy"), &[2, 3], &expected).unwrap();
    let ours = std::fs::read(dir.join("ours.npy")).unwrap();
    let numpys = std::fs::read(fixtures.join("numpy_f8_2x3.npy")).unwrap();
    let header_len = |bytes: &[u8]| -> usize {
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        match bytes[6] {
            1 => 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
            _ => 12 + u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        }
    };
    let (ours_len, numpys_len) = (header_len(&ours), header_len(&numpys));
    assert_eq!(ours_len % 64, 0, "header length {ours_len}");
    assert_eq!(&ours[ours_len..], &numpys[numpys_len..], "data sections");
    let header = String::from_utf8_lossy(&ours[..ours_len]).to_string();
    for field in ["'descr': '<f8'", "'fortran_order': False"] {
        assert!(header.contains(field), "{field} missing from {header}");
    }
    // the shape tuple's numbers (Python accepts a trailing comma: `(2, 3, )` is `(2, 3)`)
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next());
    let shape: Vec<usize> = shape_text
        .map(|s| {
            s.trim_start_matches([' ', '('])
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(shape, vec![2, 3], "{header}");
    assert_eq!(npy::read(&dir.join("ours.npy")).unwrap().data, f8.data);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 24: `.npy` points to a `.npy` `--out` stream a block of `--chunk-rows` points at a
/// time: blocks of 3 give the values of one block (to 1e-12 relative: the products' kernels
/// change with the block size) for a mixture and for a Gaussian; a truncated points file exits
/// 2 naming it and leaves neither the output nor its `.tmp` behind.
#[test]
fn eval_streams_npy_points_a_block_at_a_time() {
    use diffusion_theorems::io::npy;
    let dir = std::env::temp_dir().join(format!("dt-eval-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gmm.json"),
        r#"{"kind":"gmm","weights":[0.3,0.7],"means":[[0,0],[2,1]],"covariances":[[[1,0],[0,1]],[[0.5,0.1],[0.1,0.3]]]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("gauss.json"),
        r#"{"kind":"gaussian","mean":[1,-1],"covariance":[[1,0.2],[0.2,0.5]]}"#,
    )
    .unwrap();
    let points = Mat::from_fn(10, 2, |i, j| (i as f64 * 0.37 - j as f64).sin() * 2.0);
    npy::write_mat(&dir.join("p.npy"), &points).unwrap();
    let eval = |target: &str, quantity: &str, rows: &str, out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
            .args([
                "eval",
                "--sigma",
                "0.6",
                "--quantity",
                quantity,
                "--chunk-rows",
                rows,
            ])
            .arg("--target")
            .arg(dir.join(target))
            .arg("--points")
            .arg(dir.join("p.npy"))
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .unwrap()
    };
    for target in ["gmm.json", "gauss.json"] {
        for (quantity, shape) in [("log-density", vec![10]), ("posterior-mean", vec![10, 2])] {
            for (rows, out) in [("3", "a.npy"), ("1024", "b.npy")] {
                let done = eval(target, quantity, rows, out);
                assert!(
                    done.status.success(),
                    "{}",
                    String::from_utf8_lossy(&done.stderr)
                );
            }
            let (a, b) = (
                npy::read(&dir.join("a.npy")).unwrap(),
                npy::read(&dir.join("b.npy")).unwrap(),
            );
            assert_eq!(
                (&a.shape, &b.shape),
                (&shape, &shape),
                "{target} {quantity}"
            );
            for (x, y) in a.data.iter().zip(&b.data) {
                assert!(
                    (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                    "{target} {quantity}: {x} vs {y}"
                );
            }
        }
    }
    let bytes = std::fs::read(dir.join("p.npy")).unwrap();
    std::fs::write(dir.join("p.npy"), &bytes[..bytes.len() - 24]).unwrap();
    let truncated = eval("gauss.json", "score", "3", "c.npy");
    assert_eq!(truncated.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&truncated.stderr).contains("p.npy"));
    assert!(!dir.join("c.npy").exists() && !dir.join("c.npy.tmp").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
