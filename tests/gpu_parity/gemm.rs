//! The GEMM family: every kernel and epilogue against the f64 reference, the plan, split-K, tiling past the binding limit, the tensor-core kernel.

use super::*;

/// The tensor-core GEMM (operands rounded to f16, 16×16×16 cooperative matrices, f32
/// accumulation) within `gemm_tensor_core_reference`'s derived bound, for every layout and
/// epilogue, alone and split along k — where the adapter offers cooperative matrices (an H100).
/// There it must also differ from the f64 product by more than the f32 kernels' bound somewhere,
/// which shows that the operands really were rounded to f16. Elsewhere (llvmpipe in CI), asking
/// for the kernel is a typed error naming the adapter, and the test says it ran no kernel.
#[test]
fn gemm_on_tensor_cores_is_within_the_f16_bound() {
    use diffusion_theorems::error::Error;
    use diffusion_theorems::gpu::gemm::{gemm_fused_planned, gemm_reference, GpuMat, Product};
    let gpu = gpu();
    let tensor_cores = GemmKernel::TensorCoresF16;
    if !gpu.has_tensor_cores() {
        let a = GpuMat::upload(gpu, "A", &Mat::from_fn(3, 4, |i, j| (i + j) as f64)).unwrap();
        let c = GpuMat::poisoned(gpu, "C", 3, 3).unwrap();
        let refused = Product::new((&a, false), (&a, true), &c)
            .with_kernel(tensor_cores)
            .prepare(gpu);
        match refused {
            Err(Error::GpuLimit(message)) => assert!(
                message.contains("TensorCoresF16") && message.contains(&gpu.backend_name()),
                "{message}"
            ),
            other => panic!(
                "expected a GpuLimit error, got {:?}",
                other.map(|p| p.plan())
            ),
        }
        eprintln!(
            "{} has no cooperative f16 matrices: the tensor-core kernel was not run",
            gpu.backend_name()
        );
        return;
    }
    let mut rng = Rng::new(0x7C0F, 0);
    for ((m, k, n), splits) in [((130, 100, 67), None), ((129, 1000, 131), Some(3))] {
        let expect = GemmPlan {
            kernel: tensor_cores,
            splits: splits.unwrap_or(1),
        };
        check_gemm_epilogues(
            &mut rng,
            (m, k, n),
            Route::Planned(Some(tensor_cores), splits),
            Some(expect),
        );
    }
    let a = Mat::from_fn(96, 200, |_, _| rng.normal());
    let b = Mat::from_fn(200, 80, |_, _| rng.normal());
    let (exact, f32_bound) = gemm_reference(&a, false, &b, false, 1.0, 0.0, None).unwrap();
    let p = diffusion_theorems::gpu::gemm::HostProduct::new((&a, false), (&b, false));
    let (out, _) = gemm_fused_planned(gpu, &p, Some(tensor_cores), None).unwrap();
    let beyond_f32 = (0..96)
        .flat_map(|i| (0..80).map(move |j| (i, j)))
        .filter(|&ij| (out[ij] - exact[ij]).abs() > f32_bound[ij])
        .count();
    assert!(
        beyond_f32 > 0,
        "every entry within the f32 bound: the operands were not rounded to f16"
    );
}

/// Both GEMM kernels (16×16-tiled, and register-blocked 64×64 for m, n ≥ 64) compute
/// `α·op(A)·op(B) + β·D` within the derived f32 bound `γ_{k+5}(|α||op(A)||op(B)| + |β||D|)` for
/// all four transpose combinations, shapes that are not multiples of the tiles (including 1×1, a
/// long inner dimension and ragged 64-blocks), β = 0 with no D.
#[test]
fn gemm_kernel_matches_f64_reference() {
    use diffusion_theorems::gpu::gemm::{gemm, gemm_reference};
    let gpu = gpu();
    let mut rng = Rng::new(0x6e33, 0);
    // (64, 64, 64) and larger take the register-blocked kernel; 130×150 has ragged 64-blocks
    for &(m, k, n) in &[
        (1usize, 1usize, 1usize),
        (17, 5, 33),
        (40, 300, 7),
        (64, 64, 64),
        (130, 70, 150),
    ] {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = random_operands(&mut rng, (m, k, n), (trans_a, trans_b));
            let d = Mat::from_fn(m, n, |_, _| rng.normal());
            for (alpha, beta, addend) in [(1.0, 0.0, None), (-0.7, 1.3, Some(&d))] {
                let out = gemm(gpu, &a, trans_a, &b, trans_b, alpha, beta, addend).unwrap();
                let (reference, bound) =
                    gemm_reference(&a, trans_a, &b, trans_b, alpha, beta, addend).unwrap();
                assert_within_bound(
                    &format!("{m}×{k}×{n} T=({trans_a},{trans_b}) α={alpha}: C"),
                    &out,
                    &reference,
                    &bound,
                );
            }
        }
    }
    let a = Mat::zeros(3, 4);
    let err = gemm(gpu, &a, false, &a, false, 1.0, 0.0, None).unwrap_err();
    assert!(err.to_string().contains("inner dimension"), "{err}");
}

