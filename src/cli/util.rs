//! Helpers shared by commands: opening the repository, formatting dates and sizes.

use rostree_store::Repo;
use rostree_store::repo::default_repo_path;
use std::io::Write;
use std::path::Path;

/// Opens the repository named by `--repo`, `$OSTREE_REPO` or the defaults.
pub fn open_repo(repo: Option<&Path>) -> anyhow::Result<Repo> {
    let path = default_repo_path(repo);
    Ok(Repo::open(&path)?)
}

/// `YYYY-MM-DD HH:MM:SS +0000` for a UTC timestamp, as `ostree log` prints it.
pub fn format_timestamp(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

pub use rostree_store::time::civil_from_days;

/// A proleptic Gregorian date to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// glib's `g_format_size` (SI units): `1 byte`, `512 bytes`, `1.5 kB`, `3.2 MB`, with a
/// no-break space (U+00A0) between value and unit as GLib 2.74 prints it (`"%.1f\u00a0%s"`).
pub fn format_size(bytes: u64) -> String {
    if bytes < 1000 {
        return if bytes == 1 {
            "1 byte".into()
        } else {
            format!("{bytes} bytes")
        };
    }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1}\u{a0}{}", units[unit])
}

/// A usage error: the command's help on stderr, then the error (printed by `main`).
pub fn usage_error(usage: &str, msg: &str) -> anyhow::Error {
    eprint!("{usage}");
    anyhow::anyhow!("{msg}")
}

/// Runs `f` on a buffered stdout, flushing it whatever `f` returns.
pub fn with_stdout<T>(f: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let r = f(&mut out);
    let flushed = out.flush();
    let v = r?;
    flushed?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_timestamp(1795714445), "2026-11-26 17:34:05 +0000");
        for days in [-800_000i64, -1, 0, 59, 10_000, 20_000, 3_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(1500), "1.5\u{a0}kB");
    }
}
