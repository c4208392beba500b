//! GPU work from several threads at once: the context serialises it ([`Gpu::turn`]), so the
//! GL backend's 6-second context lock never expires under load (issue 22, item 7).
//!
//! The load case itself needs a busy machine and is run by `scripts/gl_under_load.sh`
//! (GL backend, four test threads, six busy loops beside them: 3 of 32 tests panicked with
//! "Could not lock adapter context" before the turn existed; all pass with it).

use super::*;
use diffusion_theorems::gpu::gemm::{gemm_fused_planned, gemm_reference, HostProduct};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// While one thread holds the context's turn, another thread's upload and kernel wait for it
/// and then complete; without the turn they would run at once (and on GL contend for the
/// context lock with a time limit).
#[test]
fn a_second_thread_waits_for_the_turn_then_runs() {
    let gpu = gpu();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let turn = gpu.turn();
        let worker = scope.spawn(|| {
            let mut rng = Rng::new(0x70AD, 0);
            let target = random_gmm(&mut rng, 2, 2).unwrap();
            let points = Mat::from_fn(4, 2, |_, _| rng.normal());
            let out = gmm::gmm_posterior(gpu, &target, &points, 0.5).unwrap();
            done.store(true, Ordering::SeqCst);
            out
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !done.load(Ordering::SeqCst),
            "the second thread ran its kernel while the first held the turn"
        );
        drop(turn);
        let out = worker.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
        assert!(out.posterior_mean.iter().all(|v| v.is_finite()));
    });
}

/// Four threads multiply at once, each a product cut into several submissions; every result
/// is within the f32 bound of its own f64 reference (the case that panicked on GL under load).
#[test]
fn gemm_from_four_threads_at_once_matches_the_reference() {
    let gpu = gpu();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = Rng::new(0xC0C0 + t, t as u32);
                    let a = Mat::from_fn(70 + t as usize, 90, |_, _| rng.normal());
                    let b = Mat::from_fn(90, 50, |_, _| rng.normal());
                    let (exact, bound) =
                        gemm_reference(&a, false, &b, false, 1.0, 0.0, None).unwrap();
                    let product = HostProduct::new((&a, false), (&b, false));
                    let (out, _) = gemm_fused_planned(gpu, &product, None, None).unwrap();
                    (0..a.nrows())
                        .flat_map(|i| (0..b.ncols()).map(move |j| (i, j)))
                        .filter(|&ij| {
                            (out[ij] - exact[ij]).abs().is_nan()
                                || (out[ij] - exact[ij]).abs() > bound[ij]
                        })
                        .count()
                })
            })
            .collect();
        for (t, w) in workers.into_iter().enumerate() {
            assert_eq!(
                w.join().unwrap(),
                0,
                "thread {t}: entries beyond the f32 bound"
            );
        }
    });
}
