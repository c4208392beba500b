//! `verify` spread over many machines: which theorems a shard runs, the JSONL each shard
//! writes, and `merge`, which joins the shards' lines into one report that `appendix` reads.
//!
//! **The unit of work is the theorem**: a theorem's rows share their cases and fixtures, so they
//! run together; shard `i` of `n` runs the theorems at positions `p ≡ i (mod n)` of the
//! selection (the registry order). Each row becomes one JSON line keyed by
//! `(claim, cases, seed, commit)`: the claim id `<theorem>.<k>`, the range of case indices the
//! row covers (`[0, cases)`: every case of the row, as the default depth runs them), the seed
//! (`fixed`: every random input of a row comes from seeds written in its code) and the commit.
//! A shard writes `shard-<i>-of-<n>.jsonl` whole (to a `.tmp` file, then renamed), so rerunning
//! a shard replaces its file with the same keys: reruns are idempotent.
//!
//! **Merging** checks that every line comes from one commit, keeps one line per key (a key seen
//! twice must agree on pass/fail, else a typed error names it: the rows are deterministic, so a
//! disagreement means a broken machine or a changed tree), orders the rows as the registry does,
//! and names every claim of the registry that no shard reported.

use crate::error::{Error, Result};
use crate::theorems::{Depth, Theorem, Verdict, THEOREMS};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based position of this shard.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Parses `i/n` (0 ≤ i < n), or `env`: the shard of a Slurm array task
    /// (`SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`; the minimum
    /// defaults to 0) or of a Kubernetes indexed Job (`JOB_COMPLETION_INDEX` of
    /// `JOB_COMPLETIONS`, which the Job's manifest sets to its `completions`). `var` looks a
    /// variable up (`std::env::var` in the binary).
    pub fn parse(spec: &str, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let number = |name: &str, text: &str| -> Result<usize> {
            text.trim().parse().map_err(|_| Error::InvalidArgument {
                what: "--shard".into(),
                reason: format!("{name} = '{text}' is not a non-negative integer"),
            })
        };
        let (index, count) = if spec == "env" {
            if let (Some(id), Some(count)) =
                (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT"))
            {
                let min = match var("SLURM_ARRAY_TASK_MIN") {
                    Some(m) => number("SLURM_ARRAY_TASK_MIN", &m)?,
                    None => 0,
                };
                let id = number("SLURM_ARRAY_TASK_ID", &id)?;
                let index = id.checked_sub(min).ok_or_else(|| Error::InvalidArgument {
                    what: "--shard env".into(),
                    reason: format!(
                        "SLURM_ARRAY_TASK_ID = {id} is below SLURM_ARRAY_TASK_MIN = {min}"
                    ),
                })?;
                (index, number("SLURM_ARRAY_TASK_COUNT", &count)?)
            } else if let Some(index) = var("JOB_COMPLETION_INDEX") {
                let count = var("JOB_COMPLETIONS").ok_or_else(|| Error::InvalidArgument {
                    what: "--shard env".into(),
                    reason: "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS (the Job's \
                             completions, set in its manifest) is not"
                        .into(),
                })?;
                (
                    number("JOB_COMPLETION_INDEX", &index)?,
                    number("JOB_COMPLETIONS", &count)?,
                )
            } else {
                return Err(Error::InvalidArgument {
                    what: "--shard env".into(),
                    reason: "neither SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT nor \
                             JOB_COMPLETION_INDEX is set"
                        .into(),
                });
            }
        } else {
            let (i, n) = spec.split_once('/').ok_or_else(|| Error::InvalidArgument {
                what: "--shard".into(),
                reason: format!("'{spec}' is neither i/n nor env"),
            })?;
            (number("i", i)?, number("n", n)?)
        };
        if count == 0 || index >= count {
            return Err(Error::InvalidArgument {
                what: "--shard".into(),
                reason: format!("shard {index} of {count}: need 0 ≤ i < n"),
            });
        }
        Ok(Self { index, count })
    }

    /// The theorems of `selected` this shard runs: positions `p ≡ index (mod count)`.
    pub fn pick<'t>(&self, selected: &[&'t Theorem]) -> Vec<&'t Theorem> {
        selected
            .iter()
            .enumerate()
            .filter(|(p, _)| p % self.count == self.index)
            .map(|(_, t)| *t)
            .collect()
    }

    /// `shard-<i>-of-<n>.jsonl`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.jsonl", self.index, self.count)
    }
}

