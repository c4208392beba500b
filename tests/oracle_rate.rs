//! `oracle_rate`: the oracle denoiser's error `R(σ) = Σσ²c_k²/(c_k² + σ²)` decays as
//! `σ^{2α/(α+1)}` when `c_k² ∼ k^{−(α+1)}` (Sugolov Thm 1; Kadkhodaie et al. eq. 13 with its sign
//! corrected). See theorems/oracle_rate.md.

use crate::common;

use common::{assert_controlled, config};
use diffusion_theorems::error::Error;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::{mean_and_std_error, two_sided_t};
use diffusion_theorems::targets::images::calpha::CAlphaGenerator;
use diffusion_theorems::theorems::oracle_rate::{self as oracle, Coefficients};
use diffusion_theorems::theorems::{self, Depth};
use proptest::prelude::*;

/// log₁₀ of the squared coefficients of arbitrary sequences.
const LOG10_COEFFICIENT: std::ops::Range<f64> = -14.0..2.0;
/// log₁₀ σ of the property tests.
const LOG10_SIGMA: std::ops::Range<f64> = -7.0..1.0;
/// Decay exponents of Theorem 1's property test.
const ALPHA: std::ops::Range<f64> = 0.3..8.0;
/// Decay exponents of the slope property test (α < 1 needs more terms than it is worth).
const SLOPE_ALPHA: std::ops::Range<f64> = 1.0..8.0;

/// An arbitrary sequence of 1–300 squared coefficients, about one in five exactly 0.
fn arbitrary_sequence() -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(
        prop_oneof![
            4 => LOG10_COEFFICIENT.prop_map(|e| 10f64.powf(e)),
            1 => Just(0.0),
        ],
        1..=300,
    )
}

