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

#[cfg(test)]
mod tests {
    use super::*;

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