/// How [`check_gemm_epilogues`] runs each product.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// One pass of `gemm_fused_planned`, with the kernel and the split-K slices forced where
    /// given.
    Planned(Option<GemmKernel>, Option<usize>),
    /// `gemm_fused_tiled`, cut into these blocks.
    Tiled(GemmTiling),
}

/// Runs one m×k×n product shape through [`gemm_fused_planned`] with the kernel and split-K
/// slices forced where given (or cut into blocks by `gemm_fused_tiled`), for all four transposes, with and without `β·D`, and every fused
/// epilogue — bias (per row, per column) + activation (identity, tanh, ReLU, leaky ReLU), the
/// derivative mask read off a stored activation output, and the power `(s_j t_ij)^k` — against
/// `gemm::gemm_fused_reference` and its derived bound (outputs poisoned first); asserts that the
/// plan that ran is `expect` where given, and that a split product reruns bit for bit.
fn check_gemm_epilogues(
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    route: Route,
    expect: Option<GemmPlan>,
) {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::gemm::{
        gemm_fused_planned, gemm_fused_references, gemm_fused_tiled, gemm_reference,
        gemm_tensor_core_references, Bias, Epilogue, HostProduct,
    };
    let gpu = gpu();
    let leaky = Activation::LeakyRelu { slope: 0.2 };
    // the references of all the epilogues of one product at once (its dot products formed once)
    let references_of = if matches!(route, Route::Planned(Some(GemmKernel::TensorCoresF16), _)) {
        gemm_tensor_core_references
    } else {
        gemm_fused_references
    };
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let (a, b) = random_operands(rng, (m, k, n), (trans_a, trans_b));
        let d = Mat::from_fn(m, n, |_, _| rng.normal());
        let row_bias = Mat::from_fn(m, 1, |_, _| rng.normal());
        let col_bias = Mat::from_fn(1, n, |_, _| rng.normal());
        let pre = Mat::from_fn(m, n, |_, _| 2.0 * rng.normal());
        let h_tanh = Mat::from_fn(m, n, |i, j| pre[(i, j)].tanh());
        let h_relu = Mat::from_fn(m, n, |i, j| Activation::Relu.apply(pre[(i, j)]));
        let h_leaky = Mat::from_fn(m, n, |i, j| leaky.apply(pre[(i, j)]));
        for (alpha, beta, addend) in [(1.0, 0.0, None), (-0.7, 1.3, Some(&d))] {
            // scales with |s_j t_ij| ≤ 1 so no power overflows
            let (t, _) = gemm_reference(&a, trans_a, &b, trans_b, alpha, beta, addend).unwrap();
            let scale = Mat::from_fn(1, n, |_, j| {
                1.0 / (0..m).map(|i| t[(i, j)].abs()).fold(0.0, f64::max)
            });
            let epilogues: Vec<(&str, Epilogue<&Mat>)> = vec![
                ("none", Epilogue::None),
                (
                    "identity",
                    Epilogue::Activation {
                        bias: Bias::None,
                        activation: Activation::Identity,
                    },
                ),
                (
                    "row bias + tanh",
                    Epilogue::Activation {
                        bias: Bias::PerRow(&row_bias),
                        activation: Activation::Tanh,
                    },
                ),
                (
                    "column bias + relu",
                    Epilogue::Activation {
                        bias: Bias::PerColumn(&col_bias),
                        activation: Activation::Relu,
                    },
                ),
                (
                    "column bias + leaky",
                    Epilogue::Activation {
                        bias: Bias::PerColumn(&col_bias),
                        activation: leaky,
                    },
                ),
                (
                    "tanh mask",
                    Epilogue::DerivativeMask {
                        activation: Activation::Tanh,
                        output: &h_tanh,
                    },
                ),
                (
                    "relu mask",
                    Epilogue::DerivativeMask {
                        activation: Activation::Relu,
                        output: &h_relu,
                    },
                ),
                (
                    "leaky mask",
                    Epilogue::DerivativeMask {
                        activation: leaky,
                        output: &h_leaky,
                    },
                ),
                (
                    "identity mask",
                    Epilogue::DerivativeMask {
                        activation: Activation::Identity,
                        output: &pre,
                    },
                ),
                (
                    "power 1",
                    Epilogue::Power {
                        scale: &scale,
                        power: 1,
                    },
                ),
                (
                    "power 3",
                    Epilogue::Power {
                        scale: &scale,
                        power: 3,
                    },
                ),
                (
                    "power 7",
                    Epilogue::Power {
                        scale: &scale,
                        power: 7,
                    },
                ),
            ];
            let base = HostProduct {
                a: &a,
                trans_a,
                b: &b,
                trans_b,
                alpha,
                beta,
                d: addend,
                epilogue: Epilogue::None,
            };
            let fused: Vec<Epilogue<&Mat>> = epilogues.iter().map(|(_, e)| *e).collect();
            let references = references_of(&base, &fused).unwrap();
            for ((name, epilogue), (reference, bound)) in epilogues.into_iter().zip(references) {
                let p = HostProduct { epilogue, ..base };
                let (out, plan) = match route {
                    Route::Planned(kernel, splits) => {
                        let (out, plan) = gemm_fused_planned(gpu, &p, kernel, splits).unwrap();
                        if let Some(expect) = expect {
                            assert_eq!(plan, expect, "{m}×{k}×{n} {name}: the plan that ran");
                        }
                        if plan.splits > 1 && matches!(epilogue, Epilogue::None) {
                            // the partials are added in slice order, no atomics: bit-identical
                            let (again, _) = gemm_fused_planned(gpu, &p, kernel, splits).unwrap();
                            for i in 0..m {
                                for j in 0..n {
                                    assert_eq!(out[(i, j)].to_bits(), again[(i, j)].to_bits());
                                }
                            }
                        }
                        (out, format!("{plan:?}"))
                    }
                    Route::Tiled(tiling) => (
                        gemm_fused_tiled(gpu, &p, tiling).unwrap(),
                        format!("{tiling:?}"),
                    ),
                };
                let worst = assert_within_bound(
                    &format!("{m}×{k}×{n} {plan} T=({trans_a},{trans_b}) α={alpha} {name}: C"),
                    &out,
                    &reference,
                    &bound,
                );
                if (trans_a, trans_b, beta) == (false, false, 0.0) {
                    println!("{m}×{k}×{n} {plan} {name}: worst |gpu − f64|/bound = {worst:.3}");
                }
            }
        }
    }
}

