//! The theorem registry stays true: every test listed in theorems/*.md exists, and every test in
//! tests/<theorem_id>.rs is listed in its theorem's file.

use diffusion_theorems::report::registry;

#[test]
fn every_listed_test_exists_and_every_theorem_test_is_listed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let problems = registry::check(root).unwrap();
    assert!(
        problems.is_empty(),
        "registry problems:\n{}",
        problems.join("\n")
    );
    for id in registry::THEOREM_IDS {
        let md = root.join("theorems").join(format!("{id}.md"));
        if md.exists() {
            let entry = registry::parse_entry(&md).unwrap();
            assert!(!entry.tests.is_empty(), "theorems/{id}.md lists no test");
        }
    }
}

/// The appendix names every registered theorem and every listed test, in both formats, and
/// carries a report's claims with their provenance; LaTeX special characters are escaped.
#[test]
fn appendix_lists_every_registered_theorem_and_reported_claim() {
    use diffusion_theorems::report::appendix::{
        appendix, entries, Format, ReadReport, ReportedClaim,
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = ReadReport {
        version: "9.9.9".into(),
        commit: Some("abc1234".into()),
        adapter: "test_adapter & co".into(),
        verdicts: vec![ReportedClaim {
            theorem: "sure".into(),
            claim: "50% of a_b".into(),
            cases: 3,
            max_residual: 1.5e-12,
            tolerance: 2e-11,
            backend: "cpu-f64".into(),
            passed: true,
        }],
    };
    let (found, _) = entries(root).unwrap();
    let markdown = appendix(root, Some(&report), Format::Markdown).unwrap();
    let latex = appendix(root, Some(&report), Format::Latex).unwrap();
    for e in &found {
        assert!(
            markdown.contains(&format!("`{}`", e.id)),
            "{} missing from markdown",
            e.id
        );
        for (file, name) in &e.tests {
            assert!(
                markdown.contains(&format!("{file}::{name}")),
                "{file}::{name} missing"
            );
            assert!(latex.contains(&format!(
                "{}::{}",
                file.replace('_', "\\_"),
                name.replace('_', "\\_")
            )));
        }
    }
    assert!(markdown.contains("9.9.9 (commit abc1234)") && markdown.contains("1.500e-12"));
    assert!(latex.contains("50\\% of a\\_b") && latex.contains("test\\_adapter \\& co"));
}
