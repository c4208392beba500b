//! The theorem registry: `theorems/<id>.md` files with front matter (`id`, `title`, `source`,
//! `status`) and a list of verifying tests, one per line, as
//! ``- `tests/<id>.rs::<test_name>` — what it shows; tolerance``.
//!
//! [`check`] keeps the registry true: every listed test exists, every test function in
//! `tests/<id>.rs` is listed, and every file's id matches its name.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// The theorem ids of the design (module names, test files and `theorems/*.md` all use them).
pub const THEOREM_IDS: [&str; 10] = [
    "tweedie",
    "miyasawa_covariance",
    "sure",
    "linear_gaussian",
    "rank_k",
    "polynomial_moments",
    "bottleneck_manifold",
    "score_matching",
    "memorization",
    "kl_bound",
];

/// One parsed `theorems/<id>.md`.
#[derive(Debug, Clone)]
pub struct TheoremEntry {
    /// `id:` of the front matter.
    pub id: String,
    /// `title:`.
    pub title: String,
    /// `source:`.
    pub source: String,
    /// `status:` — holds | holds-with-repair | counterexample.
    pub status: String,
    /// Listed tests as `(file, name)`.
    pub tests: Vec<(String, String)>,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Parses one theorem file.
pub fn parse_entry(path: &Path) -> Result<TheoremEntry> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let bad = |reason: &str| Error::InvalidArgument {
        what: path.display().to_string(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some("---") {
        return Err(bad("must start with a '---' front-matter line"));
    }
    let field = |name: &str, body: &str| -> Option<String> {
        body.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
    };
    let front: String = lines
        .by_ref()
        .take_while(|l| *l != "---")
        .collect::<Vec<_>>()
        .join("\n");
    let id = field("id", &front).ok_or_else(|| bad("front matter lacks 'id:'"))?;
    let title = field("title", &front).ok_or_else(|| bad("front matter lacks 'title:'"))?;
    let source = field("source", &front).ok_or_else(|| bad("front matter lacks 'source:'"))?;
    let status = field("status", &front).ok_or_else(|| bad("front matter lacks 'status:'"))?;
    if !["holds", "holds-with-repair", "counterexample"].contains(&status.as_str()) {
        return Err(bad(&format!(
            "status must be holds | holds-with-repair | counterexample, got '{status}'"
        )));
    }
    let tests = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- `tests/"))
        .filter_map(|rest| rest.split('`').next())
        .filter_map(|cite| {
            let (file, name) = cite.split_once("::")?;
            Some((format!("tests/{file}"), name.to_string()))
        })
        .collect();
    Ok(TheoremEntry {
        id,
        title,
        source,
        status,
        tests,
    })
}

/// Names of the test functions in a test file: every `fn name` that follows a `#[test]`
/// attribute or stands inside a `proptest!` block (helpers live in `tests/common/`).
pub fn test_functions(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut pending_test = false;
    let mut in_proptest = false;
    for line in source.lines() {
        let t = line.trim();
        if t.starts_with("proptest!") {
            in_proptest = true;
        }
        if t == "#[test]" {
            pending_test = true;
        }
        if let Some(rest) = t.strip_prefix("fn ").or_else(|| t.strip_prefix("pub fn ")) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if pending_test || in_proptest {
                out.insert(name);
            }
            pending_test = false;
        }
        if in_proptest && line.starts_with('}') {
            in_proptest = false;
        }
    }
    out
}

/// Every problem of the registry under `root` (the crate root), empty when it is true:
/// a file whose id differs from its name, a listed test that does not exist, a test function in
/// `tests/<id>.rs` listed nowhere, a theorem id without `theorems/<id>.md`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for id in THEOREM_IDS {
        let md = root.join("theorems").join(format!("{id}.md"));
        let test_file = root.join("tests").join(format!("{id}.rs"));
        let tests_present = if test_file.exists() {
            let src = std::fs::read_to_string(&test_file).map_err(|e| io(&test_file, e))?;
            Some(test_functions(&src))
        } else {
            None
        };
        if !md.exists() {
            problems.push(format!("theorem '{id}' has no theorems/{id}.md"));
            continue;
        }
        let entry = parse_entry(&md)?;
        if entry.id != id {
            problems.push(format!("theorems/{id}.md declares id '{}'", entry.id));
        }
        let mut listed = BTreeSet::new();
        for (file, name) in &entry.tests {
            let path = root.join(file);
            let src = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(_) => {
                    problems.push(format!(
                        "theorems/{id}.md lists {file}::{name}, but {file} does not exist"
                    ));
                    continue;
                }
            };
            if !test_functions(&src).contains(name) {
                problems.push(format!(
                    "theorems/{id}.md lists {file}::{name}, which is not a test there"
                ));
            }
            if *file == format!("tests/{id}.rs") {
                listed.insert(name.clone());
            }
        }
        for name in tests_present.unwrap_or_default() {
            if !listed.contains(&name) {
                problems.push(format!(
                    "tests/{id}.rs::{name} is listed in no theorems/{id}.md"
                ));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::test_functions;

    #[test]
    fn finds_plain_and_proptest_tests_but_not_helpers() {
        let src = "#[test]\nfn a() {}\nfn helper() {}\nproptest! {\n    #[test]\n    fn b(x in 0..1) {}\n}\n";
        let names: Vec<_> = test_functions(src).into_iter().collect();
        assert_eq!(names, vec!["a".to_string(), "b".to_string()]);
    }
}
