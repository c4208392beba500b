//! The verify table, its JSON report, the theorem registry (`theorems/*.md`) and the citable
//! appendix.

pub mod appendix;
pub mod registry;

use crate::theorems::Verdict;
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
    /// Every verdict.
    pub verdicts: &'a [Verdict],
    /// All passed.
    pub passed: bool,
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
