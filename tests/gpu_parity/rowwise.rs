//! The row-wise reductions, softmax, broadcasts and copies.

use super::*;

/// Random test matrix whose row i has entries `N(0, spread_i²)`, the spreads cycling through
/// 1, 30 and 0.01 so that some rows have exponentials that underflow f32 and some are flat.
fn spread_rows(rng: &mut Rng, rows: usize, cols: usize) -> Mat {
    let spreads = [1.0, 30.0, 0.01];
    Mat::from_fn(rows, cols, |i, _| spreads[i % 3] * rng.normal())
}

/// Row log-sum-exp and row softmax (one workgroup per row) match the f64 max-shifted
/// references within the bounds of `gpu::rowwise` (logits `γ₄(|scale·x| + |shift·v|)`, exp within
/// `3 + 2|x|` ULP, the workgroup sum `γ_{⌈n/256⌉+8}`, the division 2.5 ULP, underflow `2⁻¹²⁵`),
/// for rows shorter than, equal to and longer than the 256-wide workgroup, with and without an
/// affine column shift; outputs are poisoned before the kernels run.
#[test]
fn row_logsumexp_and_softmax_match_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise::{self, ColumnShift};
    let gpu = gpu();
    let mut rng = Rng::new(0x50f7, 0);
    for &(m, n) in &[
        (1usize, 1usize),
        (3, 255),
        (5, 256),
        (7, 257),
        (2, 1000),
        (70, 37),
    ] {
        let x = spread_rows(&mut rng, m, n);
        let v: Vec<f64> = (0..n).map(|_| 5.0 * rng.normal()).collect();
        let gx = GpuMat::upload(gpu, "x", &x).unwrap();
        let gv = GpuMat::upload(gpu, "v", &Mat::from_fn(1, n, |_, j| v[j])).unwrap();
        let mut worst = (0.0f64, 0.0f64);
        for (scale, shift) in [(1.0, 0.0), (0.7, -1.3)] {
            let cs = ColumnShift {
                scale,
                shift,
                v: (shift != 0.0).then_some(&gv),
            };
            let lse = rowwise::row_logsumexp(gpu, &gx, cs)
                .unwrap()
                .download(gpu)
                .unwrap();
            let (lse_ref, lse_bound) =
                rowwise::row_logsumexp_reference(&x, scale, shift, &v).unwrap();
            for i in 0..m {
                let err = (lse[(i, 0)] - lse_ref[i]).abs();
                worst.0 = worst.0.max(err / lse_bound[i]);
                assert!(
                    err <= lse_bound[i],
                    "{m}×{n} shift {shift}: lse[{i}] {} vs {} (bound {})",
                    lse[(i, 0)],
                    lse_ref[i],
                    lse_bound[i]
                );
            }
            let p = rowwise::row_softmax(gpu, &gx, cs)
                .unwrap()
                .download(gpu)
                .unwrap();
            let (p_ref, p_bound) =
                rowwise::row_softmax_reference(&x, scale, shift, &v, &[n]).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let err = (p[(i, j)] - p_ref[(i, j)]).abs();
                    worst.1 = worst.1.max(err / p_bound[(i, j)]);
                    assert!(
                        err <= p_bound[(i, j)],
                        "{m}×{n} shift {shift}: p[{i},{j}] {} vs {} (bound {})",
                        p[(i, j)],
                        p_ref[(i, j)],
                        p_bound[(i, j)]
                    );
                }
            }
        }
        eprintln!(
            "{m}×{n}: worst error/bound: lse {:.2e}, softmax {:.2e}",
            worst.0, worst.1
        );
    }
}

