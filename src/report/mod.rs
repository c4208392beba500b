//! The verify table, its JSON report, the theorem registry (`theorems/*.md`), the citable
//! appendix, and the shards of a verify spread over many machines.

pub mod appendix;
pub mod registry;
pub mod shards;

use crate::theorems::{Depth, Verdict};
use serde::Serialize;

/// The JSON written to `target/verify/report.json`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Crate version.
    pub version: &'static str,
    /// Git commit of the checkout that ran it (`git rev-parse --short HEAD`), when available.
    pub commit: Option<String>,
    /// The GPU adapter, or the error that prevented one.
    pub adapter: String,
    /// The depth the rows ran at.
    pub depth: Depth,
    /// The family-wise false-failure probability of all rows together
    /// ([`family_false_failure`]).
    pub false_failure: f64,
    /// Every verdict.
    pub verdicts: &'a [Verdict],
    /// All passed.
    pub passed: bool,
}

/// The family-wise false-failure probability of a run: by the union bound, at most the sum of
/// its rows' ([`Verdict::false_failure`]; 0 for deterministic rows).
pub fn family_false_failure(verdicts: &[Verdict]) -> f64 {
    verdicts.iter().map(|v| v.false_failure).sum()
}

/// The header `verify` prints above its table: the depth, how many claims and cases ran, and
/// the family-wise false-failure budget (how many rows are Monte Carlo, the rest deterministic).
pub fn depth_header(depth: Depth, verdicts: &[Verdict]) -> String {
    let cases: usize = verdicts.iter().map(|v| v.cases).sum();
    let sampled = verdicts.iter().filter(|v| v.false_failure > 0.0).count();
    format!(
        "depth {}: {} claims, {} cases; family-wise false-failure probability ≤ {:.1e} \
         (union bound over the {} Monte Carlo rows; the other {} rows are deterministic)",
        depth.label(),
        verdicts.len(),
        cases,
        family_false_failure(verdicts),
        sampled,
        verdicts.len() - sampled
    )
}