/// A perturbed power law `c_k² = u_k·k^{−(α+1)}`, `k ≤ n`, with `u_k` uniform on `[c, c′]`,
/// `c ∈ [0.05, 1]`, `c′ ∈ [1, 20]`: (α, the sequence).
fn perturbed_power_law() -> impl Strategy<Value = (f64, Vec<f64>)> {
    (ALPHA, 1usize..=2000, 0.05f64..1.0, 1.0f64..20.0).prop_flat_map(|(alpha, n, low, high)| {
        proptest::collection::vec(low..high, n).prop_map(move |u| {
            let values = u
                .iter()
                .enumerate()
                .map(|(k, u)| u * ((k + 1) as f64).powf(-(alpha + 1.0)))
                .collect();
            (alpha, values)
        })
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Route (a) on arbitrary sequences (zeros included), σ 1e-7–10: `B/2 ≤ R ≤ B` within
    /// `γ_{2n+6}`.
    #[test]
    fn oracle_risk_lies_between_half_the_m_term_bound_and_the_bound(
        values in arbitrary_sequence(),
        log_sigma in LOG10_SIGMA,
    ) {
        prop_assume!(values.iter().any(|v| *v > 0.0));
        let c = Coefficients::new(values).unwrap();
        let out = c.sandwich(10f64.powf(log_sigma)).unwrap();
        prop_assert!(out.check.passed(), "{out:?}");
    }

    /// Theorem 1 with explicit constants on perturbed power laws (α 0.3–8, n 1–2000, c 0.05–1,
    /// c′ 1–20, σ 1e-7–10).
    #[test]
    fn oracle_risk_obeys_theorem_1_with_explicit_constants(
        (alpha, values) in perturbed_power_law(),
        log_sigma in LOG10_SIGMA,
    ) {
        let out = oracle::rate_check(&values, alpha, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(out.check.passed(), "{out:?}");
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Route (b) for α 1–8: the exact power law's slope is within the derived bound of
    /// `α/(α+1)`, and the bound is tight enough to reject the exponent off by one,
    /// `(α − 1)/α`, and σ for σ² in the oracle sum (slope `α/(2(α+1))`).
    #[test]
    fn power_law_slope_is_alpha_over_alpha_plus_one_within_the_derived_bound(alpha in SLOPE_ALPHA) {
        let window = oracle::slope_window(
            alpha,
            oracle::SLOPE_CORRECTION,
            oracle::SLOPE_DECADES,
            oracle::SLOPE_POINTS,
        )
        .unwrap();
        let out = oracle::power_law_slope(&window).unwrap();
        prop_assert!(out.controlled.check.passed(), "{out:?}");
        prop_assert!(!out.controlled.planted.passed(), "{out:?}");
        let tolerance = out.controlled.check.tolerance;
        prop_assert!((out.sigma_for_variance_slope - out.predicted).abs() > tolerance, "{out:?}");
    }
}

/// The verify row [`oracle::SANDWICH`]: exact, perturbed and arbitrary sequences over 29 σ, and
/// σ for σ² in the oracle sum rejected.
#[test]
fn sandwich_row_passes_and_rejects_sigma_for_sigma_squared() {
    assert_controlled(&oracle::sandwich_cases(Depth::Default).unwrap());
}

/// The verify row [`oracle::RATE_CONSTANTS`], and the exponent as printed in Kadkhodaie et al.
/// eq. 13 (`σ^{−2α/(α+1)}`) rejected.
#[test]
fn rate_constants_row_passes_and_rejects_the_printed_exponent_of_eq_13() {
    assert_controlled(&oracle::rate_cases(Depth::Default).unwrap());
}

/// The verify row [`oracle::POWER_LAW_SLOPE`] (α ∈ {1, 1.5, 2, 3, 4, 5, 6, 8}), and the
/// exponent off by one rejected in every case.
#[test]
fn power_law_slope_row_passes_and_rejects_the_exponent_off_by_one() {
    let cases = oracle::power_law_slope_cases(Depth::Default).unwrap();
    assert_controlled(&cases);
    for c in &cases {
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// Every planted wrong slope is rejected by the derived bound at the paper's α: the exponent
/// as printed in eq. 13 (`−α/(α+1)`), the slope in σ read as the slope in σ²
/// (`2α/(α+1)`), σ for σ² in the oracle sum (the fitted slope of `Σσc²/(c² + σ)`), and the
/// exponent off by one (`(α − 1)/α`).
#[test]
fn every_planted_slope_is_rejected() {
    for alpha in oracle::PAPER_ALPHAS {
        let window = oracle::slope_window(alpha, 0.02, 4.0, 13).unwrap();
        let out = oracle::power_law_slope(&window).unwrap();
        let tolerance = out.controlled.check.tolerance;
        assert!(out.controlled.check.passed(), "{out:?}");
        let p = alpha / (alpha + 1.0);
        for (what, wrong) in [
            ("eq. 13 as printed", -p),
            ("slope in σ", 2.0 * p),
            ("σ for σ² in the sum", out.sigma_for_variance_slope),
            ("off by one", (alpha - 1.0) / alpha),
        ] {
            let gap = (out.slope - wrong).abs();
            assert!(
                gap > tolerance,
                "α = {alpha}, {what}: |{} − {wrong}| ≤ {tolerance}",
                out.slope
            );
        }
        // σ for σ² halves the slope, as it must if the sum is right (within 0.01: the window is
        // not in the planted sum's asymptotic range, where √s replaces s)
        assert!(
            (out.sigma_for_variance_slope - p / 2.0).abs() < 0.01,
            "{out:?}"
        );
    }
}

/// The sandwich's constants cannot be improved: `R/B = ½` exactly when every `c_k² = σ²`, and
/// `R/B → 1` when every coefficient is far from σ² (1e-12 and 1e12 at σ² = 1: `R/B > 1 − 2e-12`).
#[test]
fn sandwich_constants_are_sharp() {
    let equal = Coefficients::new(vec![0.25; 9]).unwrap();
    let r = equal.oracle_risk(0.5).unwrap();
    let b = equal.m_term_bound(0.5).unwrap().value;
    assert_eq!(r / b, 0.5);
    assert!(equal.sandwich(0.5).unwrap().check.passed());
    let far = Coefficients::new(vec![1e-12, 1e12, 1e12, 1e-12, 1e-12]).unwrap();
    let q = far.oracle_risk(1.0).unwrap() / far.m_term_bound(1.0).unwrap().value;
    assert!(q > 1.0 - 2e-12 && q <= 1.0, "{q}");
}

/// The exact power law's ratio tends to the ratio of the integral forms: with
/// `I(s) = C_β s^{α/β}` (risk) and `J(s) = (β/α)s^{α/β}` (`∫_0^∞ min(x^{−β}, s) dx`, the M-term
/// bound), `I − s − (n+1)^{−α}/α ≤ R ≤ I` and `J − s − (n+1)^{−α}/α ≤ B ≤ J`, so
/// `R/B ∈ [(I − s − t)/J, I/(J − s − t)]`, which closes on `αC_β/β` (0.785 at α = 1, 0.873 at
/// α = 5) as σ → 0: checked at σ² = 1e-8 … 1e-4 for α ∈ {0.5, 1, 2, 3, 5}, n = 10⁶. Theorem 1's
/// upper constant is attained the same way: for `c_k² = c·k^{−β}`, `R/U` lies in
/// `[(I − s′ − t)/J, I/J]` at `s′ = s/c` (c ∈ {¼, 4}). Also prints the range of `R/B` over the
/// sandwich row's 551 cases.
#[test]
fn power_law_ratio_tends_to_the_ratio_of_the_integral_forms() {
    for alpha in [0.5, 1.0, 2.0, 3.0, 5.0] {
        let beta = alpha + 1.0;
        let n = 1_000_000;
        let c = Coefficients::new(oracle::power_law(alpha, n).unwrap()).unwrap();
        let constant = oracle::integral_constant(beta).unwrap();
        let tail = ((n + 1) as f64).powf(-alpha) / alpha;
        for s in [1e-8, 1e-6, 1e-4] {
            let sigma = f64::sqrt(s);
            let q = c.oracle_risk(sigma).unwrap() / c.m_term_bound(sigma).unwrap().value;
            let (i, j) = (
                constant * s.powf(alpha / beta),
                beta / alpha * s.powf(alpha / beta),
            );
            let (low, high) = ((i - s - tail) / j, i / (j - s - tail));
            let slack = 1e-9;
            assert!(
                low - slack <= q && q <= high + slack,
                "α = {alpha}, s = {s}: {low} ≤ {q} ≤ {high}"
            );
        }
    }
    // the constants are attained: for c_k² = c·k^(−β) (c = c′), R(s) = c·R₁(s/c) and
    // U = (β/α)c^(1/β)s^(α/β) = c·J(s/c), so R/U ∈ [(I − s′ − t)/J, I/J] at s′ = s/c
    for (alpha, c) in [(1.0, 0.25), (1.0, 4.0), (3.0, 4.0), (0.5, 0.25)] {
        let beta = alpha + 1.0;
        let n = 100_000;
        let values: Vec<f64> = oracle::power_law(alpha, n)
            .unwrap()
            .iter()
            .map(|v| c * v)
            .collect();
        let coefficients = Coefficients::new(values).unwrap();
        let constant = oracle::integral_constant(beta).unwrap();
        let tail = ((n + 1) as f64).powf(-alpha) / alpha;
        for s in [1e-7, 1e-5] {
            let sigma = f64::sqrt(s);
            let r = coefficients.oracle_risk(sigma).unwrap();
            let u = oracle::theorem_1_bounds(alpha, (c, c), n, sigma)
                .unwrap()
                .upper;
            let scaled = s / c;
            let (i, j) = (
                constant * scaled.powf(alpha / beta),
                beta / alpha * scaled.powf(alpha / beta),
            );
            let (low, high) = ((i - scaled - tail) / j, i / j);
            let q = r / u;
            assert!(
                low - 1e-9 <= q && q <= high + 1e-9,
                "α = {alpha}, c = {c}, s = {s}: {low} ≤ R/U = {q} ≤ {high}"
            );
        }
    }
    let ratios = oracle::sandwich_ratios(Depth::Default).unwrap();
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), q| (l.min(*q), h.max(*q)));
    println!(
        "R/B over the sandwich row's {} cases: [{low:.4}, {high:.4}]",
        ratios.len()
    );
    assert!(low >= 0.5 && high <= 1.0, "[{low}, {high}]");
}

/// The M-term bound's minimum is `Σ_k min(c_k², σ²)` (within `γ_{n+2}` of each other), attained
/// at an M between `#{k : c_k² > σ²}` and `#{k : c_k² ≥ σ²}` (every M between gives the same
/// value in exact arithmetic), on 200 random sequences with ties at σ² (coefficients drawn from
/// a grid that contains σ²).
#[test]
fn m_term_bound_is_the_sum_of_minima_at_the_count_above_the_noise() {
    let mut rng = Rng::new(0x0AC1_E0B0, 0);
    for case in 0..200 {
        let n = 1 + (rng.uniform() * 60.0) as usize;
        let sigma = 10f64.powf(-3.0 + 4.0 * rng.uniform());
        let s = sigma * sigma;
        let values: Vec<f64> = (0..n)
            .map(|_| s * 2f64.powi((rng.uniform() * 9.0) as i32 - 4))
            .collect();
        let c = Coefficients::new(values.clone()).unwrap();
        let b = c.m_term_bound(sigma).unwrap();
        let minima: f64 = values.iter().map(|v| v.min(s)).sum();
        let above = values.iter().filter(|v| **v > s).count();
        let at_or_above = values.iter().filter(|v| **v >= s).count();
        let gamma = (n + 2) as f64 * f64::EPSILON;
        assert!(
            (b.value - minima).abs() <= 2.0 * gamma * minima,
            "case {case}: {b:?} {minima}"
        );
        assert!(
            (above..=at_or_above).contains(&b.terms),
            "case {case}: {b:?}"
        );
    }
}

/// `C_β = (π/β)/sin(π/β)` (reflection formula) equals `Γ(1/β)Γ(1 − 1/β)/β` (statrs' Gamma) and
/// the double-exponential quadrature of `∫_0^∞ du/(1 + u^β)` (split at 1, the tail mapped to
/// `[0, 1]`), for
/// β ∈ {1.25, 1.5, 2, 3, 6, 9}: three routes to the constant of the integral form.
#[test]
fn integral_constant_equals_the_beta_function_and_quadrature() {
    use statrs::function::gamma::gamma;
    for beta in [1.25, 1.5, 2.0, 3.0, 6.0, 9.0] {
        let closed = oracle::integral_constant(beta).unwrap();
        let via_gamma = gamma(1.0 / beta) * gamma(1.0 - 1.0 / beta) / beta;
        assert!((closed - via_gamma).abs() < 1e-12 * closed, "β = {beta}");
        // ∫_0^1 du/(1 + u^β) + ∫_1^∞ du/(1 + u^β), the second with u = w^(−1/(β−1)):
        // ∫_0^1 (β−1)⁻¹ dw/(1 + w^(β/(β−1))), smooth (u = 1/v would leave v^(β−2), singular
        // for β < 2, which the quadrature resolves badly)
        let near = quadrature::double_exponential::integrate(
            |u: f64| 1.0 / (1.0 + u.powf(beta)),
            0.0,
            1.0,
            1e-12,
        );
        let far = quadrature::double_exponential::integrate(
            |w: f64| 1.0 / ((beta - 1.0) * (1.0 + w.powf(beta / (beta - 1.0)))),
            0.0,
            1.0,
            1e-12,
        );
        let (value, error) = (
            near.integral + far.integral,
            near.error_estimate + far.error_estimate,
        );
        assert!(
            (closed - value).abs() < 1e-9 + 10.0 * error,
            "β = {beta}: {closed} against quadrature {value} ± {error}"
        );
    }
}

/// What the generator implies, checked numerically: its background at filter exponent γ has
/// `E|B̂_ω|² = N²|ω|^{−2γ}/Σ|ω′|^{−2γ}` ([`oracle::texture_spectrum`]): per annulus
/// `2^j ≤ |ω| < 2^{j+1}` the mean of `|B̂_ω|²/P_ω` over 64 fields (N = 32) is 1 within
/// `t₆₃·SE` (α = 1e-6 over the 5 annuli × 2 exponents), while the spectrum `|ω|^{−γ}` (power
/// read as amplitude) is rejected; and sorted over the 2-D lattice the derived spectrum decays
/// as `k^{−γ}` on the slope window's ranks (16 to d/8): least-squares exponent within 1% of γ,
/// so Theorem 1's exponent of the texture is γ − 1.
#[test]
fn generator_background_has_the_derived_power_spectrum() {
    let size = 32;
    let fields = 64;
    let t = two_sided_t(1e-6 / 10.0, fields - 1);
    let mut planted_rejected = false;
    for gamma in [2.0, 3.0] {
        let expected = oracle::texture_spectrum(gamma, size).unwrap();
        let amplitude_read = oracle::texture_spectrum(gamma / 2.0, size).unwrap();
        let generator = CAlphaGenerator::new(gamma, size).unwrap();
        let powers: Vec<Vec<f64>> = (0..fields)
            .map(|j| {
                let field = generator.background_field(&mut Rng::new(0x0AC1_E5EC, j as u32));
                oracle::fourier_power(&field, size).unwrap()
            })
            .collect();
        let radius = |bin: usize| {
            let f = |k: usize| {
                if 2 * k <= size {
                    k as f64
                } else {
                    k as f64 - size as f64
                }
            };
            (f(bin / size).powi(2) + f(bin % size).powi(2)).sqrt()
        };
        for j in 0..5 {
            let (low, high) = (2f64.powi(j), 2f64.powi(j + 1));
            let bins: Vec<usize> = (1..size * size)
                .filter(|&b| (low..high).contains(&radius(b)))
                .collect();
            let ratio = |spectrum: &[f64]| -> (f64, f64) {
                let per_field: Vec<f64> = powers
                    .iter()
                    .map(|p| {
                        bins.iter().map(|&b| p[b] / spectrum[b]).sum::<f64>() / bins.len() as f64
                    })
                    .collect();
                mean_and_std_error(&per_field)
            };
            let (mean, se) = ratio(&expected);
            assert!(
                (mean - 1.0).abs() <= t * se,
                "γ = {gamma}, annulus {j}: {mean} ± {se}"
            );
            let (wrong, wrong_se) = ratio(&amplitude_read);
            planted_rejected |= (wrong - 1.0).abs() > t * wrong_se;
        }
        let mut sorted = expected.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let ranks: Vec<f64> = (16..=size * size / 8).map(|k| (k as f64).ln()).collect();
        let logs: Vec<f64> = (16..=size * size / 8).map(|k| sorted[k - 1].ln()).collect();
        let (slope, _) = oracle::least_squares_slope(&ranks, &logs).unwrap();
        assert!(
            (-slope - gamma).abs() <= 0.01 * gamma,
            "γ = {gamma}: exponent {}",
            -slope
        );
    }
    assert!(
        planted_rejected,
        "the amplitude-for-power spectrum was not rejected"
    );
}

/// The verify row [`oracle::TEXTURE_SLOPE`]: the generator's background at filter exponent
/// α + 1 (a `C^α` texture in 2-D) has the Fourier-oracle slope `α/(α+1)` for α ∈ {1, 2, 3, 5}
/// (32 textures each, t·SE + 0.03), and 1-D rank counting's `(2α+1)/(2α+2)` is rejected. The
/// repair of the counterexample below for the texture part; the contour is not repaired in a
/// Fourier basis.
#[test]
fn textures_at_alpha_plus_one_give_the_papers_slope() {
    assert_controlled(&oracle::texture_slope_cases(Depth::Default).unwrap());
}

/// The same machinery as the counterexample on a true case: the generator's own background at
/// α ∈ {2, 3, 5} has sorted Fourier power `∼ k^{−α}`, Theorem 1's exponent α − 1, and its
/// Fourier-oracle slope is `(α − 1)/α` (32 textures each, [`oracle::slope_check`]).
#[test]
fn generator_textures_give_the_slope_of_their_fourier_exponent() {
    for alpha in [2.0, 3.0, 5.0] {
        let slopes = oracle::texture_slopes(alpha, oracle::IMAGE_SIZE, 32, 0x0AC1_E0C0).unwrap();
        let p = (alpha - 1.0) / alpha;
        let out = oracle::slope_check(&slopes, p, alpha / (alpha + 1.0)).unwrap();
        assert!(out.check.passed(), "α = {alpha}: {out:?}");
    }
}

/// The crate's `C^α` images (contour + textures, three channels, N = 32) do not have the
/// papers' slope `α/(α+1)` in the Fourier basis the generator is built in: for every
/// α ∈ {1, 2, 3, 5} the mean Fourier-oracle slope of 32 images is rejected by the same check that
/// passes the control and the repair, and for α ∈ {2, 3, 5} it does not grow with α (within
/// 0.05 of each other, all below 0.5): the contour's jump dominates the small coefficients. Prints
/// the table of `theorems/oracle_rate.md` (`-- --nocapture`).
#[test]
fn calpha_images_miss_the_papers_fourier_slope() {
    let table = oracle::fourier_slope_table(32, 0x0AC1_E1A6).unwrap();
    println!(
        "| α | paper α/(α+1) | exact power law k^-(α+1): slope (bound) | C^α texture \
         (filter α+1) | generator's texture (filter α); (α−1)/α | generator's images |"
    );
    println!("|---|---|---|---|---|---|");
    for line in &table {
        let show = |(m, se): (f64, f64)| format!("{m:.3} ± {se:.3}");
        let window = oracle::slope_window(line.alpha, 0.02, 4.0, 13).unwrap();
        let exact = oracle::power_law_slope(&window).unwrap();
        println!(
            "| {} | {:.3} | {:.4} (± {:.4}) | {} | {}; {:.3} | {} |",
            line.alpha,
            line.paper,
            exact.slope,
            exact.controlled.check.tolerance,
            show(line.texture_at_alpha_plus_one),
            show(line.texture_at_alpha),
            (line.alpha - 1.0) / line.alpha,
            show(line.images),
        );
    }
    for alpha in oracle::PAPER_ALPHAS {
        let slopes = oracle::image_slopes(alpha, oracle::IMAGE_SIZE, 32, 0x0AC1_E1A6).unwrap();
        let out = oracle::slope_check(&slopes, alpha / (alpha + 1.0), 0.0).unwrap();
        assert!(
            !out.check.passed(),
            "α = {alpha}: the images reach α/(α+1): {out:?}"
        );
    }
    // the images' sorted Fourier power on the window's ranks: ∼ k^(−β̂) with β̂ near the
    // contour's 3/2 (a jump along a smooth curve: |χ̂(ω)|² ∼ |ω|^(−3) on average, k ∼ |ω|²),
    // not the α + 1 the papers' slope needs
    for alpha in [2.0, 3.0, 5.0] {
        let generator = CAlphaGenerator::new(alpha, oracle::IMAGE_SIZE).unwrap();
        let exponents: Vec<f64> = (0..32)
            .map(|j| {
                let mut c2 = oracle::fourier_power(&generator.image(0x0AC1_E1A6, j), 32).unwrap();
                c2.sort_by(|a, b| b.total_cmp(a));
                let ranks: Vec<usize> = (oracle::WINDOW_FIRST_RANK..=c2.len() / 8).collect();
                let x: Vec<f64> = ranks.iter().map(|k| (*k as f64).ln()).collect();
                let y: Vec<f64> = ranks.iter().map(|k| c2[k - 1].ln()).collect();
                -oracle::least_squares_slope(&x, &y).unwrap().0
            })
            .collect();
        let (beta, se) = mean_and_std_error(&exponents);
        println!(
            "α = {alpha}: images' sorted Fourier power ∼ k^-β̂, β̂ = {beta:.3} ± {se:.3} \
             (Theorem 1 then predicts the slope {:.3})",
            (beta - 1.0) / beta
        );
        assert!(beta > 1.3 && beta < 2.0, "α = {alpha}: β̂ = {beta}");
    }
    let smooth: Vec<f64> = table[1..].iter().map(|l| l.images.0).collect();
    let spread = smooth.iter().cloned().fold(f64::MIN, f64::max)
        - smooth.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.05 && smooth.iter().all(|s| *s < 0.5),
        "{smooth:?}"
    );
}

/// How [`oracle::WINDOW_ALLOWANCE`] was calibrated (run with `-- --ignored --nocapture`): the
/// mean window slope of 256 textures per filter exponent γ ∈ {2, 3, 4, 5, 6} (seed
/// 0x0AC1_E5A7_E0CA_0000, disjoint from the rows' and the tests') minus Theorem 1's prediction
/// `(γ − 1)/γ` — which covers both the texture row (γ = α + 1 for α ∈ {1, 2, 3, 5}) and the
/// control (γ = α for α ∈ {2, 3, 5}). The largest was 0.015; the allowance is twice that.
#[test]
#[ignore = "calibration record (1280 textures), not a check; run it to re-derive the allowance"]
fn calibrate_the_window_allowance() {
    let seed = 0x0AC1_E5A7_E0CA_0000;
    let mut worst: f64 = 0.0;
    for filter in [2.0, 3.0, 4.0, 5.0, 6.0] {
        let predicted = (filter - 1.0) / filter;
        let slopes = oracle::texture_slopes(filter, oracle::IMAGE_SIZE, 256, seed).unwrap();
        let (mean, se) = mean_and_std_error(&slopes);
        println!(
            "filter exponent {filter}: mean {mean:.4} ± {se:.4}, predicted {predicted:.4}, \
             bias {:+.4}",
            mean - predicted
        );
        worst = worst.max((mean - predicted).abs());
    }
    println!(
        "largest |bias| {worst:.4}; allowance {}",
        oracle::WINDOW_ALLOWANCE
    );
    assert!(2.0 * worst <= oracle::WINDOW_ALLOWANCE + 1e-3);
}

/// Every row passes and keeps its power at quick and thorough depth too (quick: fewer σ, α and
/// textures; thorough: four seeds of random sequences, 32 α, 128 textures per α).
#[test]
fn rows_pass_with_power_at_every_depth() {
    for depth in [Depth::Quick, Depth::Thorough] {
        for cases in [
            oracle::sandwich_cases(depth).unwrap(),
            oracle::rate_cases(depth).unwrap(),
            oracle::power_law_slope_cases(depth).unwrap(),
            oracle::texture_slope_cases(depth).unwrap(),
        ] {
            assert!(cases.iter().all(|c| c.check.passed()), "{depth:?}");
            assert!(
                theorems::power(&cases) > 1.0,
                "{depth:?}: {}",
                theorems::power(&cases)
            );
        }
    }
}

/// Bad input is a typed error naming the value: a negative, NaN or missing coefficient; σ ≤ 0;
/// α ≤ 0; β ≤ 1; an all-zero sequence in the sandwich; an image that is not whole channels; a
/// slope window on too few coefficients; a single image slope.
#[test]
fn bad_input_is_a_typed_error() {
    let negative = Coefficients::new(vec![1.0, -0.5]).unwrap_err();
    assert!(negative.to_string().contains("-0.5"), "{negative}");
    assert!(matches!(
        Coefficients::new(vec![1.0, f64::NAN]).unwrap_err(),
        Error::NonFinite { index: 1, .. }
    ));
    assert!(Coefficients::new(vec![]).is_err());
    let c = Coefficients::new(vec![1.0, 0.5]).unwrap();
    assert!(matches!(
        c.oracle_risk(0.0).unwrap_err(),
        Error::InvalidSigma(_)
    ));
    assert!(matches!(
        c.sandwich(-1.0).unwrap_err(),
        Error::InvalidSigma(_)
    ));
    let zeros = Coefficients::new(vec![0.0, 0.0])
        .unwrap()
        .sandwich(1.0)
        .unwrap_err();
    assert!(
        zeros.to_string().contains("every coefficient is 0"),
        "{zeros}"
    );
    let alpha = oracle::rate_check(&[1.0, 0.1], -2.0, 1.0).unwrap_err();
    assert!(alpha.to_string().contains("-2"), "{alpha}");
    assert!(oracle::rate_check(&[0.0, 0.0], 1.0, 1.0).is_err());
    assert!(oracle::power_law(0.0, 10).is_err() && oracle::power_law(1.0, 0).is_err());
    let beta = oracle::integral_constant(0.5).unwrap_err();
    assert!(beta.to_string().contains("0.5"), "{beta}");
    assert!(oracle::slope_window(1.0, 1.5, 4.0, 13).is_err());
    assert!(oracle::theorem_1_bounds(1.0, (2.0, 1.0), 10, 1.0).is_err());
    let ragged = oracle::fourier_power(&[0.0; 10], 3).unwrap_err();
    assert!(ragged.to_string().contains("10 values"), "{ragged}");
    let short = oracle::window_slope(&[1.0; 100]).unwrap_err();
    assert!(short.to_string().contains("d = 100"), "{short}");
    let single = oracle::slope_check(&[0.5], 0.5, 0.7).unwrap_err();
    assert!(single.to_string().contains("got 1"), "{single}");
    assert!(oracle::texture_spectrum(1.0, 1).is_err());
}

/// Reproducibility: every verify row of `oracle_rate` passes and reproduces its recorded
/// numbers — cases, power, and the geometric means over all cases of the tolerance and of the
/// planted variant's residual (`tests/common/pins/oracle_rate.json`). A changed allowance or
/// negative control in any case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("oracle_rate");
}
