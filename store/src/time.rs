//! Calendar arithmetic on UTC timestamps, for the dates ostree prints.

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether the locale's character set is UTF-8 (`LC_ALL`, else `LC_CTYPE`, else `LANG`), as
/// GLib decides it after `setlocale (LC_ALL, "")`.
pub fn locale_is_utf8() -> bool {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let locale = var("LC_ALL")
        .or_else(|| var("LC_CTYPE"))
        .or_else(|| var("LANG"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    locale.contains("utf-8") || locale.contains("utf8")
}

/// Text as `g_print` writes it: converted to the locale's character set, each character
/// it lacks (outside ASCII, in the C locale) replaced by `?`.
pub fn for_console(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() || locale_is_utf8() {
        return text.into();
    }
    text.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect::<String>()
        .into()
}

/// A timestamp in local time (`TZ`, else `/etc/localtime`) as GLib's
/// `g_date_time_format (g_date_time_to_local (dt), "%c")` writes it in the C locale, the
/// day padded with U+2007 FIGURE SPACE (shown as `?` by [`for_console`] outside UTF-8).
pub fn format_local_c(secs: i64) -> String {
    let offset = local_offset(secs);
    format_c_locale_padded(secs.saturating_add(offset), '\u{2007}')
}

/// The local time zone's offset from UTC at `secs`, in seconds (0 if out of range).
fn local_offset(secs: i64) -> i64 {
    jiff::Timestamp::from_second(secs)
        .map(|t| jiff::tz::TimeZone::system().to_offset(t).seconds().into())
        .unwrap_or(0)
}

/// A UTC timestamp as GLib's `g_date_time_format (dt, "%c")` writes it in the C locale,
/// as ostree prints it: `Tue Jan \u{2007}2 03:04:05 2024`. GLib pads the day with U+2007
/// FIGURE SPACE, which `g_print` turns into `?` outside a UTF-8 locale ([`for_console`]).
pub fn format_c_locale(secs: u64) -> String {
    for_console(&format_c_locale_padded(secs as i64, '\u{2007}')).into_owned()
}

/// [`format_c_locale`] with the given padding character.
pub fn format_c_locale_padded(secs: i64, pad: char) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let day = if d < 10 {
        format!("{pad}{d}")
    } else {
        d.to_string()
    };
    format!(
        "{} {} {day} {:02}:{:02}:{:02} {y}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).saturating_sub(1) % 12],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_locale_dates() {
        assert_eq!(format_c_locale_padded(0, ' '), "Thu Jan  1 00:00:00 1970");
        assert_eq!(
            format_c_locale_padded(1_704_153_600, '\u{2007}'),
            "Tue Jan \u{2007}2 00:00:00 2024"
        );
        assert_eq!(
            format_c_locale_padded(1_700_000_000, ' '),
            "Tue Nov 14 22:13:20 2023"
        );
    }
}
