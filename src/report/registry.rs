//! The theorem registry: `theorems/<id>.md` files with front matter (`id`, `title`, `source`)
//! and a list of verifying tests, one per line, as
//! ``- `tests/<id>.rs::<test_name>` [role] — what it shows; tolerance``, where the optional
//! role is `[counterexample]` (a test showing that a statement fails as stated),
//! `[control]` (the positive control of a counterexample: the same machinery confirming a case
//! where the statement is true) or `[repair]` (a test of the repaired statement).
//!
//! A theorem's status is never written by hand: [`TheoremEntry::status`] derives it from these
//! roles and from the verify report (see [`Status`]).
//!
//! [`check`] keeps the registry true: every listed test exists, every test function in
//! `tests/<id>.rs` is listed, every file's id matches its name, no file writes a `status:`, and
//! every counterexample has its positive control and every repair its counterexample.

use crate::error::{Error, Result};
use crate::theorems::THEOREMS;
use std::collections::BTreeSet;
use std::path::Path;

/// The integration-test suites that are not a theorem's own `tests/<id>.rs` (every other file
/// in `tests/` must be named by a theorem id of [`THEOREMS`]).
pub(crate) const OTHER_TEST_SUITES: [&str; 7] = [
    "bench_workloads",
    "experiments",
    "fuzz_inputs",
    "gpu_parity",
    "image_data",
    "targets",
    "theorem_registry",
];

/// The files under `tests/` that are no suite: the one test binary's root, `proof_check.rs`,
/// which declares every suite as a module, and the suites' shared helpers, `common/`.
const HARNESS: [&str; 2] = ["common", "proof_check"];

/// What a listed test is evidence of, beyond "the statement holds here".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It shows a statement failing as stated.
    Counterexample,
    /// The positive control of a counterexample: the same machinery confirms a true case.
    Control,
    /// It checks the repaired statement.
    Repair,
}

/// One verifying test listed in a theorem file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTest {
    /// `tests/<file>.rs`.
    pub file: String,
    /// The test function's name.
    pub name: String,
    /// Its role, when it is a counterexample, a control or a repair.
    pub role: Option<Role>,
}

/// A theorem's status, derived from evidence: the roles of its listed tests and its verify rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No counterexample is listed and every verify row passed.
    Holds,
    /// A counterexample (with its control) and a test of the repaired statement are listed, and
    /// every verify row passed.
    HoldsWithRepair,
    /// A counterexample with its positive control is listed and no repair; every row passed.
    Counterexample,
    /// A verify row of the theorem failed (or the report has none of its rows).
    Fails,
}

impl Status {
    /// `holds` | `holds-with-repair` | `counterexample` | `FAILS`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Holds => "holds",
            Self::HoldsWithRepair => "holds-with-repair",
            Self::Counterexample => "counterexample",
            Self::Fails => "FAILS",
        }
    }
}

/// One parsed `theorems/<id>.md`.
#[derive(Debug, Clone)]
pub struct TheoremEntry {
    /// `id:` of the front matter.
    pub id: String,
    /// `title:`.
    pub title: String,
    /// `source:`.
    pub source: String,
    /// The listed tests.
    pub tests: Vec<ListedTest>,
}

impl TheoremEntry {
    /// The tests listed with `role`.
    pub(crate) fn with_role(&self, role: Role) -> impl Iterator<Item = &ListedTest> {
        self.tests.iter().filter(move |t| t.role == Some(role))
    }

    /// The status the evidence supports. `rows_passed` is, for a verify report, whether every
    /// one of this theorem's rows passed (`None` when no report is at hand: then the status is
    /// what the listed tests show, and the caller says it is unverified; `Some(false)` when a
    /// row failed or the report has none). A failing row always gives [`Status::Fails`]; a
    /// counterexample without its positive control, or a repair without its counterexample, is
    /// not evidence of either and leaves the status at what the rest shows.
    pub fn status(&self, rows_passed: Option<bool>) -> Status {
        if rows_passed == Some(false) {
            return Status::Fails;
        }
        let shown = self.with_role(Role::Counterexample).next().is_some()
            && self.with_role(Role::Control).next().is_some();
        let repaired = self.with_role(Role::Repair).next().is_some();
        match (shown, repaired) {
            (true, true) => Status::HoldsWithRepair,
            (true, false) => Status::Counterexample,
            (false, _) => Status::Holds,
        }
    }
}

/// Parses one theorem file.
pub fn parse_entry(path: &Path) -> Result<TheoremEntry> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |reason: &str| Error::InvalidArgument {
        what: path.display().to_string().into(),
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
    if let Some(status) = field("status", &front) {
        return Err(bad(&format!(
            "writes 'status: {status}', but a status is derived from the tests and the verify \
             report, never written by hand: delete the line"
        )));
    }
    let mut tests = Vec::new();
    for rest in text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- `tests/"))
    {
        let Some((cite, after)) = rest.split_once('`') else {
            continue;
        };
        let Some((file, name)) = cite.split_once("::") else {
            continue;
        };
        let role = match after.trim_start() {
            a if a.starts_with("[counterexample]") => Some(Role::Counterexample),
            a if a.starts_with("[control]") => Some(Role::Control),
            a if a.starts_with("[repair]") => Some(Role::Repair),
            a if a.starts_with('[') => {
                return Err(bad(&format!(
                    "tests/{cite}: unknown role '{}' (counterexample | control | repair)",
                    a.split(']').next().unwrap_or(a)
                )))
            }
            _ => None,
        };
        tests.push(ListedTest {
            file: format!("tests/{file}"),
            name: name.to_string(),
            role,
        });
    }
    Ok(TheoremEntry {
        id,
        title,
        source,
        tests,
    })
}