/// The softmax across column blocks held in separate buffers (the empirical denoiser's form:
/// running `(max, Σexp)` merged block by block, then `exp(z − m)/s` in place) matches the f64
/// softmax of the concatenated row within the blocked bound of `gpu::rowwise` (which adds the
/// merges' exp and rounding errors), for ragged block widths and more rows than fit one grid
/// row of 256. The kernel writes in place, so instead of poison every input entry is a random
/// normal that no softmax value can match within the bound.
#[test]
fn row_softmax_across_column_blocks_matches_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise::{self, ColumnShift};
    let gpu = gpu();
    let mut rng = Rng::new(0xb10c, 0);
    let widths = [100usize, 37, 300, 1];
    let n: usize = widths.iter().sum();
    let m = 300;
    let x = spread_rows(&mut rng, m, n);
    let v: Vec<f64> = (0..n).map(|_| 5.0 * rng.normal()).collect();
    let (scale, shift) = (0.9, -0.4);
    let mut start = 0;
    let mut blocks = Vec::new();
    for &w in &widths {
        let gx =
            GpuMat::upload(gpu, "block", &Mat::from_fn(m, w, |i, j| x[(i, start + j)])).unwrap();
        let gv = GpuMat::upload(gpu, "block v", &Mat::from_fn(1, w, |_, j| v[start + j])).unwrap();
        blocks.push((gx, gv, start));
        start += w;
    }
    let views: Vec<(&GpuMat, ColumnShift)> = blocks
        .iter()
        .map(|(gx, gv, _)| {
            (
                gx,
                ColumnShift {
                    scale,
                    shift,
                    v: Some(gv),
                },
            )
        })
        .collect();
    rowwise::row_softmax_blocks(gpu, &views).unwrap();
    let (p_ref, p_bound) = rowwise::row_softmax_reference(&x, scale, shift, &v, &widths).unwrap();
    for (gx, _, start) in &blocks {
        let p = gx.download(gpu).unwrap();
        for i in 0..m {
            for j in 0..p.ncols() {
                let (got, want, bound) =
                    (p[(i, j)], p_ref[(i, start + j)], p_bound[(i, start + j)]);
                assert!(
                    (got - want).abs() <= bound,
                    "p[{i},{}] {got} vs {want} (bound {bound})",
                    start + j
                );
            }
        }
    }
    assert!(rowwise::row_softmax_blocks(gpu, &[]).is_err());
}

/// Row max-|·| (exact up to the inputs' rounding, bound `u·max|x|`) and column sums (one
/// sequential f32 sum per column, bound `γ_m Σ_i|x_ij|`) match their f64 references on ragged
/// shapes, including a single long column and a row longer than the workgroup; outputs
/// poisoned first.
#[test]
fn row_max_abs_and_column_sums_match_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise;
    let gpu = gpu();
    let mut rng = Rng::new(0x3a5, 0);
    for &(m, n) in &[(1usize, 1usize), (300, 1), (3, 513), (70, 37)] {
        let x = spread_rows(&mut rng, m, n);
        let gx = GpuMat::upload(gpu, "x", &x).unwrap();
        let mx = rowwise::row_max_abs(gpu, &gx)
            .unwrap()
            .download(gpu)
            .unwrap();
        let (mx_ref, mx_bound) = rowwise::row_max_abs_reference(&x);
        for i in 0..m {
            assert!(
                (mx[(i, 0)] - mx_ref[i]).abs() <= mx_bound[i],
                "{m}×{n}: max|x[{i},:]| {} vs {}",
                mx[(i, 0)],
                mx_ref[i]
            );
        }
        let cs = rowwise::col_sums(gpu, &gx).unwrap().download(gpu).unwrap();
        let (cs_ref, cs_bound) = rowwise::col_sums_reference(&x);
        for j in 0..n {
            assert!(
                (cs[(0, j)] - cs_ref[j]).abs() <= cs_bound[j],
                "{m}×{n}: Σ x[:,{j}] {} vs {} (bound {})",
                cs[(0, j)],
                cs_ref[j],
                cs_bound[j]
            );
        }
    }
}

