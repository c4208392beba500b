//! The citable appendix: one row per theorem of the registry (`theorems/<id>.md`) with its
//! statement, source, status and verifying tests, and — when a `verify` report exists — the
//! residuals, tolerances (with their derived/calibrated label), power against the planted
//! variant and backend of every claim and the crate version and commit it was verified with.
//!
//! The status column is computed ([`TheoremEntry::status`]): from the roles of the listed tests
//! and, when a report is given, from the theorem's rows in it — a failing row prints `FAILS`.
//! Without a report it is suffixed "(unverified: no report)". Printed by `diffusion-theorems appendix --format latex|markdown`.

use super::registry::{parse_entry, ListedTest, TheoremEntry};
use crate::error::Result;
use crate::theorems::{Depth, Verdict, THEOREMS};
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
    /// The depth it ran at (`default` in reports written before depths existed).
    #[serde(default)]
    pub depth: Depth,
    /// Every claim.
    pub verdicts: Vec<Verdict>,
}

/// Reads `target/verify/report.json` (or another path), naming the file on any error.
pub fn read_report(path: &Path) -> Result<ReadReport> {
    crate::io::read_json(path)
}

/// The registry entries under `root`, in the order of the table of theorems; ids without a file are
/// reported as missing (second value).
pub fn entries(root: &Path) -> Result<(Vec<TheoremEntry>, Vec<&'static str>)> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in THEOREMS.iter().map(|t| t.id) {
        let md = root.join("theorems").join(format!("{id}.md"));
        if md.exists() {
            found.push(parse_entry(&md)?);
        } else {
            missing.push(id);
        }
    }
    Ok((found, missing))
}

/// The status text of `entry` given the report: derived from the theorem's rows when a report
/// is given (no row, or a failing one, gives `FAILS`), from the listed tests alone otherwise.
pub fn status_text(entry: &TheoremEntry, report: Option<&ReadReport>) -> String {
    match report {
        Some(r) => {
            let rows: Vec<&Verdict> = r
                .verdicts
                .iter()
                .filter(|c| c.theorem == entry.id)
                .collect();
            let passed = !rows.is_empty() && rows.iter().all(|c| c.passed && c.power > 1.0);
            entry.status(Some(passed)).label().to_string()
        }
        None => format!("{} (unverified: no report)", entry.status(None).label()),
    }
}

fn cite(t: &ListedTest) -> String {
    match t.role {
        Some(role) => format!(
            "{}::{} [{}]",
            t.file,
            t.name,
            format!("{role:?}").to_lowercase()
        ),
        None => format!("{}::{}", t.file, t.name),
    }
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
            "verified with diffusion-theorems {} (commit {}) on {}, depth {}",
            r.version,
            r.commit.as_deref().unwrap_or("unrecorded"),
            r.adapter,
            r.depth.label()
        )
    });
    match format {
        Format::Markdown => {
            out.push_str("| theorem | statement | source | status | verifying tests |\n");
            out.push_str("|---|---|---|---|---|\n");
            for e in &found {
                let tests: Vec<String> = e.tests.iter().map(|t| format!("`{}`", cite(t))).collect();
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} |\n",
                    e.id,
                    markdown_escape(&e.title),
                    markdown_escape(&e.source),
                    status_text(e, report),
                    tests.join("<br>")
                ));
            }
            if let Some(r) = report {
                out.push_str(&format!(
                    "\nClaims {}.\n\n| theorem | claim | cases | max residual | tolerance | tolerance kind | planted variant | power | backend | result |\n|---|---|---|---|---|---|---|---|---|---|\n",
                    provenance.clone().unwrap_or_default()
                ));
                for c in &r.verdicts {
                    out.push_str(&format!(
                        "| `{}` | {} | {} | {:.3e} | {:.3e} | {} | {} | {:.3e} | {} | {} |\n",
                        c.theorem,
                        markdown_escape(&c.claim),
                        c.cases,
                        c.max_residual,
                        c.tolerance,
                        c.tolerance_kind.label(),
                        markdown_escape(&c.planted_variant),
                        c.power,
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
                    .map(|t| format!("\\texttt{{{}}}", latex_escape(&cite(t))))
                    .collect();
                out.push_str(&format!(
                    "\\texttt{{{}}} & {} & {} & {} & {} \\\\\n",
                    latex_escape(&e.id),
                    latex_escape(&e.title),
                    latex_escape(&e.source),
                    latex_escape(&status_text(e, report)),
                    tests.join("\\newline ")
                ));
            }
            out.push_str("\\end{longtable}\n");
            if let Some(r) = report {
                out.push_str(&format!(
                    "\n% Claims {}.\n\\begin{{longtable}}{{p{{0.12\\linewidth}}p{{0.26\\linewidth}}rrrlp{{0.16\\linewidth}}rp{{0.10\\linewidth}}l}}\n",
                    latex_escape(&provenance.clone().unwrap_or_default())
                ));
                out.push_str("Theorem & Claim & Cases & Max residual & Tolerance & Kind & Planted variant & Power & Backend & Result \\\\\n\\hline\n\\endhead\n");
                for c in &r.verdicts {
                    out.push_str(&format!(
                        "\\texttt{{{}}} & {} & {} & {:.3e} & {:.3e} & {} & {} & {:.3e} & {} & {} \\\\\n",
                        latex_escape(&c.theorem),
                        latex_escape(&c.claim),
                        c.cases,
                        c.max_residual,
                        c.tolerance,
                        c.tolerance_kind.label(),
                        latex_escape(&c.planted_variant),
                        c.power,
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
