//! Shards of the sweep-shaped experiments: `exp generalization` over (architecture, N),
//! `exp bottleneck` over the hidden widths h, `exp polynomial` over (feature map, degree k).
//!
//! A sweep is an ordered list of configuration labels (e.g. `empirical N=4`, `h=500`,
//! `polynomial k=9`). With [`super::Settings::sweep_shard`] `= (i, n)` a run keeps the
//! configurations at positions ≡ i (mod n) ([`keeps`]) and writes one JSON line per
//! configuration to `<experiment>/shards/shard-<i>-of-<n>.jsonl` ([`write_shard`]), keyed by
//! (experiment, configuration, seed, commit): a rerun of a shard rewrites the same keys, and
//! [`merge`] keeps one line per key, so joining is idempotent. Each line also carries the whole
//! sweep (so a merge can tell that it is whole, and name what is missing) and the run-level
//! fields the experiment's metrics have beside the per-configuration results.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether the configuration at `position` of the sweep belongs to `shard` (`(index, count)`;
/// `None`: every configuration).
pub fn keeps(shard: Option<(usize, usize)>, position: usize) -> bool {
    shard.is_none_or(|(index, count)| position % count == index)
}

/// The key of one configuration's line: rerunning the same key gives the same line, and
/// [`merge`] keeps one line per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepKey {
    /// The experiment (`generalization`, `bottleneck`, `polynomial`).
    pub experiment: String,
    /// The configuration's label in the sweep.
    pub configuration: String,
    /// The run's seed (`--seed`).
    pub seed: u64,
    /// The commit that ran it (`unknown` outside a git checkout).
    pub commit: String,
}

/// One line of a shard file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepLine {
    /// What the line is.
    pub key: SweepKey,
    /// Every configuration of the sweep, in the run's order.
    pub sweep: Vec<String>,
    /// The run-level fields of the experiment's metrics (the same on every line of a run).
    pub run: Value,
    /// The configuration's result, as the experiment's metrics list it.
    pub result: Value,
}

/// A merged sweep: the run-level fields and every configuration's result in the sweep's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The experiment.
    pub experiment: String,
    /// The run-level fields.
    pub run: Value,
    /// `(configuration, result)` in the sweep's order.
    pub results: Vec<(String, Value)>,
}

/// Writes the shard file of `experiment` (shard `(index, count)`) under `folder`:
/// `shards/shard-<index>-of-<count>.jsonl`, one line per `(configuration, result)`, written
/// whole (a temporary file, renamed), so a rerun shard replaces its file.
pub fn write_shard(
    folder: &super::RunFolder,
    experiment: &str,
    (index, count): (usize, usize),
    (sweep, seed): (&[String], u64),
    run: &Value,
    results: &[(String, Value)],
) -> Result<()> {
    let commit = crate::io::git_commit();
    let mut text = String::new();
    for (configuration, result) in results {
        let line = SweepLine {
            key: SweepKey {
                experiment: experiment.into(),
                configuration: configuration.clone(),
                seed,
                commit: commit.clone(),
            },
            sweep: sweep.to_vec(),
            run: run.clone(),
            result: result.clone(),
        };
        text += &serde_json::to_string(&line).map_err(|e| Error::json("<shard line>", e))?;
        text.push('\n');
    }
    let path = folder.path(&format!("shards/shard-{index}-of-{count}.jsonl"));
    crate::io::write_atomic(&path, text.as_bytes())
}

/// The experiment of the first non-empty line of shard files (`(file name, its text)`), if
/// that line is a sweep line.
pub fn experiment_of(files: &[(String, String)]) -> Option<String> {
    let first = files
        .iter()
        .flat_map(|(_, text)| text.lines())
        .find(|line| !line.trim().is_empty())?;
    serde_json::from_str::<SweepLine>(first)
        .ok()
        .map(|line| line.key.experiment)
}

