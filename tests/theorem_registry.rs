//! The theorem registry stays true: every test listed in theorems/*.md exists, and every test in
//! tests/<theorem_id>.rs is listed in its theorem's file.

use diffusion_theorems::report::registry;
use diffusion_theorems::theorems::{Depth, ToleranceKind, Verdict};

/// A verify row of `theorem` with a derived tolerance, power 3 and the given result.
fn row(theorem: &str, passed: bool) -> Verdict {
    Verdict {
        theorem: theorem.into(),
        claim: "c".into(),
        cases: 1,
        max_residual: 0.0,
        tolerance: 1.0,
        tolerance_kind: ToleranceKind::Derived,
        tolerance_basis: "b".into(),
        planted_variant: "p".into(),
        power: 3.0,
        backend: "cpu-f64".into(),
        passed,
        seconds: 0.0,
        error: None,
        tolerance_log_mean: 0.0,
        planted_log_mean: 1.0,
        depth: Depth::Default,
        false_failure: 0.0,
    }
}

#[test]
fn every_listed_test_exists_and_every_theorem_test_is_listed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let problems = registry::check(root).unwrap();
    assert!(
        problems.is_empty(),
        "registry problems:\n{}",
        problems.join("\n")
    );
    for id in diffusion_theorems::theorems::THEOREMS.iter().map(|t| t.id) {
        let md = root.join("theorems").join(format!("{id}.md"));
        if md.exists() {
            let entry = registry::parse_entry(&md).unwrap();
            assert!(!entry.tests.is_empty(), "theorems/{id}.md lists no test");
        }
    }
}

/// Adding a theorem touches its module, `theorems/<id>.md`, `tests/<id>.rs` and one line of the
/// table (and its `mod` line in `tests/proof_check.rs`): on a copy of the tree where one of them
/// is missing or extra, the registry check names it (the real tree has none of these problems,
/// see the test above).
#[test]
fn a_theorem_missing_from_the_table_or_its_files_is_named() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::env::temp_dir().join(format!("registry-copy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    for dir in ["src/theorems", "tests", "theorems"] {
        std::fs::create_dir_all(copy.join(dir)).unwrap();
    }
    std::fs::write(copy.join("src/theorems/mod.rs"), "").unwrap();
    let harness: String = diffusion_theorems::theorems::THEOREMS
        .iter()
        .map(|t| format!("mod {};\n", t.id))
        .collect();
    std::fs::write(copy.join("tests/proof_check.rs"), harness).unwrap();
    for t in &diffusion_theorems::theorems::THEOREMS {
        std::fs::write(copy.join(format!("src/theorems/{}.rs", t.id)), "").unwrap();
        std::fs::write(copy.join(format!("tests/{}.rs", t.id)), "").unwrap();
        let md = format!("theorems/{}.md", t.id);
        std::fs::copy(root.join(&md), copy.join(&md)).unwrap();
    }
    let problems = |c: &std::path::Path| registry::check(c).unwrap().join("\n");
    let complete = problems(&copy);
    assert!(
        !complete.contains("THEOREMS") && !complete.contains("has no"),
        "{complete}"
    );
    std::fs::write(copy.join("src/theorems/new_claim.rs"), "").unwrap();
    std::fs::write(copy.join("tests/new_claim.rs"), "").unwrap();
    std::fs::write(
        copy.join("theorems/new_claim.md"),
        "---\nid: new_claim\n---\n",
    )
    .unwrap();
    std::fs::remove_file(copy.join("tests/sure.rs")).unwrap();
    std::fs::remove_file(copy.join("src/theorems/rank_k.rs")).unwrap();
    let found = problems(&copy);
    std::fs::remove_dir_all(&copy).unwrap();
    for expected in [
        "src/theorems/new_claim is a theorem module in no line",
        "tests/new_claim.rs is neither a theorem's test file",
        "tests/new_claim is not declared in tests/proof_check.rs",
        "theorems/new_claim.md is in no line",
        "theorem 'sure' has no tests/sure.rs",
        "theorem 'rank_k' has no module src/theorems/rank_k",
    ] {
        assert!(found.contains(expected), "'{expected}' not in:\n{found}");
    }
}

