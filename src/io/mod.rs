//! Files in and out, in one place: NumPy `.npy` arrays ([`npy`]), JSON (reports, checkpoints,
//! progress), PNG image grids ([`grid`]) and plots ([`plot`]), with their text ([`text`]). Every error names the file.

pub mod grid;
pub mod npy;
pub mod plot;
pub mod text;

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Reads an f64 that JSON holds as `null` (serde_json writes NaN and ±∞ so) back as NaN: the
/// `deserialize_with` of every f64 field a report or metrics file may hold as NaN.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The short commit of the checkout in the working directory (`git rev-parse --short HEAD`),
/// `unknown` outside a git checkout or without git: the provenance of reports and shard lines.
/// Asked of git once per process (a sweep stamps every line it writes with it).
pub fn git_commit() -> String {
    static COMMIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COMMIT
        .get_or_init(|| {
            std::process::Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|| "unknown".into())
        })
        .clone()
}

/// Reads and parses a JSON file; an unreadable file is [`Error::Io`], bad JSON [`Error::Json`],
/// both naming the path.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::json(path, e))
}

/// `value` as pretty-printed JSON; `destination` names where it was going in the error.
pub fn json_text<T: Serialize>(value: &T, destination: &str) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::json(destination, e))
}

/// Writes `value` as pretty JSON to `path`, creating its folder, atomically: to `path.tmp`
/// first, then renamed, so an interrupted write never leaves a truncated file behind.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = json_text(value, &path.display().to_string())?;
    write_atomic(path, text.as_bytes())
}

/// Writes `bytes` to `path`, creating its folder, atomically: to `path.tmp` first, then
/// renamed, so an interrupted write never leaves a truncated file behind.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// An exclusive lock on a run folder: an OS advisory lock on `<folder>/.lock`, held while the
/// value lives and released by the operating system when the process ends, killed or not — so
/// a second writer is refused with [`Error::FolderInUse`] while a run is active, and a run
/// killed mid-way leaves nothing that blocks its resumption.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    /// Creates `folder` if needed and locks it, or refuses when another process holds it.
    pub(crate) fn acquire(folder: &Path) -> Result<Self> {
        std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
        let path = folder.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::FolderInUse {
                path: folder.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

/// Checks before a long run that `path` can be written: creates its folder and a `<path>.tmp`
/// beside it (removed again), so an unwritable report fails in a second, not after the run.
pub fn ensure_writable(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, b"").map_err(|e| Error::io(path, e))?;
    std::fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))
}

#[cfg(test)]
mod tests {
    use super::{read_json, write_json, FolderLock};

    /// A locked folder refuses a second lock (naming the folder) until the first is dropped.
    #[test]
    fn a_locked_folder_refuses_a_second_writer() {
        let dir = std::env::temp_dir().join(format!("io-lock-{}", std::process::id()));
        let first = FolderLock::acquire(&dir).unwrap();
        let e = FolderLock::acquire(&dir).unwrap_err();
        assert!(
            matches!(e, crate::error::Error::FolderInUse { .. })
                && e.to_string().contains(&dir.display().to_string()),
            "{e}"
        );
        drop(first);
        assert!(FolderLock::acquire(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A value written is read back equal, into a folder that did not exist, leaving no `.tmp`;
    /// a missing file and bad JSON are errors naming the path.
    #[test]
    fn json_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("io-json-{}", std::process::id()));
        let path = dir.join("sub").join("value.json");
        let value = vec![(1.5f64, "a".to_string()), (-2.0, "b".into())];
        write_json(&path, &value).unwrap();
        let back: Vec<(f64, String)> = read_json(&path).unwrap();
        assert_eq!(back, value);
        assert!(!dir.join("sub").join("value.json.tmp").exists());
        std::fs::write(&path, "{ not json").unwrap();
        let bad = read_json::<Vec<f64>>(&path).unwrap_err().to_string();
        assert!(bad.contains("value.json"), "{bad}");
        let missing = read_json::<Vec<f64>>(&dir.join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none.json"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every f64 survives the JSON round trip bit for bit (a resumed run compares its saved
    /// config and continues from its saved weights): 200,000 random finite bit patterns and the
    /// log-spaced σ of a training config. serde_json parses floats exactly only with its
    /// `float_roundtrip` feature.
    #[test]
    fn json_round_trip_is_exact_for_every_f64() {
        let mut rng = crate::rng::Rng::new(17, 0);
        let mut values: Vec<f64> = (0..200_000)
            .map(|_| {
                let bits = (u64::from(rng.next_u32()) << 32) | u64::from(rng.next_u32());
                f64::from_bits(bits)
            })
            .filter(|v| v.is_finite())
            .collect();
        values.extend((0..64).map(|i| 0.002 * 1.2f64.powi(i)));
        let text = serde_json::to_string(&values).unwrap();
        let back: Vec<f64> = serde_json::from_str(&text).unwrap();
        let changed = values
            .iter()
            .zip(&back)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(changed, 0, "{changed} of {} values changed", values.len());
    }
}