/// Joins shard files (`(file name, its text)`): one line per key (a repeated key — a rerun
/// shard — keeps its first line), in the sweep's order. Errors name the file and line: a line
/// that is not a sweep line, or lines of two experiments, commits, seeds or sweeps, or a
/// configuration outside its own sweep; and the sweep must be whole (the configurations no
/// shard ran are named).
pub fn merge(files: &[(String, String)]) -> Result<Merged> {
    let mut lines: Vec<SweepLine> = Vec::new();
    for (name, text) in files {
        for (k, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let at = || format!("{name}:{}", k + 1);
            let line: SweepLine = serde_json::from_str(raw).map_err(|e| Error::json(at(), e))?;
            if let Some(first) = lines.first() {
                let same = first.key.experiment == line.key.experiment
                    && first.key.commit == line.key.commit
                    && first.key.seed == line.key.seed
                    && first.sweep == line.sweep;
                if !same {
                    return Err(Error::InvalidArgument {
                        what: at().into(),
                        reason: format!(
                            "is {} at commit {}, seed {} (sweep {:?}), but earlier lines are {} \
                             at commit {}, seed {} (sweep {:?}): merge shards of one run",
                            line.key.experiment,
                            line.key.commit,
                            line.key.seed,
                            line.sweep,
                            first.key.experiment,
                            first.key.commit,
                            first.key.seed,
                            first.sweep
                        ),
                    });
                }
            }
            if !line.sweep.contains(&line.key.configuration) {
                return Err(Error::InvalidArgument {
                    what: at().into(),
                    reason: format!(
                        "its configuration {} is outside its own sweep {:?}",
                        line.key.configuration, line.sweep
                    ),
                });
            }
            if !lines.iter().any(|l| l.key == line.key) {
                lines.push(line);
            }
        }
    }
    let Some(first) = lines.first() else {
        return Err(Error::InvalidArgument {
            what: "sweep shards".into(),
            reason: "the sweep is not whole: no shard ran any configuration".into(),
        });
    };
    let (experiment, sweep, run) = (
        first.key.experiment.clone(),
        first.sweep.clone(),
        first.run.clone(),
    );
    let missing: Vec<&str> = sweep
        .iter()
        .filter(|c| !lines.iter().any(|l| &l.key.configuration == *c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidArgument {
            what: format!("{experiment} shards").into(),
            reason: format!(
                "the sweep is not whole: no shard ran {}",
                missing.join(", ")
            ),
        });
    }
    let position = |l: &SweepLine| sweep.iter().position(|c| *c == l.key.configuration);
    lines.sort_by_key(position);
    Ok(Merged {
        experiment,
        run,
        results: lines
            .into_iter()
            .map(|l| (l.key.configuration, l.result))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(configuration: &str, seed: u64, sweep: &[&str]) -> String {
        serde_json::to_string(&SweepLine {
            key: SweepKey {
                experiment: "bottleneck".into(),
                configuration: configuration.into(),
                seed,
                commit: "c".into(),
            },
            sweep: sweep.iter().map(|s| s.to_string()).collect(),
            run: serde_json::json!({"width": 3}),
            result: serde_json::json!({"label": configuration}),
        })
        .unwrap()
    }

    /// Shards 0 and 1 of 2 keep the even and the odd positions; no shard keeps everything.
    #[test]
    fn shards_partition_the_sweep() {
        let kept = |shard| (0..5).filter(|&p| keeps(shard, p)).collect::<Vec<_>>();
        assert_eq!(kept(Some((0, 2))), [0, 2, 4]);
        assert_eq!(kept(Some((1, 2))), [1, 3]);
        assert_eq!(kept(None), [0, 1, 2, 3, 4]);
    }

    /// Lines in any order, with a rerun's duplicate, merge into the sweep's order once each; a
    /// missing configuration, a second seed and a stray configuration are refused by name.
    #[test]
    fn merge_orders_deduplicates_and_names_what_is_missing() {
        let sweep = ["h=4", "h=2", "h=1"];
        let files = vec![
            ("b".to_string(), line("h=2", 0, &sweep)),
            (
                "a".to_string(),
                format!("{}\n\n{}\n", line("h=1", 0, &sweep), line("h=4", 0, &sweep)),
            ),
            ("a-again".to_string(), line("h=1", 0, &sweep)),
        ];
        let merged = merge(&files).unwrap();
        let order: Vec<&str> = merged.results.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(order, sweep);
        assert_eq!(merged.run, serde_json::json!({"width": 3}));
        assert_eq!(experiment_of(&files).as_deref(), Some("bottleneck"));
        let e = merge(&files[..2 - 1]).unwrap_err().to_string();
        assert!(e.contains("not whole") && e.contains("h=4, h=1"), "{e}");
        let mixed = vec![files[1].clone(), ("s".to_string(), line("h=2", 1, &sweep))];
        assert!(merge(&mixed).unwrap_err().to_string().contains("s:1"));
        let stray = vec![("t".to_string(), line("h=8", 0, &sweep))];
        assert!(merge(&stray).unwrap_err().to_string().contains("h=8"));
        assert!(merge(&[])
            .unwrap_err()
            .to_string()
            .contains("any configuration"));
        assert!(experiment_of(&[("v".into(), "{\"claim\": 1}".into())]).is_none());
    }
}
