//! Restrictions: what a `risk_step_up` or `risk_lower_quota` finding imposes on a person
//! for a while, for the gateway to enforce.
//!
//! The detector does not depend on the gateway (the gateway depends on it), so it hands
//! each restriction to a [`RestrictionHook`] given to [`crate::start`]; the server wires
//! the hook to the gateway's in-memory quota state. The alert is the durable form: at
//! start the gateway re-applies the restrictions of recent alerts that were not
//! dismissed ([`Restriction::of_alert`]), and dismissing an alert lifts its restriction.
//!
//! A restriction lasts [`RESTRICTION_MS`] from its alert's time (`created_at`): the
//! triggering record's time under a simulated clock, the time of the act (normally
//! milliseconds after the record) under the real clock. Both the detector and the
//! re-application at start derive it from that one time, so a restart changes nothing.

use std::sync::Arc;

use custos_store::AlertRecord;
use custos_types::calendar::DAY_MS;

use crate::score::Action;

/// How long a restriction lasts from its alert's time: 24 hours.
pub const RESTRICTION_MS: i64 = DAY_MS;

/// The status of an alert an analyst judged a false positive; it imposes nothing.
pub const DISMISSED: &str = "dismissed";

/// What a person may do less of while restricted. Ordered by strength: a lowered quota
/// also requires the step-up justification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RestrictionKind {
    /// Reveals need a step-up justification (`risk_step_up`).
    StepUp,
    /// Quotas are lowered, and reveals need a step-up justification
    /// (`risk_lower_quota`).
    LowerQuota,
}

impl RestrictionKind {
    /// Both kinds, weakest first.
    pub const ALL: [RestrictionKind; 2] = [RestrictionKind::StepUp, RestrictionKind::LowerQuota];

    /// The restriction a finding or alert of kind `kind` imposes, if any.
    pub fn of_finding(kind: &str) -> Option<RestrictionKind> {
        RestrictionKind::ALL
            .into_iter()
            .find(|r| r.finding_kind() == kind)
    }

    /// The finding (and alert) kind that imposes it.
    pub fn finding_kind(self) -> &'static str {
        match self {
            RestrictionKind::StepUp => Action::StepUp.kind(),
            RestrictionKind::LowerQuota => Action::LowerQuota.kind(),
        }
    }

    /// Wire name, e.g. in `GET /v1/me`: `step_up` or `lower_quota`.
    pub fn as_str(self) -> &'static str {
        match self {
            RestrictionKind::StepUp => "step_up",
            RestrictionKind::LowerQuota => "lower_quota",
        }
    }

    /// The alert's `action` once the restriction is imposed.
    pub fn alert_action(self) -> &'static str {
        match self {
            RestrictionKind::StepUp => "step_up_required",
            RestrictionKind::LowerQuota => "quota_lowered",
        }
    }

    /// The action of the detector's ledger entry for imposing it.
    pub fn ledger_action(self) -> custos_types::Action {
        match self {
            RestrictionKind::StepUp => custos_types::Action::RequireStepUp,
            RestrictionKind::LowerQuota => custos_types::Action::LowerQuota,
        }
    }
}

/// A restriction on one person until a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    /// The person.
    pub staff_id: String,
    /// What is restricted.
    pub kind: RestrictionKind,
    /// In force for requests before this time, unix milliseconds.
    pub until_ms: i64,
    /// The alert that imposed it (dismissing the alert lifts it).
    pub alert_id: String,
}

impl Restriction {
    /// The restriction `alert` imposed: none for other kinds of alert, for one whose
    /// action says nothing was imposed (raised without a hook, or before restrictions
    /// were enforced) or for a dismissed one. Expired restrictions are returned too:
    /// under a simulated clock only the requests' own time says whether one is still in
    /// force.
    pub fn of_alert(alert: &AlertRecord) -> Option<Restriction> {
        let kind = RestrictionKind::of_finding(&alert.kind)?;
        if alert.status == DISMISSED || alert.action != kind.alert_action() {
            return None;
        }
        Some(Restriction {
            staff_id: alert.staff_id.clone(),
            kind,
            until_ms: alert.created_at.saturating_add(RESTRICTION_MS),
            alert_id: alert.id.clone(),
        })
    }
}

/// Receives each restriction the detector imposes. Called from the detector's task: it
/// must return quickly and never block on I/O.
pub type RestrictionHook = Arc<dyn Fn(Restriction) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: &str, status: &str) -> AlertRecord {
        let action = RestrictionKind::of_finding(kind).map_or("none", |k| k.alert_action());
        AlertRecord {
            id: "alr_1".into(),
            created_at: 1_000,
            staff_id: "alice".into(),
            org: "acme".into(),
            severity: "high".into(),
            kind: kind.into(),
            reasons: Vec::new(),
            entries: vec![7],
            action: action.into(),
            status: status.into(),
            updated_at: 1_000,
            reviewed_by: Vec::new(),
        }
    }

    #[test]
    fn alerts_impose_restrictions_unless_dismissed() {
        let r = Restriction::of_alert(&alert("risk_lower_quota", "acknowledged")).unwrap();
        assert_eq!(r.kind, RestrictionKind::LowerQuota);
        assert_eq!(r.until_ms, 1_000 + RESTRICTION_MS);
        assert_eq!(
            (r.staff_id.as_str(), r.alert_id.as_str()),
            ("alice", "alr_1")
        );
        let r = Restriction::of_alert(&alert("risk_step_up", "open")).unwrap();
        assert_eq!(r.kind, RestrictionKind::StepUp);
        assert_eq!(
            Restriction::of_alert(&alert("risk_step_up", "dismissed")),
            None
        );
        // An alert of the kind on which nothing was imposed imposes nothing later.
        let unenforced = AlertRecord {
            action: "none".into(),
            ..alert("risk_lower_quota", "open")
        };
        assert_eq!(Restriction::of_alert(&unenforced), None);
        for other in ["risk_suspend", "canary_hit", "org_risk"] {
            assert_eq!(Restriction::of_alert(&alert(other, "open")), None);
        }
    }

    #[test]
    fn a_lowered_quota_is_the_stronger_restriction() {
        assert!(RestrictionKind::LowerQuota > RestrictionKind::StepUp);
    }
}
