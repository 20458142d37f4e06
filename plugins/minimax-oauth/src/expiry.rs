//! The one `expired_in` parser, and the ISO-8601 formatter for stored timestamps.
//!
//! MiniMax sends `expired_in` as an absolute unix-millisecond deadline although the name says
//! "seconds", and other servers send a TTL. The Python original added the raw value to "now"
//! on one path and got `year 583911 is out of range`; every path here (login deadline, token
//! expiry, refresh) goes through [`parse_expired_in`] and nothing else.

use hermes_plugin_sdk::{kind, PluginError};
use serde_json::Value;

/// Values below this are a TTL in seconds.
const TTL_SECONDS_BELOW: i64 = 1_000_000_000;
/// Values below this (and not a TTL) are absolute unix seconds; the rest unix milliseconds.
const UNIX_SECONDS_BELOW: i64 = 1_000_000_000_000;
/// 9999-12-31T23:59:59.999Z: anything later is a unit mix-up, not a real expiry.
pub const MAX_EXPIRY_MS: i64 = 253_402_300_799_999;

/// Error code of an unusable `expired_in`.
pub const INVALID_EXPIRY: &str = "invalid_expiry";

/// The absolute expiry in unix ms that `value` denotes at `now_ms`.
///
/// `value` must be a positive integer JSON number: below 10^9 it is seconds from now, below
/// 10^12 absolute unix seconds, otherwise absolute unix milliseconds. Anything else (strings,
/// floats, zero, negatives, overflow, or a result after year 9999) is an `invalid_expiry`
/// error.
pub fn parse_expired_in(value: &Value, now_ms: i64) -> Result<i64, PluginError> {
    let raw = match value {
        Value::Number(n) => match n.as_i64() {
            Some(v) if v > 0 => v,
            Some(_) => return Err(invalid("a number that is not positive")),
            None if n.is_f64() => return Err(invalid("a non-integer number")),
            None => return Err(invalid("an integer out of range")),
        },
        Value::Null => return Err(invalid("null")),
        Value::Bool(_) => return Err(invalid("a boolean")),
        Value::String(_) => return Err(invalid("a string")),
        Value::Array(_) => return Err(invalid("an array")),
        Value::Object(_) => return Err(invalid("an object")),
    };
    let at_ms = if raw < TTL_SECONDS_BELOW {
        raw.checked_mul(1000)
            .and_then(|ttl_ms| now_ms.checked_add(ttl_ms))
    } else if raw < UNIX_SECONDS_BELOW {
        raw.checked_mul(1000)
    } else {
        Some(raw)
    };
    match at_ms {
        Some(ms) if ms <= MAX_EXPIRY_MS => Ok(ms),
        _ => Err(invalid("a time after year 9999")),
    }
}

fn invalid(what: &str) -> PluginError {
    PluginError::new(
        kind::TERMINAL,
        INVALID_EXPIRY,
        format!("MiniMax sent an unusable expired_in ({what}); expected a positive integer"),
    )
}

/// `ms` (unix milliseconds) as ISO-8601 UTC with an explicit offset, e.g.
/// `2023-11-14T22:13:20+00:00`. The offset form is what Python's `isoformat()` writes and what
/// `datetime.fromisoformat` reads on every Python version, unlike `Z`.
pub fn format_iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn parse(v: Value) -> Result<i64, PluginError> {
        parse_expired_in(&v, NOW)
    }

    fn assert_invalid(v: Value) {
        let err = parse(v.clone()).expect_err(&format!("{v} must be refused"));
        assert_eq!(err.code.as_str(), INVALID_EXPIRY, "{v}");
        assert!(!err.relogin_required);
    }

    #[test]
    fn small_values_are_seconds_from_now() {
        assert_eq!(parse(json!(1)).unwrap(), NOW + 1_000);
        assert_eq!(parse(json!(900)).unwrap(), NOW + 900_000);
        assert_eq!(parse(json!(999_999_999)).unwrap(), NOW + 999_999_999_000);
    }

    #[test]
    fn mid_values_are_absolute_unix_seconds() {
        assert_eq!(parse(json!(1_000_000_000)).unwrap(), 1_000_000_000_000);
        assert_eq!(parse(json!(1_700_000_900)).unwrap(), 1_700_000_900_000);
        // The last second of year 9999 is the largest absolute-seconds value accepted.
        assert_eq!(
            parse(json!(253_402_300_799i64)).unwrap(),
            253_402_300_799_000
        );
    }

    #[test]
    fn large_values_are_absolute_unix_ms() {
        assert_eq!(
            parse(json!(1_000_000_000_000i64)).unwrap(),
            1_000_000_000_000
        );
        assert_eq!(
            parse(json!(1_700_000_900_123i64)).unwrap(),
            1_700_000_900_123
        );
        assert_eq!(parse(json!(MAX_EXPIRY_MS)).unwrap(), MAX_EXPIRY_MS);
    }

    #[test]
    fn regress_year_583911_ms_expiry() {
        // MiniMax's real answer: an absolute ms deadline ~15 minutes ahead. Adding it to now
        // as seconds gave year 583911 (dashboard) / 58381 (CLI) in the Python original.
        let deadline = NOW + 15 * 60 * 1000;
        let at = parse(json!(deadline)).unwrap();
        assert_eq!(at, deadline);
        assert!(format_iso8601(at).starts_with("2023-11-14T"));
    }

    #[test]
    fn invalid_expiry_cases() {
        assert_invalid(json!(0));
        assert_invalid(json!(-1));
        assert_invalid(json!(i64::MIN));
        assert_invalid(json!(1.5));
        assert_invalid(json!(900.0));
        assert_invalid(json!("900"));
        assert_invalid(json!(null));
        assert_invalid(json!(true));
        assert_invalid(json!([900]));
        assert_invalid(json!({"s": 900}));
        // Beyond i64, and beyond u64 (serde_json then reads a float).
        assert_invalid(json!(u64::MAX));
        assert_invalid(serde_json::from_str::<Value>("123456789012345678901234567890").unwrap());
        // Absolute seconds after 9999, and milliseconds after 9999.
        assert_invalid(json!(253_402_300_800i64));
        assert_invalid(json!(999_999_999_999i64));
        assert_invalid(json!(MAX_EXPIRY_MS + 1));
        assert_invalid(json!(i64::MAX));
    }

    #[test]
    fn ttl_overflow_is_refused_not_wrapped() {
        let err = parse_expired_in(&json!(999_999_999), i64::MAX - 10).unwrap_err();
        assert_eq!(err.code.as_str(), INVALID_EXPIRY);
    }

    #[test]
    fn iso8601_formatting() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_iso8601(NOW), "2023-11-14T22:13:20+00:00");
        assert_eq!(format_iso8601(951_782_400_000), "2000-02-29T00:00:00+00:00");
        assert_eq!(format_iso8601(MAX_EXPIRY_MS), "9999-12-31T23:59:59+00:00");
        assert_eq!(format_iso8601(-1), "1969-12-31T23:59:59+00:00");
    }
}
