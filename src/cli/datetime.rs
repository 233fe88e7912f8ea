//! Parsing `--timestamp` and `--keep-younger-than` dates: the forms `date -d` users write.

use super::util::days_from_civil;

/// Parses a date to seconds since the epoch (UTC unless an offset is given):
/// `@EPOCH`, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]`, ISO 8601 `YYYY-MM-DDTHH:MM:SS[Z|±HH[:]MM]`,
/// and relative `now`, `today`, `yesterday`, `N {second,minute,hour,day,week}s ago`.
pub fn parse_datetime(s: &str, now: i64) -> Option<i64> {
    let t = s.trim();
    if let Some(epoch) = t.strip_prefix('@') {
        return epoch.parse().ok();
    }
    match t {
        "now" => return Some(now),
        "today" => return Some(now - now.rem_euclid(86400)),
        "yesterday" => return Some(now - 86400),
        _ => {}
    }
    if let Some(rel) = t.strip_suffix(" ago") {
        let mut parts = rel.split_whitespace();
        let n: i64 = parts.next()?.parse().ok()?;
        let unit = parts.next()?.trim_end_matches('s');
        let secs = match unit {
            "second" | "sec" => 1,
            "minute" | "min" => 60,
            "hour" => 3600,
            "day" => 86400,
            "week" => 7 * 86400,
            _ => return None,
        };
        return parts.next().is_none().then_some(now - n * secs);
    }
    let (date, rest) = t.split_at(t.find(['T', ' ']).unwrap_or(t.len()));
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(y, m, day) * 86400;
    let rest = rest.trim_start_matches(['T', ' ']);
    if rest.is_empty() {
        return Some(secs);
    }
    let split = rest.find(['Z', '+', '-', ' ']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(split);
    let mut hms = time.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = match hms.next() {
        Some(s) => s.split('.').next()?.parse().ok()?,
        None => 0,
    };
    if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + sec;
    let zone = zone.trim();
    if zone.is_empty() || zone == "Z" || zone == "UTC" {
        return Some(secs);
    }
    let sign = match zone.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 && digits.len() != 2 {
        return None;
    }
    let oh: i64 = digits[..2].parse().ok()?;
    let om: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    Some(secs - sign * (oh * 3600 + om * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_ostree_accepts() {
        assert_eq!(parse_datetime("@1700000000", 0), Some(1700000000));
        assert_eq!(parse_datetime("2023-01-01", 0), Some(1672531200));
        assert_eq!(parse_datetime("2023-01-01 12:34:56", 0), Some(1672576496));
        assert_eq!(parse_datetime("2023-01-01T00:00:00Z", 0), Some(1672531200));
        assert_eq!(
            parse_datetime("2023-01-01T00:00:00+02:00", 0),
            Some(1672531200 - 7200)
        );
        assert_eq!(parse_datetime("1 day ago", 100_000), Some(100_000 - 86400));
        assert_eq!(parse_datetime("1700000000", 0), None);
        assert_eq!(parse_datetime("garbage", 0), None);
    }
}
