//! The `bench` module at tiny sizes.

use super::*;

/// Smoke test of `diffusion-theorems bench` at tiny sizes: the FLOP and byte counts of known
/// sizes, every workload runs on the GPU (and its CPU path where it has one), and the JSON
/// report carries the fields the table and `benches/pytorch_reference.py` comparisons rely on.
#[test]
fn bench_module_reports_json_fields_and_flop_counts() {
    use diffusion_theorems::bench::workloads::{
        Covariance, DdimAffine, EmpiricalDenoiser, Gemm, GmmPosterior, PolynomialFeatures,
    };
    use diffusion_theorems::bench::{self, Scale, Settings, Workload};
    let gpu = gpu();
    assert_eq!(Gemm { n: 100 }.flops(), 2e6);
    assert_eq!(Gemm { n: 100 }.bytes(), 12e4);
    assert_eq!(Covariance { n: 10, d: 20 }.flops(), 8000.0);
    assert_eq!(Covariance { n: 10, d: 20 }.bytes(), 4.0 * (200.0 + 400.0));
    assert_eq!(Covariance { n: 1000, d: 12288 }.tile_rows(1 << 25), 2730);
    assert_eq!(
        GmmPosterior {
            batch: 10,
            d: 2,
            k: 3
        }
        .flops(),
        960.0
    );
    assert_eq!(EmpiricalDenoiser { b: 2, n: 3, d: 4 }.flops(), 132.0);
    assert_eq!(
        PolynomialFeatures {
            m: 5,
            d: 6,
            w: 7,
            k: 3
        }
        .flops(),
        560.0
    );
    assert_eq!(
        DdimAffine {
            n: 2,
            steps: 3,
            d: 4
        }
        .flops(),
        312.0
    );
    let workloads: Vec<Box<dyn Workload>> = vec![
        Box::new(Gemm { n: 33 }),
        Box::new(Covariance { n: 7, d: 19 }),
        Box::new(GmmPosterior {
            batch: 65,
            d: 3,
            k: 2,
        }),
        Box::new(EmpiricalDenoiser { b: 5, n: 9, d: 13 }),
        Box::new(PolynomialFeatures {
            m: 17,
            d: 11,
            w: 6,
            k: 3,
        }),
        Box::new(DdimAffine {
            n: 3,
            steps: 4,
            d: 10,
        }),
    ];
    for w in &workloads {
        if let Some(mut cpu) = w.cpu() {
            cpu.run().unwrap();
        }
    }
    let settings = Settings {
        scale: Scale::Quick,
        warmup: 0,
        runs: 2,
        filter: None,
    };
    let report = bench::run(gpu, &settings, &workloads).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    for field in [
        "version",
        "adapter",
        "device_type",
        "clock",
        "scale",
        "runs",
    ] {
        assert!(!json[field].is_null(), "missing {field}");
    }
    assert!(json["peaks"]["copy_gbs"].as_f64().unwrap() > 0.0);
    assert!(json["peaks"]["gemm_tflops"].as_f64().unwrap() > 0.0);
    assert_eq!(json["peaks"]["gemm_size"], "n=33");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 1 + workloads.len());
    assert_eq!(results[0]["name"], "copy");
    for (r, w) in results[1..].iter().zip(&workloads) {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["name"], w.name());
        assert_eq!(r["size"], w.size().as_str());
        assert_eq!(r["flops"].as_f64().unwrap(), w.flops());
        assert_eq!(r["bytes"].as_f64().unwrap(), w.bytes());
        let secs = r["seconds"].as_f64().unwrap();
        assert!(
            secs > 0.0 && r["wall_seconds"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        let tflops = r["tflops"].as_f64().unwrap();
        assert!((tflops - w.flops() / secs / 1e12).abs() <= 1e-12 * tflops.max(1.0));
        assert!(
            r["flop_fraction"].as_f64().is_some() && r["bandwidth_fraction"].as_f64().is_some()
        );
    }
    let table = bench::table(&report);
    for w in &workloads {
        assert!(table.contains(w.name()), "{table}");
    }
    let only = Settings {
        filter: Some("gemm".into()),
        ..settings
    };
    let filtered = bench::run(gpu, &only, &workloads).unwrap();
    assert_eq!(filtered.results.len(), 2);
    assert!(bench::measure(gpu, workloads[0].as_ref(), 0, 0).is_err());
}