/// The tiled, blocked and direct GEMM kernels with every fused epilogue — bias (per row, per column) + activation
/// (identity, tanh, ReLU, leaky ReLU), the derivative mask read off a stored activation output,
/// and the power `(s_j t_ij)^k` — against `gemm::gemm_fused_reference`, whose bounds are derived
/// from the dot product's `γ_{k+5}` and each epilogue's own roundings (see its doc: the power's
/// relative error is `k·(γ_{k+5}κ + 2u) + (k − 1)u` to first order, κ the dot product's
/// condition number). Shapes are not multiples of the tiles (ragged 64-blocks for the blocked
/// and direct kernels), all transposes, with and without `β·D`; outputs are poisoned first.
#[test]
fn gemm_epilogues_match_f64_reference() {
    use diffusion_theorems::denoisers::bottleneck::Activation;
    use diffusion_theorems::gpu::gemm::{gemm_fused, Bias, Epilogue, GpuMat, HostProduct, Product};
    let gpu = gpu();
    let mut rng = Rng::new(0xe911, 0);
    // each kernel forced (the automatic rule runs the direct one on a software adapter): the
    // tiled and direct kernels on (17, 5, 33) and (40, 300, 7), the blocked and direct ones on
    // (130, 70, 150) (ragged 64-blocks)
    for (shape, kernels) in [
        (
            (17usize, 5usize, 33usize),
            [GemmKernel::Tiled, GemmKernel::Direct],
        ),
        ((40, 300, 7), [GemmKernel::Tiled, GemmKernel::Direct]),
        ((130, 70, 150), [GemmKernel::Blocked, GemmKernel::Direct]),
    ] {
        for kernel in kernels {
            let plan = GemmPlan { kernel, splits: 1 };
            check_gemm_epilogues(
                &mut rng,
                shape,
                Route::Planned(Some(kernel), Some(1)),
                Some(plan),
            );
        }
    }
    // bad epilogues are typed errors naming the value
    let a = Mat::from_fn(3, 4, |_, _| rng.normal());
    let b = Mat::from_fn(4, 5, |_, _| rng.normal());
    let wrong = Mat::from_fn(1, 3, |_, _| 1.0);
    let base = HostProduct::new((&a, false), (&b, false));
    let bad = |epilogue| HostProduct { epilogue, ..base };
    let e = gemm_fused(
        gpu,
        &bad(Epilogue::Activation {
            bias: Bias::PerRow(&wrong),
            activation: Activation::Tanh,
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("per-row bias"), "{e}");
    let h = Mat::from_fn(3, 5, |_, _| 1.0);
    let e = gemm_fused(
        gpu,
        &bad(Epilogue::DerivativeMask {
            activation: Activation::LeakyRelu { slope: -0.1 },
            output: &h,
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("-0.1"), "{e}");
    let s = Mat::from_fn(1, 5, |_, _| 1.0);
    let e = gemm_fused(
        gpu,
        &bad(Epilogue::Power {
            scale: &s,
            power: 0,
        }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("power"), "{e}");
    let ga = GpuMat::upload(gpu, "a", &Mat::from_fn(4, 4, |_, _| 1.0)).unwrap();
    let e = Product::new((&ga, false), (&ga, false), &ga)
        .prepare(gpu)
        .err()
        .unwrap();
    assert!(e.to_string().contains("shares its buffer"), "{e}");
}

/// The GEMM plan ([`GemmPlan::choose`]): the 128×128 kernel for large outputs whose 128-grid
/// pads little and (split along k where that applies) fills an H100's 132 SMs, where the
/// adapter's workgroup limits allow it; the 64×64 and 16×16 kernels otherwise; split-K exactly
/// for grids of fewer than 264 tiles with k ≥ 512, into `min(⌈264/tiles⌉, ⌊k/256⌋)` slices;
/// on a software adapter the direct kernel for small products and the 128×128 kernel for large
/// ones that pad little (the 64×64 staged kernel never). Checked on an H100's limits
/// (as a GPU and as a software adapter), on WebGPU's default limits
/// (16 KiB of workgroup memory: too little for the 128×128 kernel), on this adapter, and on the
/// dispatches a prepared product records — so the parity tests cannot silently run another
/// kernel than the one they name.
#[test]
fn gemm_plan_picks_large_kernel_and_split_k() {
    use diffusion_theorems::gpu::gemm::{split_k, GpuMat, Product};
    use GemmKernel::{Blocked, Direct, Large, Tiled};
    let gpu = gpu();
    let limits = gpu.limits();
    println!(
        "{}: workgroup memory {} B, {} invocations, bindings {} B",
        gpu.backend_name(),
        limits.max_compute_workgroup_storage_size,
        limits.max_compute_invocations_per_workgroup,
        gpu.max_binding_bytes()
    );
    let h100 = wgpu::Limits {
        max_compute_workgroup_storage_size: 48 << 10,
        max_compute_invocations_per_workgroup: 1024,
        max_storage_buffer_binding_size: (2 << 30) - 4,
        max_buffer_size: 4 << 30,
        ..wgpu::Limits::default()
    };
    let plan = |kernel, splits| GemmPlan { kernel, splits };
    // (m, n, k) → plan on an H100
    for (shape, expect) in [
        ((4096, 4096, 4096), plan(Large, 1)),
        ((1000, 1000, 1000), plan(Large, 3)),
        ((128, 1000, 12288), plan(Large, 33)),
        ((512, 512, 512), plan(Blocked, 2)), // 16·2 = 32 Large workgroups would not fill
        ((128, 1000, 1024), plan(Blocked, 4)), // nor 8·4 = 32
        ((300, 300, 64), plan(Blocked, 1)),
        ((130, 257, 67), plan(Blocked, 1)),
        ((129, 131, 1000), plan(Blocked, 3)),
        ((40, 7, 300), plan(Tiled, 1)),
        ((1, 200, 5000), plan(Tiled, 19)),
    ] {
        assert_eq!(
            GemmPlan::choose(&h100, false, shape),
            expect,
            "{shape:?} on an H100"
        );
    }
    // the same limits on a software adapter: the direct kernel where m or n is below 128 or
    // the product has fewer than 2²² multiply-adds (split-K by the same rule, 64×64 tiles),
    // else the 128×128 kernel where it pads little and has two workgroups, else the direct one
    for (shape, expect) in [
        ((32, 100, 768), plan(Direct, 3)),
        ((128, 128, 128), plan(Direct, 1)),
        ((1, 200, 5000), plan(Direct, 19)),
        ((8192, 32, 288), plan(Direct, 1)),
        ((256, 256, 256), plan(Large, 1)),
        ((1024, 1024, 75), plan(Large, 1)), // 64 workgroups: 132 would not matter on 2 cores
        ((128, 128, 256), plan(Direct, 1)), // 2²² multiply-adds, but one 128×128 workgroup
        ((300, 300, 300), plan(Direct, 1)), // 64 % padding on the 128-grid
        ((4096, 4096, 4096), plan(Large, 1)),
    ] {
        assert_eq!(
            GemmPlan::choose(&h100, true, shape),
            expect,
            "{shape:?} on a software adapter"
        );
    }
    let webgpu = wgpu::Limits::default();
    assert!(!Large.fits(&webgpu) && Blocked.fits(&webgpu));
    assert_eq!(
        GemmPlan::choose(&webgpu, false, (4096, 4096, 4096)),
        plan(Blocked, 1)
    );
    assert_eq!(
        GemmPlan::choose(&webgpu, false, (128, 1000, 12288)),
        plan(Blocked, 9)
    );
    // this adapter: the rule applied to its own limits, and what a prepared product records
    assert!(
        Large.fits(limits),
        "{} cannot run the 128×128 kernel (needs {} B of workgroup memory, 256 invocations): \
         the large-kernel parity tests would not run it",
        gpu.backend_name(),
        Large.workgroup_bytes()
    );
    assert_eq!(
        GemmPlan::choose(limits, gpu.is_software(), (128, 1000, 12288)),
        plan(Large, split_k(Large, limits, (128, 1000, 12288)))
    );
    let a = GpuMat::poisoned(gpu, "a", 128, 12288).unwrap();
    let b = GpuMat::poisoned(gpu, "b", 12288, 1000).unwrap();
    let c = GpuMat::poisoned(gpu, "c", 128, 1000).unwrap();
    let product = Product::new((&a, false), (&b, false), &c);
    let split = product.prepare(gpu).unwrap();
    assert_eq!(split.plan(), plan(Large, 33)); // 8 tiles, ⌈264/8⌉ = 33
    let names: Vec<_> = split
        .dispatches()
        .iter()
        .map(|(shader, _, groups)| (shader.entry_point, *groups))
        .collect();
    assert_eq!(names[0], ("gemm_large", [8, 1, 33]));
    assert_eq!(names[1].0, shaders::GEMM_SPLIT_REDUCE.entry_point);
    assert_eq!(names.len(), 2);
    let one = product.with_splits(1).prepare(gpu).unwrap();
    assert_eq!(one.dispatches().len(), 1);
    let tiled = product.with_kernel(Tiled).prepare(gpu).unwrap();
    assert_eq!(tiled.plan(), plan(Tiled, 1)); // 8·63 = 504 tiles: no split
    for bad in [0, 769] {
        // 12288 = 768 k-steps of 16: at most 768 slices
        let e = product.with_splits(bad).prepare(gpu).err().unwrap();
        assert!(e.to_string().contains("slices"), "{e}");
    }
}

/// The 128×128 register-blocked kernel (forced: these ragged shapes pad too much for the
/// automatic rule to pick it) against the f64 reference with every epilogue, all four
/// transposes, with and without `β·D`, outputs poisoned (see `check_gemm_epilogues`). m×k×n =
/// 130×19×129 loads every operand word by word (no stored row length is a multiple of 4),
/// 132×20×132 every operand by vec4, 128×20×129 mixes the two (B by words, Bᵀ by vec4); none is
/// a multiple of the 128×128×16 tile in every dimension, and each has a ragged second tile of
/// rows and columns and a ragged second k-step (k = 130×67×257 and the like ran here before:
/// 3.75 times the tiles and k-steps on the same code paths).
#[test]
fn gemm_large_kernel_matches_f64_reference() {
    let mut rng = Rng::new(0x1a28, 0);
    let large = GemmPlan {
        kernel: GemmKernel::Large,
        splits: 1,
    };
    for shape in [(130, 19, 129), (132, 20, 132), (128, 20, 129)] {
        check_gemm_epilogues(
            &mut rng,
            shape,
            Route::Planned(Some(large.kernel), Some(1)),
            Some(large),
        );
    }
}

/// Split-K against the f64 reference with every epilogue, all four transposes, with and without
/// `β·D`, outputs and workspace poisoned, within the same bound as one pass (module doc of
/// `gpu::gemm`: no term meets more than k − 1 additions): m×k×n = 65×100×67 with S = 3 forced
/// on the 64×64 kernel (2×2 tiles, ragged by 1 and 3; slices of 32, 32 and 36 — the automatic
/// rule picks this kernel and split for 129×1000×131, see
/// `gemm_plan_picks_large_kernel_and_split_k`, a product 40 times the work that ran here before
/// with the same code path), 1×1300×40 by the automatic rule (16×16 kernel: 3 tiles,
/// S = min(⌈264/3⌉, ⌊1300/256⌋) = 5; on a software adapter the direct kernel: 1 tile, S = 5),
/// and
/// 132×100×129 with S = 3 forced on the 128×128 kernel (slices of 32, 32 and 36; vec4 and word
/// loads mixed). The split sum is
/// deterministic: a second run of each plain split product is bit-identical.
#[test]
fn gemm_split_k_matches_f64_reference() {
    let mut rng = Rng::new(0x5b17, 0);
    let plan = |kernel, splits| GemmPlan { kernel, splits };
    check_gemm_epilogues(
        &mut rng,
        (65, 100, 67),
        Route::Planned(Some(GemmKernel::Blocked), Some(3)),
        Some(plan(GemmKernel::Blocked, 3)),
    );
    // the automatic rule: the direct kernel on a software adapter, the tiled one elsewhere
    let small = if gpu().is_software() {
        GemmKernel::Direct
    } else {
        GemmKernel::Tiled
    };
    check_gemm_epilogues(
        &mut rng,
        (1, 1300, 40),
        Route::Planned(None, None),
        Some(plan(small, 5)),
    );

    check_gemm_epilogues(
        &mut rng,
        (132, 100, 129),
        Route::Planned(Some(GemmKernel::Large), Some(3)),
        Some(plan(GemmKernel::Large, 3)),
    );
}

/// A product cut into blocks (`gemm_fused_tiled`, the route `gemm_fused` takes when operands
/// exceed a storage binding) stays within the one-pass bounds of `gemm_fused_reference`: ragged
/// blocks of C, and the inner dimension cut into slices accumulated on the GPU through `β·D`
/// with the epilogue (its bias, scale or H cut to the block) applied by the last slice only —
/// the rounding count at `GemmTiling` — for every epilogue, transpose and `β·D`, outputs
/// poisoned first. k = 50 in slices of 16, 16, 16 and 2; C 23×12 in blocks of 12×7 (ragged
/// last row and column of blocks: 11 rows, 5 columns; 2·2·4 = 16 block products per call, a
/// third of the 7×5 blocks this used before on the same code path); then whole-k blocks. A
/// zero block size is a typed error naming it.
#[test]
fn gemm_cut_into_blocks_matches_f64_reference() {
    let mut rng = Rng::new(0x711e, 0);
    for tiling in [
        GemmTiling {
            rows: 12,
            cols: 7,
            depth: 16,
        },
        GemmTiling {
            rows: 16,
            cols: 16,
            depth: 50,
        },
    ] {
        check_gemm_epilogues(&mut rng, (23, 50, 12), Route::Tiled(tiling), None);
    }
    let a = Mat::from_fn(3, 4, |_, _| rng.normal());
    let e = diffusion_theorems::gpu::gemm::gemm_fused_tiled(
        gpu(),
        &diffusion_theorems::gpu::gemm::HostProduct::new((&a, false), (&a, true)),
        GemmTiling {
            rows: 2,
            cols: 0,
            depth: 16,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("cols"), "{e}");
}

proptest::proptest! {
    #![proptest_config(common::config(256))]
    /// `GemmTiling::choose` fits every operand block of an m×n×k product in one storage binding
    /// of W words (op(A)'s `rows·depth`, op(B)'s `depth·cols`, C's, D's and H's `rows·cols`) and
    /// every grid within `max_groups` 16-wide tiles, and cuts nothing when the whole product
    /// already fits.
    #[test]
    fn gemm_tiling_fits_every_block_in_one_binding(
        w in 256usize..1 << 20,
        max_groups in 1usize..70_000,
        m in 0usize..1 << 18,
        n in 0usize..1 << 18,
        k in 0usize..1 << 18,
    ) {
        let t = GemmTiling::choose(w, max_groups, (m, n, k)).unwrap();
        proptest::prop_assert!(t.rows >= 1 && t.cols >= 1 && t.depth >= 1, "{t:?}");
        proptest::prop_assert!(t.rows * t.depth <= w && t.depth * t.cols <= w, "{t:?}");
        proptest::prop_assert!(t.rows * t.cols <= w, "{t:?}");
        proptest::prop_assert!(t.rows.max(t.cols) <= 16 * max_groups, "{t:?}");
        proptest::prop_assert!(t.depth >= k || t.depth.is_multiple_of(16), "{t:?}");
        let fits = m * k <= w && k * n <= w && m * n <= w && m.max(n) <= 16 * max_groups;
        if fits && m > 0 && n > 0 && k > 0 {
            proptest::prop_assert_eq!(t, GemmTiling { rows: m, cols: n, depth: k });
        }
    }
}

/// An operand larger than the storage binding cannot be one resident matrix (`GpuMat::upload`
/// returns a typed `GpuLimit`), but `gemm_fused` cuts the product into blocks that fit
/// (`GemmTiling::choose`) instead of refusing it, and the result is within the one-pass f32
/// bound. On a context whose binding is capped at 1 MiB (`Gpu::with_binding_cap`, which every
/// size check and cut reads): A has ⌊W/1024⌋ + 100 = 356 rows of k = 1024 (W the binding in
/// words). This ran at llvmpipe's own 128 MiB (32868 rows) before, on the same code path,
/// which was 2.6 s of the test run.
#[test]
fn gemm_larger_than_a_storage_binding_is_cut_not_refused() {
    use diffusion_theorems::gpu::gemm::{gemm_fused, gemm_fused_reference, GpuMat, HostProduct};
    // a context whose storage bindings are capped at 1 MiB: the same cut as at the adapter's
    // own limit (128 MiB on llvmpipe), on a 356×1024 operand instead of a 32868×1024 one
    let capped = diffusion_theorems::gpu::Gpu::with_binding_cap(1 << 20).unwrap();
    let gpu = &capped;
    assert_eq!(gpu.max_binding_bytes(), 1 << 20);
    let words = (gpu.max_binding_bytes() / 4) as usize;
    let k = 1024;
    let (m, n) = (words / k + 100, 3);
    let tiling = GemmTiling::choose(
        words,
        gpu.limits().max_compute_workgroups_per_dimension as usize,
        (m, n, k),
    )
    .unwrap();
    assert!(tiling.rows < m && tiling.depth == k, "{tiling:?}");
    let mut rng = Rng::new(0xb16a, 0);
    let a = Mat::from_fn(m, k, |_, _| rng.normal());
    let b = Mat::from_fn(k, n, |_, _| rng.normal());
    let refused = GpuMat::upload(gpu, "A", &a).err().unwrap();
    assert!(refused.to_string().contains("binding limit"), "{refused}");
    let p = HostProduct::new((&a, false), (&b, false));
    let out = gemm_fused(gpu, &p).unwrap();
    let (reference, bound) = gemm_fused_reference(&p).unwrap();
    assert_within_bound("C", &out, &reference, &bound);
}
