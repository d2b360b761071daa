//! RFC 3339 UTC timestamps, the format distribution writes into `startedat`, notification
//! events and token responses; small enough not to pull a date crate for.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` to the second, e.g. `2023-11-14T22:13:20Z`.
pub fn seconds(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}Z", date_time(secs))
}

/// `t` with nanoseconds, as Go's `time.Time` marshals, e.g. `2023-11-14T22:13:20.000000001Z`.
pub fn nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}Z", date_time(d.as_secs()), d.subsec_nanos())
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch.
fn date_time(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_table() {
        let at = |s: u64, n: u32| UNIX_EPOCH + Duration::new(s, n);
        let cases = [
            (at(0, 0), "1970-01-01T00:00:00Z"),
            (at(951_782_400, 0), "2000-02-29T00:00:00Z"),
            (at(1_700_000_000, 0), "2023-11-14T22:13:20Z"),
            (at(1_795_999_999, 0), "2026-11-30T00:53:19Z"),
        ];
        for (t, want) in cases {
            assert_eq!(seconds(t), want);
        }
        assert_eq!(
            nanos(at(1_700_000_000, 1)),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(
            seconds(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }
}
