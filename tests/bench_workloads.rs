//! The workloads added to `diffusion-theorems bench` for the experiments' shapes: the FLOP and
//! byte counts of known sizes, agreement of the MLP step's count with the trainer's own
//! (`DenseTrainer::flops_per_epoch` of a one-batch epoch), the size keys that
//! `benches/pytorch_reference.py` matches on, and a run of each on the GPU and its CPU path.

use crate::common;

use diffusion_theorems::bench::workloads::{
    gemm_shapes, DdimAffine, GaussianEval, GemmShape, MlpStep,
};
use diffusion_theorems::bench::{self, Scale, Settings, Workload};
use diffusion_theorems::gpu::dense::{DenseConfig, DenseTrainer};
use diffusion_theorems::gpu::gemm::GpuMat;
use diffusion_theorems::linalg::Mat;

#[test]
fn gemm_shapes_count_2mnk_and_name_their_layout() {
    let shape = GemmShape {
        role: "test",
        m: 3,
        n: 5,
        k: 7,
        trans_a: true,
        trans_b: false,
    };
    assert_eq!(shape.flops(), 210.0);
    assert_eq!(shape.bytes(), 4.0 * (21.0 + 35.0 + 15.0));
    assert_eq!(shape.size(), "test,m=3,n=5,k=7,TN");
    let full = gemm_shapes(Scale::Full);
    let features = full.iter().find(|s| s.role == "features").unwrap();
    assert_eq!((features.m, features.n, features.k), (20_000, 1024, 12288));
    let hidden = full.iter().find(|s| s.role == "mlp_hidden").unwrap();
    assert_eq!((hidden.m, hidden.n, hidden.k), (128, 1000, 12288));
}

/// The bench's count `10Bdh + B(9d + 6h) + 12P` is the trainer's count for an epoch of one batch
/// (N = B), computed by `DenseTrainer::flops_per_epoch` from its own fields.
#[test]
fn mlp_step_flops_match_the_trainers_count_for_one_batch() {
    let gpu = common::gpu();
    let step = MlpStep {
        batch: 6,
        d: 10,
        h: 4,
    };
    let data = GpuMat::upload(
        gpu,
        "images",
        &Mat::from_fn(6, 10, |i, j| 0.1 * (i + j) as f64),
    )
    .unwrap();
    let config = DenseConfig {
        hidden: 4,
        activation: diffusion_theorems::denoisers::bottleneck::Activation::Relu,
        batch: 6,
        adam: Default::default(),
        seed: 1,
    };
    let trainer = DenseTrainer::new(gpu, &data, config).unwrap();
    assert_eq!(step.flops(), trainer.flops_per_epoch());
    let (d, h, b) = (10.0, 4.0, 6.0);
    let params = 2.0 * d * h + d + h;
    assert_eq!(
        step.bytes(),
        4.0 * (6.0 * d * h + 8.0 * params + 4.0 * b * d + 3.0 * b * h)
    );
}

#[test]
fn new_workloads_run_on_the_gpu_and_the_cpu() {
    let gpu = common::gpu();
    let workloads: Vec<Box<dyn Workload>> = vec![
        Box::new(GemmShape {
            role: "odd",
            m: 37,
            n: 70,
            k: 66,
            trans_a: true,
            trans_b: true,
        }),
        Box::new(MlpStep {
            batch: 5,
            d: 24,
            h: 7,
        }),
        Box::new(DdimAffine {
            n: 3,
            steps: 5,
            d: 16,
        }),
        Box::new(GaussianEval {
            d: 37,
            n: 5,
            tile: 16,
        }),
    ];
    for w in &workloads {
        w.cpu()
            .expect("every new workload has a CPU path")
            .run()
            .unwrap();
    }
    let settings = Settings {
        scale: Scale::Quick,
        warmup: 1,
        runs: 2,
        filter: None,
    };
    let report = bench::run(gpu, &settings, &workloads).unwrap();
    for (r, w) in report.results[1..].iter().zip(&workloads) {
        assert!(r.error.is_none(), "{r:?}");
        assert_eq!((r.name.as_str(), r.size.clone()), (w.name(), w.size()));
        assert!(r.seconds > 0.0 && r.tflops > 0.0, "{r:?}");
    }
}

/// The conv layer's count `3·2·B·H·W·C_out·C_in·s²` and its bytes on a known size, the size key
/// `benches/pytorch_reference.py` matches on, the U-Net's layer list, and a run of the layer and
/// of its GEMM twin on the GPU: the report sets the conv's rate beside the twin's
/// (`of_gemm_twin`, the conv's rate over the GEMMs' alone on the same shapes).
#[test]
fn conv_layer_counts_flops_and_reports_its_gemm_twin() {
    use diffusion_theorems::bench::workloads::{
        unet_conv_layers, ConvLayer, ConvLayerGemms, CONV_IM2COL,
    };
    let layer = ConvLayer {
        batch: 2,
        in_channels: 3,
        out_channels: 5,
        side: 7,
        kernel: 3,
    };
    assert_eq!(
        layer.flops(),
        3.0 * 2.0 * (2 * 49) as f64 * (5 * 3 * 9) as f64
    );
    assert_eq!(
        layer.bytes(),
        4.0 * (3.0 * 294.0 + 3.0 * 135.0 + 2.0 * 490.0)
    );
    assert_eq!(layer.size(), "B=2,3->5,7x7,k=3");
    let twin = ConvLayerGemms(layer);
    assert_eq!((twin.flops(), twin.size()), (layer.flops(), layer.size()));
    let full = unet_conv_layers(Scale::Full);
    assert!(full.iter().all(|l| l.batch == 128 && l.kernel == 3));
    assert_eq!(
        full.iter()
            .map(|l| (l.in_channels, l.out_channels, l.side))
            .collect::<Vec<_>>(),
        [
            (3, 64, 64),
            (64, 64, 64),
            (64, 128, 32),
            (128, 128, 32),
            (128, 256, 16),
            (256, 256, 8)
        ]
    );
    let settings = Settings {
        scale: Scale::Quick,
        warmup: 0,
        runs: 2,
        filter: None,
    };
    let workloads: Vec<Box<dyn Workload>> = vec![Box::new(layer), Box::new(twin)];
    let report = bench::run(common::gpu(), &settings, &workloads).unwrap();
    let conv = report
        .results
        .iter()
        .find(|m| m.name == CONV_IM2COL)
        .unwrap();
    assert!(conv.error.is_none(), "{conv:?}");
    let ratio = conv
        .of_gemm_twin
        .expect("the twin's rate beside the conv's");
    assert!(ratio > 0.0 && ratio.is_finite(), "{ratio}");
    assert!(bench::table(&report).contains("of the f32 GEMM rate on the same shapes"));
}