/// The id of every verdict's claim, `<theorem>.<k>` with k its 1-based position among its
/// theorem's rows (the order of [`crate::theorems::Theorem::claims`], which `verify --list`
/// prints): `tweedie.1`, `tweedie.2`, ….
pub fn claim_ids(verdicts: &[Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let k = verdicts[..i]
                .iter()
                .filter(|u| u.theorem == v.theorem)
                .count();
            format!("{}.{}", v.theorem, k + 1)
        })
        .collect()
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for XML, and characters XML 1.0 cannot hold
/// (control characters other than tab and newlines) dropped.
fn xml_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The verdicts as JUnit XML, the format CI dashboards read: one `<testsuite>` per theorem,
/// one `<testcase>` per claim (named by its id and statement), a `<failure>` for a claim that
/// failed (its error, or its worst residual against its tolerance and its power), and the
/// figures of every claim in `<system-out>`.
pub fn junit(verdicts: &[Verdict]) -> String {
    let ids = claim_ids(verdicts);
    let failed = |v: &Verdict| !v.passed;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"diffusion-theorems verify\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
        verdicts.len(),
        verdicts.iter().filter(|v| failed(v)).count(),
        verdicts.iter().map(|v| v.seconds).sum::<f64>()
    ));
    let mut theorems: Vec<&str> = vec![];
    for v in verdicts {
        if !theorems.contains(&v.theorem.as_str()) {
            theorems.push(&v.theorem);
        }
    }
    for theorem in theorems {
        let rows: Vec<(&String, &Verdict)> = ids
            .iter()
            .zip(verdicts)
            .filter(|(_, v)| v.theorem == theorem)
            .collect();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            xml_escaped(theorem),
            rows.len(),
            rows.iter().filter(|(_, v)| failed(v)).count(),
            rows.iter().map(|(_, v)| v.seconds).sum::<f64>()
        ));
        for (id, v) in rows {
            let figures = format!(
                "cases {}, max residual {:e}, tolerance {:e} ({}: {}), power {:e} against the \
                 planted variant: {}; backend {}",
                v.cases,
                v.max_residual,
                v.tolerance,
                v.tolerance_kind.label(),
                v.tolerance_basis,
                v.power,
                v.planted_variant,
                v.backend
            );
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n",
                xml_escaped(theorem),
                xml_escaped(&format!("{id}: {}", v.claim)),
                v.seconds
            ));
            if failed(v) {
                let message = match &v.error {
                    Some(e) => e.clone(),
                    None if v.power <= 1.0 => {
                        format!("planted variant not rejected (power {:e})", v.power)
                    }
                    None => format!(
                        "residual {:e} above tolerance {:e}",
                        v.max_residual, v.tolerance
                    ),
                };
                out.push_str(&format!(
                    "      <failure message=\"{}\">{}</failure>\n",
                    xml_escaped(&message),
                    xml_escaped(&figures)
                ));
            }
            out.push_str(&format!(
                "      <system-out>{}</system-out>\n    </testcase>\n",
                xml_escaped(&figures)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The table printed by `verify`: theorem, claim, cases, max residual, tolerance and its label
/// (derived | calibrated), power (the planted variant's residual/tolerance; > 1 means the check
/// rejected it), backend, time, PASS/FAIL; under each row the planted variant and the
/// tolerance's basis (and the error of a claim that could not run).
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<20} {:<72} {:>6} {:>11} {:>11} {:<10} {:>9} {:<28} {:>8}  {}\n",
        "theorem",
        "claim",
        "cases",
        "max resid",
        "tolerance",
        "tol kind",
        "power",
        "backend",
        "time",
        "result"
    );
    for v in verdicts {
        let claim: String = v.claim.chars().take(72).collect();
        let backend: String = v.backend.chars().take(28).collect();
        out.push_str(&format!(
            "{:<20} {:<72} {:>6} {:>11.3e} {:>11.3e} {:<10} {:>9.3e} {:<28} {:>7.2}s  {}\n",
            v.theorem,
            claim,
            v.cases,
            v.max_residual,
            v.tolerance,
            v.tolerance_kind.label(),
            v.power,
            backend,
            v.seconds,
            if v.passed { "PASS" } else { "FAIL" }
        ));
        out.push_str(&format!(
            "    planted: {}{}\n    tolerance: {}\n",
            v.planted_variant,
            if v.power > 1.0 {
                ""
            } else {
                " — NOT REJECTED: the check has no power against it"
            },
            v.tolerance_basis
        ));
        if let Some(e) = &v.error {
            out.push_str(&format!("    error: {e}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theorems::{tweedie, Claim, FalseFailure, Verdict};

    /// The header sums the rows' false-failure probabilities and counts the sampled rows.
    #[test]
    fn depth_header_states_cases_and_budget() {
        let sampled = Claim {
            false_failure: FalseFailure::PerCase(1e-6),
            ..tweedie::GPU_MONTE_CARLO
        };
        let case = crate::theorems::Controlled {
            check: crate::theorems::Check {
                residual: 0.0,
                tolerance: 1.0,
            },
            planted: crate::theorems::Check {
                residual: 2.0,
                tolerance: 1.0,
            },
        };
        let rows = [
            Verdict::collect(&sampled, "cpu-f64", Depth::Thorough, || Ok(vec![case; 3])),
            Verdict::collect(&tweedie::ANALYTIC_SCORE, "cpu-f64", Depth::Thorough, || {
                Ok(vec![case; 4])
            }),
        ];
        assert!((family_false_failure(&rows) - 3e-6).abs() < 1e-18);
        let header = depth_header(Depth::Thorough, &rows);
        for part in [
            "depth thorough",
            "2 claims, 7 cases",
            "≤ 3.0e-6",
            "1 Monte Carlo",
            "other 1",
        ] {
            assert!(header.contains(part), "{part} not in {header}");
        }
    }
}