/// Names of the test functions in a test file: every `fn name` that follows a `#[test]`
/// attribute or stands inside a `proptest!` block (helpers live in `tests/common/`).
pub(crate) fn test_functions(source: &str) -> BTreeSet<String> {
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

/// The names (file stems, or folder names) of the `.rs` files and folders directly in `dir`.
fn rust_items(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        match (stem, path.is_dir(), path.extension()) {
            (Some(stem), true, _) => {
                out.insert(stem);
            }
            (Some(stem), false, Some(ext)) if ext == "rs" => {
                out.insert(stem);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The problems that connect the table of theorems ([`THEOREMS`]) to the files under `root`: a
/// duplicated id; a theorem module, `theorems/*.md` or `tests/*.rs` whose name is in no table
/// line (except `src/theorems/mod.rs` and [`OTHER_TEST_SUITES`]); a table line without its
/// module, `tests/<id>.rs` or `theorems/<id>.md`; a file title that differs from the table's.
fn table_problems(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let ids: BTreeSet<&str> = THEOREMS.iter().map(|t| t.id).collect();
    if ids.len() != THEOREMS.len() {
        problems.push("the table of theorems lists an id twice".to_string());
    }
    let modules = rust_items(&root.join("src").join("theorems"))?;
    let suites = rust_items(&root.join("tests"))?;
    let docs: BTreeSet<String> = std::fs::read_dir(root.join("theorems"))
        .map_err(|e| Error::io(root.join("theorems"), e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".md").map(str::to_string)
        })
        .collect();
    for m in modules
        .iter()
        .filter(|m| *m != "mod" && !ids.contains(m.as_str()))
    {
        problems.push(format!(
            "src/theorems/{m} is a theorem module in no line of theorems::THEOREMS"
        ));
    }
    for s in suites
        .iter()
        .filter(|s| !HARNESS.contains(&s.as_str()) && !ids.contains(s.as_str()))
        .filter(|s| !OTHER_TEST_SUITES.contains(&s.as_str()))
    {
        problems.push(format!(
            "tests/{s}.rs is neither a theorem's test file (no line of theorems::THEOREMS) nor \
             one of registry::OTHER_TEST_SUITES"
        ));
    }
    // autotests are off: a suite runs only as a module of the one test binary
    let harness = root.join("tests").join("proof_check.rs");
    let declared: BTreeSet<String> = std::fs::read_to_string(&harness)
        .map_err(|e| Error::io(&harness, e))?
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect();
    for s in suites
        .iter()
        .filter(|s| !HARNESS.contains(&s.as_str()) && !declared.contains(s.as_str()))
    {
        problems.push(format!(
            "tests/{s} is not declared in tests/proof_check.rs (`mod {s};`), so it never runs"
        ));
    }
    for d in docs.iter().filter(|d| !ids.contains(d.as_str())) {
        problems.push(format!(
            "theorems/{d}.md is in no line of theorems::THEOREMS"
        ));
    }
    for t in &THEOREMS {
        if !modules.contains(t.id) {
            problems.push(format!("theorem '{}' has no module src/theorems/{0}", t.id));
        }
        if !suites.contains(t.id) {
            problems.push(format!("theorem '{}' has no tests/{0}.rs", t.id));
        }
        let md = root.join("theorems").join(format!("{}.md", t.id));
        if md.exists() {
            let entry = parse_entry(&md)?;
            if entry.title != t.title {
                problems.push(format!(
                    "theorems/{}.md has title '{}', the table '{}'",
                    t.id, entry.title, t.title
                ));
            }
        }
    }
    Ok(problems)
}

/// Every problem of the registry under `root` (the crate root), empty when it is true:
/// the table's problems (a module, test file or theorem file in no table line, or a table line
/// missing one of them; see `table_problems`), a file whose id differs from its name, a listed
/// test that does not exist, a test function in `tests/<id>.rs` listed nowhere, a theorem id
/// without `theorems/<id>.md`, a counterexample without a positive control, a repair without a
/// counterexample.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = table_problems(root)?;
    for id in THEOREMS.iter().map(|t| t.id) {
        let md = root.join("theorems").join(format!("{id}.md"));
        let test_file = root.join("tests").join(format!("{id}.rs"));
        let tests_present = if test_file.exists() {
            let src = std::fs::read_to_string(&test_file).map_err(|e| Error::io(&test_file, e))?;
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
        let has = |role| entry.with_role(role).next().is_some();
        if has(Role::Counterexample) && !has(Role::Control) {
            problems.push(format!(
                "theorems/{id}.md lists a [counterexample] but no [control]: a counterexample \
                 is shown only beside the same machinery confirming a true case"
            ));
        }
        if has(Role::Repair) && !has(Role::Counterexample) {
            problems.push(format!(
                "theorems/{id}.md lists a [repair] but no [counterexample] it repairs"
            ));
        }
        let mut listed = BTreeSet::new();
        for ListedTest { file, name, .. } in &entry.tests {
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
