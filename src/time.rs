//! Wall-clock helpers. Planning never reads the clock; callers pass `now` in.

use k8s_openapi::jiff::{Timestamp, ToSpan};

/// The current time as RFC 3339 (UTC, whole seconds).
pub fn now_rfc3339() -> String {
    format_ts(Timestamp::now())
}

fn format_ts(ts: Timestamp) -> String {
    ts.round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or(ts)
        .to_string()
}

/// Whether `then` (RFC 3339) is more than `max_age_secs` before `now` (RFC 3339).
/// Unparseable input counts as stale.
pub fn older_than(then: &str, now: &str, max_age_secs: i64) -> bool {
    match (then.parse::<Timestamp>(), now.parse::<Timestamp>()) {
        (Ok(then), Ok(now)) => match then.checked_add(max_age_secs.seconds()) {
            Ok(limit) => limit < now,
            Err(_) => true,
        },
        _ => true,
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time.
pub fn unix_seconds(t: &str) -> Option<i64> {
    t.parse::<Timestamp>().ok().map(|t| t.as_second())
}

/// The day after `now` (RFC 3339), as `YYYY-MM-DD` (UTC).
pub fn next_day(now: &str) -> Option<String> {
    let t = now
        .parse::<Timestamp>()
        .ok()?
        .checked_add(24.hours())
        .ok()?;
    t.to_string().get(0..10).map(str::to_string)
}

/// The billing period (`YYYY-MM`, UTC) that `now` (RFC 3339) falls in.
pub fn billing_period(now: &str) -> String {
    now.get(0..7).unwrap_or("1970-01").to_string()
}

/// The billing period before `period` (`YYYY-MM`).
pub fn previous_period(period: &str) -> String {
    let year: i32 = period
        .get(0..4)
        .and_then(|y| y.parse().ok())
        .unwrap_or(1970);
    let month: u32 = period.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    if month <= 1 {
        format!("{:04}-12", year - 1)
    } else {
        format!("{year:04}-{:02}", month - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_periods() {
        assert_eq!(billing_period("2026-11-24T12:00:00Z"), "2026-11");
        assert_eq!(previous_period("2026-11"), "2026-10");
        assert_eq!(previous_period("2026-01"), "2025-12");
        assert_eq!(
            next_day("2026-11-30T23:00:00Z").as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(unix_seconds("1970-01-01T00:01:00Z"), Some(60));
    }

    #[test]
    fn staleness() {
        assert!(!older_than(
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:30:00Z",
            3600
        ));
        assert!(older_than(
            "2026-11-24T10:00:00Z",
            "2026-11-24T11:00:01Z",
            3600
        ));
        assert!(older_than("garbage", "2026-11-24T11:00:01Z", 3600));
        assert!(now_rfc3339().ends_with('Z'));
    }
}
