//! The citable appendix: one row per theorem of the registry (`theorems/<id>.md`) with its
//! statement, source, status and verifying tests, and — when a `verify` report exists — the
//! residuals, tolerances and backend of every claim and the crate version and commit it was
//! verified with. Printed by `diffusion-theorems appendix --format latex|markdown`.

use super::registry::{parse_entry, TheoremEntry, THEOREM_IDS};
use crate::error::Result;
use serde::Deserialize;
use std::path::Path;

/// Output format of the appendix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A LaTeX `longtable` (UTF-8: compile with LuaLaTeX or XeLaTeX for σ, ‖·‖, …).
    Latex,
    /// GitHub-flavoured Markdown tables.
    Markdown,
}

/// One claim of a verify report (the fields of `target/verify/report.json` the appendix uses).
#[derive(Debug, Clone, Deserialize)]
pub struct ReportedClaim {
    /// Theorem id.
    pub theorem: String,
    /// The claim in words.
    pub claim: String,
    /// Number of cases.
    pub cases: usize,
    /// Worst case's residual.
    pub max_residual: f64,
    /// Its tolerance.
    pub tolerance: f64,
    /// `cpu-f64` or the adapter.
    pub backend: String,
    /// PASS.
    pub passed: bool,
}

/// The verify report as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadReport {
    /// Crate version.
    pub version: String,
    /// Git commit of the build that ran it (absent in reports written before it was recorded).
    #[serde(default)]
    pub commit: Option<String>,
    /// The adapter.
    pub adapter: String,
    /// Every claim.
    pub verdicts: Vec<ReportedClaim>,
}

/// Reads `target/verify/report.json` (or another path), naming the file on any error.
pub fn read_report(path: &Path) -> Result<ReadReport> {
    crate::error::read_json(path)
}

/// The registry entries under `root`, in the design's id order; ids without a file are
/// reported as missing (second value).
pub fn entries(root: &Path) -> Result<(Vec<TheoremEntry>, Vec<&'static str>)> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in THEOREM_IDS {
        let md = root.join("theorems").join(format!("{id}.md"));
        if md.exists() {
            found.push(parse_entry(&md)?);
        } else {
            missing.push(id);
        }
    }
    Ok((found, missing))
}

fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '`' => {}
            _ => out.push(c),
        }
    }
    out
}

fn markdown_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The appendix text for the registry under `root`, with the claims of `report` when given.
pub fn appendix(root: &Path, report: Option<&ReadReport>, format: Format) -> Result<String> {
    let (found, missing) = entries(root)?;
    let mut out = String::new();
    let provenance = report.map(|r| {
        format!(
            "verified with diffusion-theorems {} (commit {}) on {}",
            r.version,
            r.commit.as_deref().unwrap_or("unrecorded"),
            r.adapter
        )
    });
    match format {
        Format::Markdown => {
            out.push_str("| theorem | statement | source | status | verifying tests |\n");
            out.push_str("|---|---|---|---|---|\n");
            for e in &found {
                let tests: Vec<String> =
                    e.tests.iter().map(|(f, n)| format!("`{f}::{n}`")).collect();
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} |\n",
                    e.id,
                    markdown_escape(&e.title),
                    markdown_escape(&e.source),
                    e.status,
                    tests.join("<br>")
                ));
            }
            if let Some(r) = report {
                out.push_str(&format!(
                    "\nClaims {}.\n\n| theorem | claim | cases | max residual | tolerance | backend | result |\n|---|---|---|---|---|---|---|\n",
                    provenance.clone().unwrap_or_default()
                ));
                for c in &r.verdicts {
                    out.push_str(&format!(
                        "| `{}` | {} | {} | {:.3e} | {:.3e} | {} | {} |\n",
                        c.theorem,
                        markdown_escape(&c.claim),
                        c.cases,
                        c.max_residual,
                        c.tolerance,
                        markdown_escape(&c.backend),
                        if c.passed { "PASS" } else { "FAIL" }
                    ));
                }
            }
            if !missing.is_empty() {
                out.push_str(&format!(
                    "\nNot yet in the registry: {}.\n",
                    missing.join(", ")
                ));
            }
        }
        Format::Latex => {
            out.push_str("% Generated by `diffusion-theorems appendix --format latex`; needs\n");
            out.push_str("% \\usepackage{longtable} and a Unicode engine (LuaLaTeX/XeLaTeX).\n");
            out.push_str("\\begin{longtable}{p{0.14\\linewidth}p{0.30\\linewidth}p{0.16\\linewidth}p{0.08\\linewidth}p{0.24\\linewidth}}\n");
            out.push_str("Theorem & Statement & Source & Status & Verifying tests \\\\\n\\hline\n\\endhead\n");
            for e in &found {
                let tests: Vec<String> = e
                    .tests
                    .iter()
                    .map(|(f, n)| format!("\\texttt{{{}::{}}}", latex_escape(f), latex_escape(n)))
                    .collect();
                out.push_str(&format!(
                    "\\texttt{{{}}} & {} & {} & {} & {} \\\\\n",
                    latex_escape(&e.id),
                    latex_escape(&e.title),
                    latex_escape(&e.source),
                    latex_escape(&e.status),
                    tests.join("\\newline ")
                ));
            }
            out.push_str("\\end{longtable}\n");
            if let Some(r) = report {
                out.push_str(&format!(
                    "\n% Claims {}.\n\\begin{{longtable}}{{p{{0.14\\linewidth}}p{{0.40\\linewidth}}rrrp{{0.12\\linewidth}}l}}\n",
                    latex_escape(&provenance.clone().unwrap_or_default())
                ));
                out.push_str("Theorem & Claim & Cases & Max residual & Tolerance & Backend & Result \\\\\n\\hline\n\\endhead\n");
                for c in &r.verdicts {
                    out.push_str(&format!(
                        "\\texttt{{{}}} & {} & {} & {:.3e} & {:.3e} & {} & {} \\\\\n",
                        latex_escape(&c.theorem),
                        latex_escape(&c.claim),
                        c.cases,
                        c.max_residual,
                        c.tolerance,
                        latex_escape(&c.backend),
                        if c.passed { "PASS" } else { "FAIL" }
                    ));
                }
                out.push_str("\\end{longtable}\n");
            }
            if !missing.is_empty() {
                out.push_str(&format!(
                    "% Not yet in the registry: {}.\n",
                    missing.join(", ")
                ));
            }
        }
    }
    Ok(out)
}
