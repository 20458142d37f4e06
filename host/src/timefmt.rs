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

/// Waiting for time to pass: the thread's sleep, or a test clock's jump.
pub type Sleeper = std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// A clock and the way to wait on it, injected together so that a test clock moves when the
/// code waits (the sign-in driver's poll interval, the provider's `slow_down`) instead of the
/// test waiting in real time.
#[derive(Clone)]
pub struct Time {
    /// The current time, unix ms.
    pub clock: Clock,
    /// Wait for a duration of that clock.
    pub sleep: Sleeper,
}

impl Time {
    /// The system clock and the thread's sleep.
    pub fn system() -> Time {
        Time {
            clock: system_clock(),
            sleep: std::sync::Arc::new(std::thread::sleep),
        }
    }

    /// `clock` with the thread's sleep (tests that age tokens without waiting for anything).
    pub fn with_clock(clock: Clock) -> Time {
        Time {
            clock,
            sleep: Time::system().sleep,
        }
    }

    /// The test clock of `HERMES_TEST_CLOCK`: the system clock moved by the offset (ms) kept in
    /// the file `path`, which a sleep advances instead of waiting. Processes sharing the file
    /// (hermes, the test, the emulator) share one clock; a test ages tokens or expires codes by
    /// moving the offset. See [`TestClock`].
    pub fn test_file(path: std::path::PathBuf) -> Time {
        let clock = TestClock::new(path);
        let sleeper = clock.clone();
        Time {
            clock: std::sync::Arc::new(move || clock.now_ms()),
            sleep: std::sync::Arc::new(move |d| sleeper.sleep(d)),
        }
    }

    /// The current time, unix ms.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }
}

impl std::fmt::Debug for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Time")
    }
}

/// A clock shared through a file by every process of a test (the `HERMES_TEST_CLOCK` hook):
/// the system clock plus an offset in ms, written in decimal in the file (a missing or
/// unreadable file is offset 0). Reads and updates take the file's lock, so two processes
/// moving it never lose a step.
#[derive(Clone, Debug)]
pub struct TestClock {
    path: std::path::PathBuf,
}

impl TestClock {
    /// The clock kept in `path` (created on its first move).
    pub fn new(path: impl Into<std::path::PathBuf>) -> TestClock {
        TestClock { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The offset from the system clock, ms.
    pub fn offset_ms(&self) -> i64 {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return 0;
        };
        if f.lock_shared().is_err() {
            return 0;
        }
        Self::read(&mut f)
    }

    /// The system clock moved by the offset, unix ms.
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.offset_ms())
    }

    /// A sleep on this clock: wait while the clock is held (see [`TestClock::hold`]), then move
    /// it forward by `d`.
    pub fn sleep(&self, d: std::time::Duration) {
        let held = self.held_path();
        while held.exists() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.advance(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Let the other threads and processes run, as a real sleep would.
        std::thread::yield_now();
    }

    /// Hold (`true`) or release the clock: while it is held, every sleep on it waits, so a
    /// test can act while the code under test is known to be between two steps. Reading and
    /// moving the clock go on.
    pub fn hold(&self, held: bool) {
        let path = self.held_path();
        if held {
            let _ = std::fs::write(path, "");
        } else {
            let _ = std::fs::remove_file(path);
        }
    }

    fn held_path(&self) -> std::path::PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".held");
        p.into()
    }

    /// Move the clock forward by `ms` (no real time passes). Returns the new offset.
    pub fn advance(&self, ms: i64) -> i64 {
        use std::io::{Seek, Write};
        let open = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path);
        let Ok(mut f) = open else {
            return 0;
        };
        if f.lock().is_err() {
            return 0;
        }
        let next = Self::read(&mut f).saturating_add(ms.max(0));
        let _ = f
            .set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| f.write_all(next.to_string().as_bytes()));
        next
    }

    fn read(f: &mut std::fs::File) -> i64 {
        use std::io::Read;
        let mut text = String::new();
        let _ = f.read_to_string(&mut text);
        text.trim().parse().unwrap_or(0)
    }
}

/// The current time, unix ms.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Time left on a countdown: `m:ss` under ten minutes (`1:30`, `0:05`), whole minutes above
/// (`14 min`). Seconds are rounded up, so a fresh ten-minute code reads `10 min`, not `9:59`.
pub fn countdown(ms: i64) -> String {
    let s = ms.max(0).saturating_add(999) / 1000;
    if s < 600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        hermes_plugin_sdk::duration::human(s * 1000)
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
    fn a_test_clock_moves_when_its_time_sleeps_and_is_shared_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let time = Time::test_file(path.clone());
        let other = TestClock::new(&path);
        assert_eq!(other.offset_ms(), 0);
        let real = std::time::Instant::now();
        (time.sleep)(std::time::Duration::from_secs(3600));
        assert!(real.elapsed() < std::time::Duration::from_secs(60));
        assert_eq!(other.offset_ms(), 3_600_000);
        assert_eq!(other.advance(500), 3_600_500);
        assert!(time.now_ms() >= now_ms() + 3_600_000);
    }

    #[test]
    fn out_of_range_is_none_not_a_panic() {
        assert_eq!(iso_from_ms(i64::MAX), None);
    }
}
