//! The memory guard of the experiments: a run estimates the memory it will need before it
//! allocates, and a run that cannot fit is refused with [`Error::TooLarge`] naming the size and
//! the limit — instead of growing until the operating system's OOM killer ends it (and perhaps
//! other processes with it).
//!
//! The estimates are lower bounds (the dominant arrays only), so a refusal is never wrong about
//! the run not fitting; the limit is the machine's physical memory (`MemTotal` of
//! `/proc/meminfo`, 16 GiB where that cannot be read) unless the user sets one
//! (`--max-memory <GiB>`).

use crate::error::{Error, Result};

/// Bytes in a GiB.
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The memory limit in bytes: `max_memory_gib` GiB when given (refused unless finite and > 0),
/// else the machine's physical memory.
pub fn limit(max_memory_gib: Option<f64>) -> Result<u64> {
    match max_memory_gib {
        Some(gib) if gib.is_finite() && gib > 0.0 => Ok((gib * GIB).min(u64::MAX as f64) as u64),
        Some(gib) => Err(Error::InvalidArgument {
            what: "max memory".into(),
            reason: format!("must be a finite number of GiB > 0, got {gib}"),
        }),
        None => Ok(physical_memory().unwrap_or(16 * 1024 * 1024 * 1024)),
    }
}

/// `MemTotal` of `/proc/meminfo` in bytes, if it can be read.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The product of `factors` in bytes, `None` when it overflows u128 (so certainly too large).
pub fn bytes(factors: &[usize]) -> Option<u128> {
    factors
        .iter()
        .try_fold(1u128, |acc, &f| acc.checked_mul(f as u128))
}

/// Refuses a run whose estimated need `needed` (bytes; `None` = beyond u128) exceeds `limit`,
/// naming what needs it, the size and the limit.
pub fn ensure_fits(what: &str, needed: Option<u128>, limit: u64) -> Result<()> {
    match needed {
        Some(n) if n <= u128::from(limit) => Ok(()),
        _ => Err(Error::TooLarge {
            what: what.to_string().into(),
            needed_gib: needed.map_or(f64::INFINITY, |n| n as f64 / GIB),
            limit_gib: limit as f64 / GIB,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A need above the limit is refused naming both in GiB; an overflowing product is refused
    /// as infinite; a bad --max-memory is refused naming it.
    #[test]
    fn needs_beyond_the_limit_are_refused_with_both_sizes() {
        let limit = limit(Some(2.0)).unwrap();
        assert_eq!(limit, 2 * 1024 * 1024 * 1024);
        assert!(ensure_fits("x", bytes(&[1024, 1024, 1024]), limit).is_ok());
        let e = ensure_fits("the data", bytes(&[3, 1024, 1024, 1024]), limit).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("the data") && text.contains("3.0 GiB") && text.contains("2.0 GiB"),
            "{text}"
        );
        let e = ensure_fits("samples", bytes(&[usize::MAX, usize::MAX, 16]), limit).unwrap_err();
        assert!(e.to_string().contains("inf"), "{e}");
        assert!(super::limit(Some(-1.0))
            .unwrap_err()
            .to_string()
            .contains("-1"));
        assert!(super::limit(None).unwrap() > 0);
    }
}
