//! ISO-8601 timestamps as `auth.json` stores them.

use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// `ms` as ISO-8601 UTC with a `+00:00` offset (the Python hermes form), or `None` when out of
/// the representable range.
pub fn iso_from_ms(ms: i64) -> Option<String> {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let dt = dt.to_offset(UtcOffset::UTC).replace_nanosecond(0).ok()?;
    let s = dt.format(&Rfc3339).ok()?;
    Some(s.replace('Z', "+00:00"))
}

/// Parse an ISO-8601 timestamp with `Z` or a numeric offset into unix ms.
pub fn ms_from_iso(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A source of the current time in unix ms: the system clock, or a test's.
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    std::sync::Arc::new(now_ms)
}

/// The current time, unix ms.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in ms as `13 min`, `2 h 5 min`, `45 s`.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        // To the nearest minute, as provider status lines say it: a fresh 15-minute token
        // read a moment later is still "15 min".
        format!("{} min", ((s + 30) / 60).min(59))
    } else if s < 86_400 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d", s / 86_400)
    }
}

/// Time left on a countdown: `m:ss` under ten minutes (`1:30`, `0:05`), whole minutes above
/// (`14 min`). Seconds are rounded up, so a fresh ten-minute code reads `10 min`, not `9:59`.
pub fn countdown(ms: i64) -> String {
    let s = ms.max(0).saturating_add(999) / 1000;
    if s < 600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        human_duration(s * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_show_seconds_under_ten_minutes() {
        assert_eq!(countdown(90_000), "1:30");
        assert_eq!(countdown(4_200), "0:05");
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(-5), "0:00");
        assert_eq!(countdown(599_001), "10 min");
        assert_eq!(countdown(598_500), "9:59");
        assert_eq!(countdown(14 * 60_000), "14 min");
    }

    #[test]
    fn round_trips_and_accepts_both_utc_spellings() {
        let ms = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(iso_from_ms(ms).unwrap(), "2026-01-01T00:00:00+00:00");
        assert_eq!(ms_from_iso("2026-01-01T00:00:00+00:00"), Some(ms));
        assert_eq!(ms_from_iso("2026-01-01T00:00:00Z"), Some(ms));
        assert_eq!(ms_from_iso("2026-01-01T00:00:00.250Z"), Some(ms + 250));
        assert_eq!(ms_from_iso("not a date"), None);
    }

    #[test]
    fn durations_round_to_the_nearest_minute() {
        assert_eq!(human_duration(899_800), "15 min");
        assert_eq!(human_duration(45_000), "45 s");
        assert_eq!(human_duration(7_500_000), "2 h 5 min");
    }

    #[test]
    fn out_of_range_is_none_not_a_panic() {
        assert_eq!(iso_from_ms(i64::MAX), None);
    }
}
