//! The wall clock a plugin reads, and timestamps as Kubernetes writes them (RFC 3339, UTC, whole seconds).
//!
//! In a plugin, [`now`] is the host's wall clock, which the guest reads through WASI. During
//! [`TestKit::reconcile`](crate::testkit::TestKit::reconcile) it is the kit's pinned time
//! instead, so tests can assert the timestamps a reconcile writes (e.g. a condition's
//! `lastTransitionTime`).

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The time the test kit pinned for the call running on this thread, if any.
    static PINNED: Cell<Option<SystemTime>> = const { Cell::new(None) };
}

/// The current time: the host's wall clock, or the [test kit](crate::testkit::TestKit)'s
/// pinned time while it runs a reconcile or cleanup.
pub fn now() -> SystemTime {
    PINNED.with(Cell::get).unwrap_or_else(SystemTime::now)
}

/// Formats `time` the way Kubernetes writes a `metav1.Time`: RFC 3339 in UTC, to the second
/// (a fraction is dropped), e.g. `2026-12-03T18:00:00Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use wasm_reconciler_sdk::clock::rfc3339;
///
/// assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_796_320_800)), "2026-12-03T18:00:00Z");
/// ```
pub fn rfc3339(time: SystemTime) -> String {
    let seconds = unix_seconds(time);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// `time` as whole seconds since the Unix epoch, rounded down (also before the epoch),
/// saturating at the ends of `i64`.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let partial = i64::from(before.subsec_nanos() > 0);
            whole.saturating_neg().saturating_sub(partial)
        }
    }
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01: Howard
/// Hinnant's `civil_from_days`, which counts in 400-year eras of 146 097 days whose years start
/// on 1 March, so that the leap day falls at the end of a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Days since 0000-03-01, the start of an era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 for March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    }; // [1, 12]
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are within their ranges above, so the conversions cannot fail.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Pins [`now`] on this thread to a fixed time until dropped, then restores what was there.
#[derive(Debug)]
pub(crate) struct Pin {
    previous: Option<SystemTime>,
}

/// Pins [`now`] to `time` for as long as the returned guard lives.
pub(crate) fn pin(time: SystemTime) -> Pin {
    Pin {
        previous: PINNED.with(|pinned| pinned.replace(Some(time))),
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        PINNED.with(|pinned| pinned.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(seconds: i64) -> SystemTime {
        let magnitude = Duration::from_secs(seconds.unsigned_abs());
        if seconds >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    #[test]
    fn known_dates_format_like_kubernetes() {
        // Checked against `date -u -d <date> +%s`.
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_210_096, "2024-02-29T12:34:56Z"),
            (1_767_225_600, "2026-01-01T00:00:00Z"),
            (1_796_320_800, "2026-12-03T18:00:00Z"),
            (4_133_980_799, "2100-12-31T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (-2_203_891_200, "1900-03-01T00:00:00Z"),
            (-11_676_096_000, "1600-01-01T00:00:00Z"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(rfc3339(at(seconds)), expected, "{seconds}");
        }
    }

    #[test]
    fn fractions_of_a_second_are_dropped_toward_the_past() {
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_999)),
            "1970-01-01T00:00:01Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        // Day by day from 1900-01-01 to 2300-12-31: the date advances by exactly one day,
        // months have their lengths, and 29 February comes only in leap years.
        let mut previous = civil_from_days(-25_567);
        assert_eq!(previous, (1900, 1, 1));
        for days in -25_566..=120_894 {
            let date = civil_from_days(days);
            let expected = if previous.2 < month_length(previous) {
                (previous.0, previous.1, previous.2 + 1)
            } else if previous.1 < 12 {
                (previous.0, previous.1 + 1, 1)
            } else {
                (previous.0 + 1, 1, 1)
            };
            assert_eq!(date, expected, "day {days}");
            previous = date;
        }
        assert_eq!(previous, (2300, 12, 31));
    }

    fn month_length((year, month, _): (i64, u32, u32)) -> u32 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn pinning_overrides_now_until_dropped() {
        let pinned = at(0);
        {
            let _pin = pin(pinned);
            assert_eq!(now(), pinned);
            {
                let _inner = pin(at(1));
                assert_eq!(now(), at(1));
            }
            assert_eq!(now(), pinned);
        }
        assert_ne!(now(), pinned);
    }
}