/// What identifies a row's result: rerunning the same key must give the same outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowKey {
    /// `<theorem>.<k>` (see [`super::claim_ids`]).
    pub claim: String,
    /// The case indices covered, `[start, end)`.
    pub cases: [usize; 2],
    /// Where the random inputs come from: `fixed` (seeds written in the row's code).
    pub seed: String,
    /// The commit that ran it (`unknown` outside a git checkout).
    pub commit: String,
    /// The depth it ran at (`verify --quick` / default / `--thorough`).
    #[serde(default)]
    pub depth: Depth,
}

/// One line of a shard's JSONL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardLine {
    /// The row's key.
    pub key: RowKey,
    /// The adapter that ran the shard, or the error that prevented one.
    pub adapter: String,
    /// The row.
    pub verdict: Verdict,
}

/// The JSON lines of a shard's rows, one per verdict, keyed as the module says.
pub fn lines(verdicts: &[Verdict], adapter: &str, commit: Option<&str>) -> Result<String> {
    let ids = super::claim_ids(verdicts);
    let mut text = String::new();
    for (verdict, claim) in verdicts.iter().zip(ids) {
        let line = ShardLine {
            key: RowKey {
                claim,
                cases: [0, verdict.cases],
                seed: "fixed".into(),
                commit: commit.unwrap_or("unknown").into(),
                depth: verdict.depth,
            },
            adapter: adapter.into(),
            verdict: verdict.clone(),
        };
        text += &serde_json::to_string(&line).map_err(|e| Error::Json {
            path: "<shard line>".into(),
            reason: e.to_string(),
            source: Some(e),
        })?;
        text.push('\n');
    }
    Ok(text)
}

/// Writes `lines` to `dir/<shard file>` whole: to a `.tmp` file first, then renamed, so a
/// killed shard leaves no partial file under the final name. Returns the path.
pub fn write(dir: &Path, shard: Shard, lines: &str) -> Result<std::path::PathBuf> {
    let io = |path: &Path, e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
        source: Some(e),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(shard.file_name());
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, lines).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok(path)
}

/// The shards joined: one row per claim in registry order, and what is missing.
#[derive(Debug)]
pub struct Merged {
    /// The commit every line came from.
    pub commit: String,
    /// The depth every line ran at.
    pub depth: Depth,
    /// The adapters the shards ran on (distinct, in order of first appearance), joined by "; ".
    pub adapter: String,
    /// One verdict per claim reported, in the registry's order.
    pub verdicts: Vec<Verdict>,
    /// Claims of the registry that no shard reported.
    pub missing: Vec<String>,
}