/// The appendix names every registered theorem and every listed test, in both formats, and
/// carries a report's claims with their provenance; LaTeX special characters are escaped.
#[test]
fn appendix_lists_every_registered_theorem_and_reported_claim() {
    use diffusion_theorems::report::appendix::{appendix, entries, Format, ReadReport};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = ReadReport {
        version: "9.9.9".into(),
        commit: Some("abc1234".into()),
        adapter: "test_adapter & co".into(),
        depth: Depth::Thorough,
        verdicts: vec![Verdict {
            claim: "50% of a_b".into(),
            cases: 3,
            max_residual: 1.5e-12,
            tolerance: 2e-11,
            planted_variant: "σ for σ²".into(),
            power: 4.0,
            ..row("sure", true)
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
        for registry::ListedTest { file, name, .. } in &e.tests {
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
    assert!(markdown.contains("| derived | σ for σ² | 4.000e0 |"));
    assert!(latex.contains("50\\% of a\\_b") && latex.contains("test\\_adapter \\& co"));
}

/// Status is computed, never written: a failing verify row prints FAILS whatever the tests say;
/// a counterexample counts only with its positive control; without a report the status says so.
#[test]
fn status_is_derived_from_rows_and_test_roles() {
    use diffusion_theorems::report::appendix::{status_text, ReadReport};
    use registry::{ListedTest, Role, Status, TheoremEntry};
    let listed = |name: &str, role| ListedTest {
        file: "tests/x.rs".into(),
        name: name.into(),
        role,
    };
    let mut entry = TheoremEntry {
        id: "x".into(),
        title: "t".into(),
        source: "s".into(),
        tests: vec![listed("plain", None)],
    };
    assert_eq!(entry.status(Some(true)), Status::Holds);
    assert_eq!(entry.status(Some(false)), Status::Fails);
    entry
        .tests
        .push(listed("fails", Some(Role::Counterexample)));
    assert_eq!(
        entry.status(Some(true)),
        Status::Holds,
        "no control: not shown"
    );
    entry.tests.push(listed("control", Some(Role::Control)));
    assert_eq!(entry.status(Some(true)), Status::Counterexample);
    entry.tests.push(listed("repaired", Some(Role::Repair)));
    assert_eq!(entry.status(Some(true)), Status::HoldsWithRepair);
    assert_eq!(entry.status(Some(false)), Status::Fails);
    let reported = |passed, power| Verdict {
        power,
        ..row("x", passed)
    };
    let report = |verdicts| ReadReport {
        version: "0".into(),
        commit: None,
        adapter: "a".into(),
        depth: Depth::Default,
        verdicts,
    };
    assert_eq!(
        status_text(&entry, Some(&report(vec![reported(true, 3.0)]))),
        "holds-with-repair"
    );
    assert_eq!(
        status_text(&entry, Some(&report(vec![reported(false, 3.0)]))),
        "FAILS"
    );
    assert_eq!(
        status_text(&entry, Some(&report(vec![reported(true, 0.5)]))),
        "FAILS",
        "a row without power proves nothing"
    );
    assert_eq!(status_text(&entry, Some(&report(vec![]))), "FAILS");
    assert_eq!(
        status_text(&entry, None),
        "holds-with-repair (unverified: no report)"
    );
}

/// `appendix` fails clearly instead of printing an empty table: run outside the crate root it
/// names the folder without `theorems/`, and a `--report` that does not exist is an error naming
/// it (exit 2 both); at the root it prints every registered theorem.
#[test]
fn appendix_command_refuses_a_missing_registry_or_report() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let elsewhere = std::env::temp_dir();
    let out = std::process::Command::new(exe)
        .arg("appendix")
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("theorems/"), "{stderr}");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(exe)
        .args(["appendix", "--report", "/nonexistent/report.json"])
        .current_dir(root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/report.json"), "{stderr}");
    let out = std::process::Command::new(exe)
        .arg("appendix")
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for t in &diffusion_theorems::theorems::THEOREMS {
        assert!(text.contains(&format!("`{}`", t.id)), "{} missing", t.id);
    }
}

/// `verify --report` into a place that cannot be written fails at once with exit 2 naming the
/// path, before any theorem runs (it used to fail only after the whole run).
#[test]
fn verify_refuses_an_unwritable_report_before_running() {
    let file = std::env::temp_dir().join(format!("dt-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "a file, not a folder").unwrap();
    let report = file.join("report.json");
    let start = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffusion-theorems"))
        .arg("verify")
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("dt-not-a-dir"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran, so nothing was printed");
    assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
    std::fs::remove_file(&file).unwrap();
}

/// The crate's layers (its doc, "Layers"): every `crate::<module>` path in a file of `src/<m>`
/// names a module of a lower layer than m. Fails naming the file and the upward path.
#[test]
fn layers_point_one_way() {
    const LAYERS: [(&str, u32); 14] = [
        ("error", 1),
        ("rng", 1),
        ("numerics", 1),
        ("linalg", 2),
        ("io", 3),
        ("targets", 4),
        ("stats", 5),
        ("gpu", 5),
        ("denoisers", 6),
        ("diffusion", 7),
        ("theorems", 8),
        ("experiments", 9),
        ("bench", 9),
        ("report", 10),
    ];
    let layer = |m: &str| LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l);
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut upward = vec![];
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        let Some(own) = layer(module) else {
            continue; // lib.rs, main.rs
        };
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let used: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(theirs) = layer(&used) {
                    if used != module && theirs >= own {
                        upward.push(format!("{}: crate::{used}", relative.display()));
                    }
                }
            }
        }
    }
    assert!(upward.is_empty(), "paths to a layer not below: {upward:#?}");
}

/// `verify` selects theorems by id and speaks to CI: `verify tweedie --format junit` prints
/// JUnit XML with one testcase per tweedie claim, named by its id, and writes the report;
/// `verify --list` names every claim of the table (`<theorem>.<k>`) without running any;
/// an unknown id exits 2 naming it; and without an adapter, where only GPU claims cannot run,
/// the exit status is 3, not the 1 of a failed claim. The runs are at `--quick`: what is
/// checked is the selection, the formats and the exit codes, the same at every depth (every
/// default-depth tweedie row is run by `tweedie::verify_rows_reproduce_their_pinned_numbers`).
#[test]
fn verify_selects_lists_and_speaks_junit() {
    use diffusion_theorems::theorems::THEOREMS;
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let dir = std::env::temp_dir().join(format!("dt-verify-formats-{}", std::process::id()));
    let report = dir.join("report.json");
    let verify = |args: &[&str]| {
        std::process::Command::new(exe)
            .arg("verify")
            .args(args)
            .arg("--report")
            .arg(&report)
            .output()
            .unwrap()
    };
    let junit = verify(&["tweedie", "--quick", "--format", "junit"]);
    assert_eq!(junit.status.code(), Some(0));
    let xml = String::from_utf8(junit.stdout).unwrap();
    let tweedie = THEOREMS.iter().find(|t| t.id == "tweedie").unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), tweedie.claims.len());
    assert_eq!(xml.matches("<testsuite ").count(), 1);
    for k in 1..=tweedie.claims.len() {
        assert!(xml.contains(&format!("name=\"tweedie.{k}: ")), "{xml}");
    }
    assert!(report.is_file());

    let list = verify(&["--list"]);
    let listed = String::from_utf8(list.stdout).unwrap();
    for t in &THEOREMS {
        for (k, c) in t.claims.iter().enumerate() {
            assert_eq!(c.theorem, t.id, "{} lists a claim of {}", t.id, c.theorem);
            assert!(listed.contains(&format!("{}.{} ", t.id, k + 1)), "{listed}");
        }
    }

    let unknown = verify(&["tweedie", "no_such_theorem"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no_such_theorem"));

    let no_adapter = std::process::Command::new(exe)
        .args(["verify", "tweedie", "--quick", "--report"])
        .arg(&report)
        .env("WGPU_BACKEND", "no_such_backend")
        .output()
        .unwrap();
    assert_eq!(
        no_adapter.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&no_adapter.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `verify --quick` and `--thorough` run every claim at fewer and more cases: polynomial_moments
/// through the binary at the three depths (the report and the header state the depth, the cases
/// and the family-wise false-failure probability) and tweedie's analytic-score cases; every row
/// passes and rejects its planted variant at every depth; `--quick --thorough` is refused.
#[test]
fn verify_depths_scale_cases_and_keep_power() {
    use diffusion_theorems::theorems::tweedie;
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let dir = std::env::temp_dir().join(format!("dt-verify-depths-{}", std::process::id()));
    let report = dir.join("report.json");
    let run = |flag: Option<&str>| -> (serde_json::Value, String) {
        let out = std::process::Command::new(exe)
            .args(["verify", "polynomial_moments"])
            .args(flag)
            .arg("--report")
            .arg(&report)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let text = std::fs::read_to_string(&report).unwrap();
        (serde_json::from_str(&text).unwrap(), stdout)
    };
    let mut totals = Vec::new();
    for (flag, label) in [
        (Some("--quick"), "quick"),
        (None, "default"),
        (Some("--thorough"), "thorough"),
    ] {
        let (json, stdout) = run(flag);
        assert_eq!(json["depth"], label);
        let rows = json["verdicts"].as_array().unwrap();
        let cases: u64 = rows.iter().map(|r| r["cases"].as_u64().unwrap()).sum();
        for r in rows {
            assert_eq!(r["depth"], label);
            assert_eq!(r["passed"], true, "{r}");
            assert!(r["power"].as_f64().unwrap() > 1.0, "{r}");
        }
        // polynomial_moments' rows are deterministic: nothing to fail by chance
        assert_eq!(json["false_failure"].as_f64(), Some(0.0));
        let header = format!("depth {label}: {} claims, {cases} cases", rows.len());
        assert!(stdout.contains(&header), "{header} not in {stdout}");
        totals.push(cases);
    }
    assert!(totals[0] < totals[1] && totals[1] < totals[2], "{totals:?}");

    let sizes: Vec<usize> = Depth::ALL
        .iter()
        .map(|&depth| {
            let cases = tweedie::analytic_score_cases(depth).unwrap();
            assert!(cases.iter().all(|c| c.check.passed()));
            assert!(diffusion_theorems::theorems::power(&cases) > 1.0);
            cases.len()
        })
        .collect();
    assert_eq!(sizes, vec![72, 288, 1152]);

    let both = std::process::Command::new(exe)
        .args(["verify", "--quick", "--thorough"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--thorough"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `verify --shard i/n` runs its share of the selection and writes it as JSONL keyed by
/// (claim, cases, seed, commit), and `merge` joins the shards: four shards of four theorems at
/// `--quick` (two by `i/n`, one as a Slurm array task, one as a Kubernetes indexed Job, via `--shard
/// env`), merged, equal the unsharded run of the same selection claim for claim and number for
/// number (cases, residual, tolerance, power, both log-mean fingerprints, outcome). The merged
/// report names every claim of the registry no shard ran (exit 1); a rerun of a shard keeps its
/// keys and merging it twice keeps one row per key; lines of two commits, or one key with two
/// outcomes, are refused (exit 2, naming them).
#[test]
fn verify_shards_merge_into_one_report() {
    use diffusion_theorems::theorems::THEOREMS;
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let dir = std::env::temp_dir().join(format!("dt-verify-shards-{}", std::process::id()));
    let shards = dir.join("shards");
    // the four quickest theorems (about a second together on an idle 2-core box)
    let selection = [
        "tweedie",
        "miyasawa_covariance",
        "polynomial_moments",
        "bottleneck_manifold",
    ];
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(exe);
        command.args(args).envs(env.iter().copied());
        command.output().unwrap()
    };
    let verify = |shard: Option<&str>, env: &[(&str, &str)], report: &std::path::Path| {
        // at --quick: what is checked is the sharding, which is the same at every depth
        let mut args = vec!["verify", "--quick"];
        args.extend(selection);
        let shard_dir = shards.display().to_string();
        if let Some(spec) = shard {
            args.extend(["--shard", spec, "--shard-dir", &shard_dir]);
        }
        let report = report.display().to_string();
        args.extend(["--report", &report]);
        let done = run(&args, env);
        assert_eq!(
            done.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    };
    let whole = dir.join("unsharded.json");
    verify(None, &[], &whole);
    let shard_report = dir.join("shard.json");
    verify(Some("0/4"), &[], &shard_report);
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    verify(Some("env"), &slurm, &shard_report);
    verify(Some("2/4"), &[], &shard_report);
    let k8s = [("JOB_COMPLETION_INDEX", "3"), ("JOB_COMPLETIONS", "4")];
    verify(Some("env"), &k8s, &shard_report);
    let files: Vec<std::path::PathBuf> = (0..4)
        .map(|i| shards.join(format!("shard-{i}-of-4.jsonl")))
        .collect();
    let keys = |path: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].clone())
            .collect()
    };
    let claims = |id: &str| THEOREMS.iter().find(|t| t.id == id).unwrap().claims.len();
    // the selection runs in the registry's order; shard i of 4 holds its (i+1)-th theorem
    let registry_order: Vec<&str> = THEOREMS
        .iter()
        .map(|t| t.id)
        .filter(|id| selection.contains(id))
        .collect();
    for (file, id) in files.iter().zip(&registry_order) {
        assert_eq!(keys(file).len(), claims(id), "{}", file.display());
    }
    assert_eq!(
        keys(&files[0])[0]["claim"],
        format!("{}.1", registry_order[0])
    );
    assert_eq!(keys(&files[0])[0]["seed"], "fixed");
    let before = keys(&files[0]);
    verify(Some("0/4"), &[], &shard_report);
    assert_eq!(keys(&files[0]), before, "a rerun of a shard keeps its keys");

    let report = dir.join("merged.json");
    let merge = |files: &[&std::path::Path]| {
        let mut args = vec!["merge".to_string()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend(["--report".to_string(), report.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, &[])
    };
    // shard 0 twice over: one row per key
    let merged = merge(&[&files[0], &files[1], &files[2], &files[3], &files[0]]);
    let stdout = String::from_utf8_lossy(&merged.stdout);
    assert_eq!(merged.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("no shard ran") && stdout.contains("sure.1"),
        "{stdout}"
    );
    let read = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (joined, unsharded) = (read(&report), read(&whole));
    assert_eq!(joined["passed"], false, "claims are missing");
    let (rows, expected) = (
        joined["verdicts"].as_array().unwrap(),
        unsharded["verdicts"].as_array().unwrap(),
    );
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(expected) {
        for field in [
            "theorem",
            "claim",
            "cases",
            "max_residual",
            "tolerance",
            "power",
            "tolerance_log_mean",
            "planted_log_mean",
            "passed",
        ] {
            assert_eq!(row[field], want[field], "{field} of {}", want["claim"]);
        }
    }

    // one key with two outcomes, and lines of two commits
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let line = text.lines().next().unwrap();
    let flipped = dir.join("flipped.jsonl");
    std::fs::write(
        &flipped,
        line.replace("\"passed\":true", "\"passed\":false"),
    )
    .unwrap();
    let conflict = merge(&[&files[0], &flipped]);
    assert_eq!(conflict.status.code(), Some(2));
    let first_claim = format!("{}.1", registry_order[0]);
    assert!(String::from_utf8_lossy(&conflict.stderr).contains(&first_claim));
    let commit = keys(&files[0])[0]["commit"].as_str().unwrap().to_string();
    let other = dir.join("other-commit.jsonl");
    std::fs::write(
        &other,
        line.replace(
            &format!("\"commit\":\"{commit}\""),
            "\"commit\":\"0000000\"",
        ),
    )
    .unwrap();
    let commits = merge(&[&files[0], &other]);
    assert_eq!(commits.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&commits.stderr).contains("0000000"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The deploy examples stay runnable: every `--flag` their verify and merge lines use is one
/// the binary's help lists, and the indexed Job's `JOB_COMPLETIONS` equals its `completions`
/// (the shard count `--shard env` reads).
#[test]
fn deploy_examples_match_the_cli() {
    let exe = env!("CARGO_BIN_EXE_diffusion-theorems");
    let help = |sub: &str| {
        let out = std::process::Command::new(exe)
            .args([sub, "--help"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (verify, merge) = (help("verify"), help("merge"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let sbatch = std::fs::read_to_string(root.join("slurm/verify-array.sbatch")).unwrap();
    let job = std::fs::read_to_string(root.join("k8s/verify-indexed-job.yaml")).unwrap();
    for text in [&sbatch, &job] {
        for line in text.lines() {
            let flags = || {
                line.split(|c: char| c.is_whitespace() || c == '"')
                    .filter(|w| w.starts_with("--") && w.len() > 2 && !w.contains('='))
            };
            let line_help = if line.contains("verify") || line.trim_start().starts_with("- --") {
                &verify
            } else if line.contains("merge") {
                &merge
            } else {
                continue;
            };
            for flag in flags() {
                assert!(
                    line_help.contains(flag),
                    "{flag} in `{line}` is not in the help"
                );
            }
        }
    }
    let value_after = |key: &str| -> String {
        let at = job.find(key).unwrap_or_else(|| panic!("{key} missing"));
        job[at + key.len()..]
            .lines()
            .next()
            .unwrap()
            .trim()
            .trim_matches('"')
            .to_string()
    };
    let completions = value_after("completions:");
    let at = job.find("name: JOB_COMPLETIONS").unwrap();
    let declared = job[at..]
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .trim_start_matches("value:")
        .trim()
        .trim_matches('"')
        .to_string();
    assert_eq!(completions, declared);
}
