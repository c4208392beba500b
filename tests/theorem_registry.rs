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
    for id in ["tweedie", "miyasawa_covariance"] {
        let entry = registry::parse_entry(&root.join("theorems").join(format!("{id}.md"))).unwrap();
        assert!(!entry.tests.is_empty(), "theorems/{id}.md lists no test");
    }
}
