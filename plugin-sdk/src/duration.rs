//! Durations for people, written the same way by the host (sign-in countdowns, `auth status`)
//! and by plugins (status summaries such as `token valid 13 min`).

/// `ms` as `45 s`, `13 min`, `2 h 5 min`, `3 h` or `3 d`; negative counts as 0.
///
/// Minutes are rounded to the nearest one below an hour, so that a fresh 15-minute token read a
/// moment later still reads `15 min`; above an hour the minutes are whole ones (left out when
/// there are none), above a day only whole days count.
pub fn human(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", ((s + 30) / 60).min(59))
    } else if s < 86_400 {
        match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            min => format!("{} h {min} min", s / 3600),
        }
    } else {
        format!("{} d", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn each_unit_and_its_rounding() {
        assert_eq!(human(-5), "0 s");
        assert_eq!(human(45_000), "45 s");
        assert_eq!(human(59_999), "59 s");
        assert_eq!(human(60_000), "1 min");
        // To the nearest minute: 14 min 59.8 s is 15 min, and never 60 min.
        assert_eq!(human(899_800), "15 min");
        assert_eq!(human(3_599_000), "59 min");
        assert_eq!(human(7_500_000), "2 h 5 min");
        assert_eq!(human(3 * 3_600_000 + 59_999), "3 h");
        assert_eq!(human(3 * 86_400_000 + 5), "3 d");
        assert_eq!(human(i64::MAX), format!("{} d", i64::MAX / 1000 / 86_400));
    }
}
