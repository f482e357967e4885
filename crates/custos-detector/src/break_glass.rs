//! Break-glass: access taken at once in an emergency is an alert at once, whatever the
//! person's history. It waits on the analysts' queue until two different analysts have
//! reviewed it (the gateway's alert review).

use custos_store::AccessRecord;
use custos_types::{Action, Decision};

use crate::Finding;

/// The alert kind of a break-glass.
pub const BREAK_GLASS: &str = "break_glass";

/// The finding for `record`, if it is an allowed break-glass.
pub fn check(record: &AccessRecord) -> Option<Finding> {
    if record.action != Action::BreakGlass || record.decision != Decision::Allow {
        return None;
    }
    let customer = record.customer_id.as_deref().unwrap_or("-");
    Some(Finding {
        kind: BREAK_GLASS,
        severity: "high",
        reasons: vec![format!(
            "took {} of customer {customer} by break-glass, with no approval: two analysts must review it",
            record.fields.join(", ")
        )],
        suspend: false,
        day_start: None,
    })
}
