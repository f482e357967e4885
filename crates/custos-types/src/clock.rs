//! The real clock, in the unit every record and row uses: unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in unix milliseconds (0 if the clock is before 1970).
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