/// Joins the lines of shard files (`(file name, its text)`), as the module says. Errors name the
/// file and line: a line that is not a shard line, two commits, or one key with two outcomes.
pub fn merge(files: &[(String, String)]) -> Result<Merged> {
    let mut rows: Vec<ShardLine> = Vec::new();
    let mut adapters: Vec<String> = Vec::new();
    for (name, text) in files {
        for (n, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line: ShardLine = serde_json::from_str(raw).map_err(|e| Error::Json {
                path: format!("{name}:{}", n + 1),
                reason: e.to_string(),
                source: Some(e),
            })?;
            if let Some(first) = rows.first() {
                if first.key.commit != line.key.commit {
                    return Err(Error::InvalidArgument {
                        what: format!("{name}:{}", n + 1).into(),
                        reason: format!(
                            "comes from commit {} but earlier lines from {}: merge shards of one \
                             commit",
                            line.key.commit, first.key.commit
                        ),
                    });
                }
            }
            if let Some(first) = rows.first() {
                if first.key.depth != line.key.depth {
                    return Err(Error::InvalidArgument {
                        what: format!("{name}:{}", n + 1).into(),
                        reason: format!(
                            "ran at depth {} but earlier lines at {}: merge shards of one depth",
                            line.key.depth.label(),
                            first.key.depth.label()
                        ),
                    });
                }
            }
            if !adapters.contains(&line.adapter) {
                adapters.push(line.adapter.clone());
            }
            match rows.iter().find(|r| r.key == line.key) {
                Some(seen) if seen.verdict.passed != line.verdict.passed => {
                    return Err(Error::InvalidArgument {
                        what: format!("{name}:{}", n + 1).into(),
                        reason: format!(
                            "claim {} (cases {:?}) is reported both passed and failed",
                            line.key.claim, line.key.cases
                        ),
                    })
                }
                Some(_) => {}
                None => rows.push(line),
            }
        }
    }
    let registered = |claim: &str| {
        claim.rsplit_once('.').is_some_and(|(id, k)| {
            THEOREMS.iter().any(|t| {
                t.id == id
                    && k.parse()
                        .is_ok_and(|k: usize| k >= 1 && k <= t.claims.len())
            })
        })
    };
    if let Some(stray) = rows.iter().find(|r| !registered(&r.key.claim)) {
        return Err(Error::InvalidArgument {
            what: "shard lines".into(),
            reason: format!(
                "claim {} is not in this build's registry (`verify --list`): shards of another \
                 version?",
                stray.key.claim
            ),
        });
    }
    let commit = rows
        .first()
        .map_or_else(|| "unknown".to_string(), |r| r.key.commit.clone());
    let mut verdicts = Vec::new();
    let mut missing = Vec::new();
    for theorem in THEOREMS {
        for k in 1..=theorem.claims.len() {
            let claim = format!("{}.{k}", theorem.id);
            match rows.iter().find(|r| r.key.claim == claim) {
                Some(r) => verdicts.push(r.verdict.clone()),
                None => missing.push(claim),
            }
        }
    }
    let depth = rows.first().map_or(Depth::Default, |r| r.key.depth);
    Ok(Merged {
        commit,
        depth,
        adapter: adapters.join("; "),
        verdicts,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `i/n` and `env` (Slurm arrays with and without a minimum, Kubernetes indexed Jobs), and
    /// the refusals, each naming the value.
    #[test]
    fn shard_specs_parse_and_refuse() {
        let none = |_: &str| None;
        assert_eq!(
            Shard::parse("2/5", none).unwrap(),
            Shard { index: 2, count: 5 }
        );
        let slurm = |v: &str| match v {
            "SLURM_ARRAY_TASK_ID" => Some("7".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("5".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::parse("env", slurm).unwrap(),
            Shard { index: 2, count: 4 }
        );
        let k8s = |v: &str| match v {
            "JOB_COMPLETION_INDEX" => Some("0".to_string()),
            "JOB_COMPLETIONS" => Some("3".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::parse("env", k8s).unwrap(),
            Shard { index: 0, count: 3 }
        );
        for (spec, named) in [
            ("5/5", "5 of 5"),
            ("1/0", "1 of 0"),
            ("a/3", "'a'"),
            ("3", "'3'"),
        ] {
            let e = Shard::parse(spec, none).unwrap_err().to_string();
            assert!(e.contains(named), "{spec}: {e}");
        }
        assert!(Shard::parse("env", none)
            .unwrap_err()
            .to_string()
            .contains("SLURM_ARRAY_TASK_ID"));
        let index_only = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "1".to_string());
        assert!(Shard::parse("env", index_only)
            .unwrap_err()
            .to_string()
            .contains("JOB_COMPLETIONS"));
    }

    /// Shards of two depths do not merge: the error names both depths.
    #[test]
    fn shards_of_two_depths_refuse_to_merge() {
        let claim = crate::theorems::tweedie::ANALYTIC_SCORE;
        let row = |depth| Verdict::collect(&claim, "cpu-f64", depth, || Ok(vec![]));
        let quick = lines(&[row(Depth::Quick)], "a", Some("c")).unwrap();
        let thorough = lines(&[row(Depth::Thorough)], "a", Some("c")).unwrap();
        let both = [
            ("q".to_string(), quick.clone()),
            ("t".to_string(), thorough),
        ];
        let e = merge(&both).unwrap_err().to_string();
        assert!(
            e.contains("t:1") && e.contains("thorough") && e.contains("quick"),
            "{e}"
        );
        let merged = merge(&[("q".to_string(), quick)]).unwrap();
        assert_eq!(merged.depth, Depth::Quick);
    }

    /// Shards partition the selection: every theorem in exactly one of n shards, round-robin.
    #[test]
    fn shards_partition_the_theorems() {
        let all: Vec<&Theorem> = THEOREMS.iter().collect();
        for count in 1..=all.len() + 2 {
            let mut seen: Vec<&str> = (0..count)
                .flat_map(|index| Shard { index, count }.pick(&all))
                .map(|t| t.id)
                .collect();
            seen.sort_unstable();
            let mut ids: Vec<&str> = all.iter().map(|t| t.id).collect();
            ids.sort_unstable();
            assert_eq!(seen, ids, "{count} shards");
        }
        let third = Shard { index: 1, count: 3 }.pick(&all);
        assert_eq!(third[0].id, all[1].id);
        assert_eq!(third[1].id, all[4].id);
    }
}