/// The broadcast add `x_ij += c·v_j` matches f64 within `γ₄(|x_ij| + |c·v_j|)` (x, c, v rounded
/// to f32, one product, one sum; in place, so the random input itself is the "poison"), and
/// the vec4 copy reproduces its f32 input bit for bit into a poisoned destination; lengths that
/// are not a multiple of 4 are refused.
#[test]
fn add_row_vector_and_copy_match_f64_reference() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise;
    use diffusion_theorems::numerics::gamma_f32 as gamma;
    let gpu = gpu();
    let mut rng = Rng::new(0xadd, 0);
    let (m, n, c) = (13usize, 77usize, -0.37);
    let x = Mat::from_fn(m, n, |_, _| rng.normal());
    let v = Mat::from_fn(1, n, |_, _| 3.0 * rng.normal());
    let gx = GpuMat::upload(gpu, "x", &x).unwrap();
    let gv = GpuMat::upload(gpu, "v", &v).unwrap();
    rowwise::add_row_vector(gpu, &gx, c, &gv).unwrap();
    let out = gx.download(gpu).unwrap();
    for i in 0..m {
        for j in 0..n {
            let want = x[(i, j)] + c * v[(0, j)];
            let bound = gamma(4) * (x[(i, j)].abs() + (c * v[(0, j)]).abs());
            assert!((out[(i, j)] - want).abs() <= bound, "[{i},{j}]");
        }
    }
    assert!(rowwise::add_row_vector(gpu, &gx, c, &gx).is_err());
    let src = Mat::from_fn(7, 36, |_, _| rng.normal());
    let gs = GpuMat::upload(gpu, "copy src", &src).unwrap();
    let gd = GpuMat::poisoned(gpu, "copy dst", 7, 36).unwrap();
    rowwise::copy(gpu, &gs, &gd).unwrap();
    let copied = gd.download(gpu).unwrap();
    for i in 0..7 {
        for j in 0..36 {
            assert_eq!(copied[(i, j)], f64::from(src[(i, j)] as f32), "[{i},{j}]");
        }
    }
    let odd = GpuMat::poisoned(gpu, "odd", 5, 3).unwrap();
    let odd2 = GpuMat::poisoned(gpu, "odd2", 5, 3).unwrap();
    assert!(rowwise::copy(gpu, &odd, &odd2).is_err());
    assert!(rowwise::copy(gpu, &gs, &odd).is_err());
}

/// Inputs the row kernels cannot take are typed errors naming the value: an empty row, a shift
/// without its vector, a vector of the wrong length, a non-finite or f32-overflowing factor.
#[test]
fn rowwise_kernels_refuse_bad_input_with_typed_errors() {
    use diffusion_theorems::gpu::gemm::GpuMat;
    use diffusion_theorems::gpu::rowwise::{self, ColumnShift};
    let gpu = gpu();
    let x = GpuMat::upload(gpu, "x", &Mat::from_fn(2, 3, |i, j| (i + j) as f64 + 0.5)).unwrap();
    let empty = GpuMat::poisoned(gpu, "empty", 2, 0).unwrap();
    assert!(rowwise::row_softmax(gpu, &empty, ColumnShift::identity()).is_err());
    let no_v = ColumnShift {
        scale: 1.0,
        shift: 2.0,
        v: None,
    };
    assert!(rowwise::row_logsumexp(gpu, &x, no_v).is_err());
    let short = GpuMat::upload(gpu, "v", &Mat::from_fn(1, 2, |_, _| 1.0)).unwrap();
    let e = rowwise::row_softmax(
        gpu,
        &x,
        ColumnShift {
            scale: 1.0,
            shift: 2.0,
            v: Some(&short),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("expected 3, got 2"), "{e}");
    for bad in [f64::NAN, 1e39] {
        let e = rowwise::row_softmax(
            gpu,
            &x,
            ColumnShift {
                scale: bad,
                shift: 0.0,
                v: None,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains(&format!("{bad}")), "{e}");
    }
}
