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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn out_of_range_is_none_not_a_panic() {
        assert_eq!(iso_from_ms(i64::MAX), None);
    }
}
