//! Ledger entries and alerts as OCSF events (Open Cybersecurity Schema Framework, version
//! [`OCSF_VERSION`], no profiles, no extensions), free of any store or transport: the
//! service's exporter (`custos-service/src/export.rs`) reads the ledger and the alerts
//! and hands each one here, then sends what comes back.
//!
//! # Which class
//!
//! | what | class | `class_uid` |
//! |---|---|---|
//! | a sign-in (`me`), a token issued, any request whose credential was refused | Authentication | 3002 |
//! | staff created, suspended, resumed, changed or deleted (by an admin, SCIM or the detector), a token revoked, a detector restriction | Account Change | 3001 |
//! | an alert | Detection Finding | 2004 |
//! | everything else | API Activity | 6003 |
//!
//! # What an event holds
//!
//! Only what the ledger entry or the alert holds, and the ledger holds ids and fixed
//! words only (`custos-access/src/entry.rs`): staff, customer and case by id, fields by
//! name, decisions by word, the client's address. No name, phone number, email or other
//! customer value can reach an event, because none reaches these inputs.
//!
//! - `metadata.uid` is the ledger index (its decimal string) or the alert's id, so a
//!   receiver can drop the duplicates an at-least-once delivery may bring;
//! - `actor.user` is the staff id, their organisation (`org.uid`) and their role (the
//!   one entry of `groups`); `actor.authorizations` the decision and, when allowed, the
//!   deciding policy;
//! - `status_id` is 1 (Success) for `allow`, 2 (Failure) for `deny` and `error`, and
//!   `status_code` the entry's reason code;
//! - `unmapped` carries the rest of the entry under its own names (`ledger_index`,
//!   `role`, `fields`, `customer_id`, `case_id`, `target`, `reason_code`), so nothing
//!   the ledger says is lost on the way.

use custos_types::{Action, Decision, RecordedRole, Role};
use serde_json::{Map, Value, json};

/// The OCSF schema version the events follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.8.0";

/// `metadata.product.name` and `vendor_name`.
pub const PRODUCT: &str = "Custos";

/// `metadata.log_name` of events made from ledger entries.
pub const LEDGER_LOG: &str = "ledger";

/// `metadata.log_name` of events made from alerts.
pub const ALERTS_LOG: &str = "alerts";

/// One ledger entry, as `custos-access` decodes it, with its index.
#[derive(Clone, Copy, Debug)]
pub struct LedgerEntry<'a> {
    /// Its position in the ledger.
    pub index: u64,
    /// The request's id.
    pub request_id: &'a str,
    /// When, unix milliseconds.
    pub at: i64,
    /// Who acted (a staff id, or a principal word such as `system`).
    pub staff_id: &'a str,
    /// Their organisation.
    pub org: &'a str,
    /// Their role, or the principal that is not staff.
    pub role: RecordedRole,
    /// What was asked for.
    pub action: Action,
    /// The customer it touched, by id.
    pub customer_id: Option<&'a str>,
    /// Field names or fixed facts (never values).
    pub fields: &'a [String],
    /// The case it went through, by id.
    pub case_id: Option<&'a str>,
    /// What an administrative act acted on (a staff id, a token id).
    pub target: Option<&'a str>,
    /// Allowed, refused or failed.
    pub decision: Decision,
    /// The deciding policy's id, or the refusal's stable code.
    pub reason_code: &'a str,
    /// The client's address, when the transport knew it.
    pub client: Option<&'a str>,
}

/// One alert, as the store holds it.
#[derive(Clone, Copy, Debug)]
pub struct Alert<'a> {
    /// Its stable id.
    pub id: &'a str,
    /// When it was raised, unix milliseconds.
    pub created_at: i64,
    /// The person it is about (staff id).
    pub staff_id: &'a str,
    /// Their organisation.
    pub org: &'a str,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: &'a str,
    /// What tripped, e.g. `canary_hit`.
    pub kind: &'a str,
    /// Why, in words built from counts, thresholds and ids.
    pub reasons: &'a [String],
    /// Ledger indexes of the entries behind it, the raising one last.
    pub entries: &'a [u64],
    /// What the detector did (`none`, `suspended`, …).
    pub action: &'a str,
    /// `open`, `acknowledged` or `dismissed`.
    pub status: &'a str,
}

/// The OCSF classes Custos's events belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// API Activity (6003), category Application Activity (6).
    ApiActivity,
    /// Authentication (3002), category Identity & Access Management (3).
    Authentication,
    /// Account Change (3001), category Identity & Access Management (3).
    AccountChange,
    /// Detection Finding (2004), category Findings (2).
    DetectionFinding,
}

impl Class {
    /// `class_uid`.
    pub const fn uid(self) -> u32 {
        match self {
            Class::ApiActivity => 6003,
            Class::Authentication => 3002,
            Class::AccountChange => 3001,
            Class::DetectionFinding => 2004,
        }
    }

    /// `class_name`.
    pub const fn name(self) -> &'static str {
        match self {
            Class::ApiActivity => "API Activity",
            Class::Authentication => "Authentication",
            Class::AccountChange => "Account Change",
            Class::DetectionFinding => "Detection Finding",
        }
    }

    /// `category_uid`.
    pub const fn category_uid(self) -> u32 {
        match self {
            Class::ApiActivity => 6,
            Class::Authentication | Class::AccountChange => 3,
            Class::DetectionFinding => 2,
        }
    }

    /// `category_name`.
    pub const fn category_name(self) -> &'static str {
        match self {
            Class::ApiActivity => "Application Activity",
            Class::Authentication | Class::AccountChange => "Identity & Access Management",
            Class::DetectionFinding => "Findings",
        }
    }
}

/// The class and `activity_id` of a ledger entry (module docs, "Which class"), with the
/// activity's OCSF caption (`None` for 99, Other: the action's word names it then).
pub fn classify(role: RecordedRole, action: Action) -> (Class, u32, Option<&'static str>) {
    use Action as A;
    if role == RecordedRole::Unauthenticated {
        // A credential was refused: a failed sign-in whatever it asked for.
        return (Class::Authentication, 1, Some("Logon"));
    }
    match action {
        A::Me => (Class::Authentication, 1, Some("Logon")),
        A::IssueToken => (Class::Authentication, 3, Some("Authentication Ticket")),
        A::CreateStaff | A::ScimCreateUser => (Class::AccountChange, 1, Some("Create")),
        A::ResumeStaff => (Class::AccountChange, 2, Some("Enable")),
        A::SuspendStaff => (Class::AccountChange, 5, Some("Disable")),
        A::ScimDeleteUser => (Class::AccountChange, 6, Some("Delete")),
        A::RequireStepUp | A::LowerQuota => (Class::AccountChange, 7, Some("Attach Policy")),
        A::ScimUpdateUser | A::RevokeToken => (Class::AccountChange, 99, None),
        A::View
        | A::Reveal
        | A::Search
        | A::ReadAccessRequests
        | A::ScimRead
        | A::ReadAccess
        | A::ReadActivity
        | A::ReadAlerts
        | A::ReadLedger
        | A::VerifyLedger
        | A::CustomerAccesses
        | A::CustomerCopy => (Class::ApiActivity, 2, Some("Read")),
        A::CreateCase
        | A::PostContact
        | A::RequestAccess
        | A::BreakGlass
        | A::CreateCustomer
        | A::ImportCustomers
        | A::ScimCreateGroup
        | A::IssueCustomerLink
        | A::AllocateCanary
        | A::PlantCanaries
        | A::KeyCreated => (Class::ApiActivity, 1, Some("Create")),
        A::CloseCase
        | A::ApproveAccess
        | A::DenyAccess
        | A::AcknowledgeAlert
        | A::DismissAlert
        | A::ScimUpdateGroup => (Class::ApiActivity, 3, Some("Update")),
        A::EraseCustomer | A::ScimDeleteGroup => (Class::ApiActivity, 4, Some("Delete")),
        // Calls, leak tracing, the server's own events: no CRUD verb fits.
        _ => (Class::ApiActivity, 99, None),
    }
}

/// The OCSF event of a ledger entry.
pub fn ledger_event(entry: &LedgerEntry<'_>) -> Value {
    let (class, activity_id, caption) = classify(entry.role, entry.action);
    let (status_id, status, severity_id, severity) = match entry.decision {
        Decision::Allow => (1, "Success", 1, "Informational"),
        // A refusal is what an insider meets first: worth a look.
        Decision::Deny => (2, "Failure", 3, "Medium"),
        Decision::Error => (2, "Failure", 2, "Low"),
    };
    let user = user(entry.staff_id, entry.org, entry.role);
    let mut authorization = json!({ "decision": entry.decision.as_str() });
    if entry.decision == Decision::Allow {
        authorization["policy"] = json!({ "uid": entry.reason_code });
    }
    let actor = json!({ "user": user, "authorizations": [authorization] });
    let mut event = header(
        class,
        activity_id,
        caption.unwrap_or(entry.action.as_str()),
        entry.at,
        severity_id,
        severity,
        metadata(&entry.index.to_string(), LEDGER_LOG),
    );
    event.insert("status_id".into(), json!(status_id));
    event.insert("status".into(), json!(status));
    event.insert("status_code".into(), json!(entry.reason_code));
    event.insert("message".into(), json!(entry.action.as_str()));
    event.insert("actor".into(), actor);
    event.insert("src_endpoint".into(), endpoint(entry.client));
    match class {
        Class::ApiActivity => {
            event.insert(
                "api".into(),
                json!({
                    "operation": entry.action.as_str(),
                    "request": { "uid": entry.request_id },
                    "service": { "name": PRODUCT },
                }),
            );
            let resources: Vec<Value> = [
                ("customer", entry.customer_id),
                ("case", entry.case_id),
                ("target", entry.target),
            ]
            .into_iter()
            .filter_map(|(kind, id)| id.map(|id| json!({ "uid": id, "type": kind })))
            .collect();
            if !resources.is_empty() {
                event.insert("resources".into(), Value::Array(resources));
            }
        }
        Class::Authentication => {
            event.insert("user".into(), user_of(entry, entry.staff_id));
            event.insert("service".into(), json!({ "name": PRODUCT }));
        }
        Class::AccountChange => {
            // The account changed: the one acted on, else the actor's own.
            let subject = entry.target.unwrap_or(entry.staff_id);
            event.insert("user".into(), user_of(entry, subject));
        }
        Class::DetectionFinding => {}
    }
    let mut unmapped = Map::new();
    unmapped.insert("ledger_index".into(), json!(entry.index));
    unmapped.insert("request_id".into(), json!(entry.request_id));
    unmapped.insert("role".into(), json!(entry.role.as_str()));
    unmapped.insert("reason_code".into(), json!(entry.reason_code));
    if !entry.fields.is_empty() {
        unmapped.insert("fields".into(), json!(entry.fields));
    }
    for (key, value) in [
        ("customer_id", entry.customer_id),
        ("case_id", entry.case_id),
        ("target", entry.target),
    ] {
        if let Some(value) = value {
            unmapped.insert(key.into(), json!(value));
        }
    }
    event.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(event)
}

/// The OCSF event (Detection Finding) of an alert.
pub fn alert_event(alert: &Alert<'_>) -> Value {
    let (severity_id, severity) = match alert.severity {
        "low" => (2, "Low"),
        "medium" => (3, "Medium"),
        "high" => (4, "High"),
        "critical" => (5, "Critical"),
        _ => (99, "Other"),
    };
    let (status_id, status) = match alert.status {
        "open" => (1, "New"),
        "acknowledged" => (2, "In Progress"),
        "dismissed" => (3, "Suppressed"),
        _ => (99, "Other"),
    };
    let mut event = header(
        Class::DetectionFinding,
        1,
        "Create",
        alert.created_at,
        severity_id,
        severity,
        metadata(alert.id, ALERTS_LOG),
    );
    let related: Vec<Value> = alert
        .entries
        .iter()
        .map(|index| json!({ "uid": index.to_string() }))
        .collect();
    event.insert("status_id".into(), json!(status_id));
    event.insert("status".into(), json!(status));
    event.insert("is_alert".into(), json!(true));
    event.insert("message".into(), json!(alert.kind));
    event.insert(
        "finding_info".into(),
        json!({
            "uid": alert.id,
            "title": alert.kind,
            "types": [alert.kind],
            "desc": alert.reasons.join("; "),
            "created_time": alert.created_at,
            "related_events": related,
            "related_events_count": alert.entries.len(),
        }),
    );
    event.insert(
        "resources".into(),
        json!([{ "uid": alert.staff_id, "type": "staff", "group": { "uid": alert.org } }]),
    );
    event.insert(
        "unmapped".into(),
        json!({
            "staff_id": alert.staff_id,
            "org": alert.org,
            "action": alert.action,
            "entries": alert.entries,
        }),
    );
    Value::Object(event)
}

/// What every event starts with: its class and activity, time, severity and metadata.
fn header(
    class: Class,
    activity_id: u32,
    activity_name: &str,
    time: i64,
    severity_id: u32,
    severity: &str,
    metadata: Value,
) -> Map<String, Value> {
    let mut event = Map::new();
    event.insert("class_uid".into(), json!(class.uid()));
    event.insert("class_name".into(), json!(class.name()));
    event.insert("category_uid".into(), json!(class.category_uid()));
    event.insert("category_name".into(), json!(class.category_name()));
    event.insert("activity_id".into(), json!(activity_id));
    event.insert("activity_name".into(), json!(activity_name));
    event.insert(
        "type_uid".into(),
        json!(u64::from(class.uid()) * 100 + u64::from(activity_id)),
    );
    event.insert(
        "type_name".into(),
        json!(format!("{}: {activity_name}", class.name())),
    );
    event.insert("time".into(), json!(time));
    event.insert("severity_id".into(), json!(severity_id));
    event.insert("severity".into(), json!(severity));
    event.insert("metadata".into(), metadata);
    event
}

fn metadata(uid: &str, log_name: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {
            "name": PRODUCT,
            "vendor_name": PRODUCT,
            "version": env!("CARGO_PKG_VERSION"),
        },
        "uid": uid,
        "log_name": log_name,
    })
}

/// `user` of an Authentication or Account Change event: `uid`, with the actor's
/// organisation and role only when it is the actor's own account.
fn user_of(entry: &LedgerEntry<'_>, uid: &str) -> Value {
    if uid == entry.staff_id {
        user(entry.staff_id, entry.org, entry.role)
    } else {
        json!({ "uid": uid })
    }
}

fn user(staff_id: &str, org: &str, role: RecordedRole) -> Value {
    let (type_id, kind) = match role {
        RecordedRole::Staff(Role::Admin) => (2, "Admin"),
        RecordedRole::Staff(
            Role::Integration | Role::ContactCenter | Role::Telephony | Role::Scim,
        ) => (4, "Service"),
        RecordedRole::Staff(_) | RecordedRole::Customer => (1, "User"),
        RecordedRole::System => (3, "System"),
        RecordedRole::Unauthenticated => (0, "Unknown"),
    };
    json!({
        "uid": staff_id,
        "type_id": type_id,
        "type": kind,
        "org": { "uid": org },
        "groups": [{ "name": role.as_str(), "type": "role" }],
    })
}

/// `src_endpoint`: the client's address, or, for the server's own entries (no client),
/// the server itself by name.
fn endpoint(client: Option<&str>) -> Value {
    match client {
        Some(ip) if ip.parse::<std::net::IpAddr>().is_ok() => json!({ "ip": ip }),
        Some(other) => json!({ "name": other }),
        None => json!({ "name": PRODUCT }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(action: Action, fields: &'a [String]) -> LedgerEntry<'a> {
        LedgerEntry {
            index: 41,
            request_id: "req_1",
            at: 1_700_000_000_000,
            staff_id: "alice",
            org: "custos",
            role: RecordedRole::Staff(Role::Support),
            action,
            customer_id: Some("cus_1"),
            fields,
            case_id: Some("case_1"),
            target: None,
            decision: Decision::Allow,
            reason_code: "reveal-with-case",
            client: Some("127.0.0.1"),
        }
    }

    #[test]
    fn a_reveal_is_api_activity_read() {
        let fields = vec!["phone".to_owned()];
        let event = ledger_event(&entry(Action::Reveal, &fields));
        assert_eq!(event["class_uid"], 6003);
        assert_eq!(event["category_uid"], 6);
        assert_eq!(event["activity_id"], 2);
        assert_eq!(event["type_uid"], 600302);
        assert_eq!(event["metadata"]["uid"], "41");
        assert_eq!(event["metadata"]["version"], OCSF_VERSION);
        assert_eq!(event["api"]["operation"], "reveal");
        assert_eq!(event["actor"]["user"]["uid"], "alice");
        assert_eq!(event["actor"]["user"]["org"]["uid"], "custos");
        assert_eq!(event["status_id"], 1);
        assert_eq!(event["src_endpoint"]["ip"], "127.0.0.1");
        assert_eq!(event["unmapped"]["fields"][0], "phone");
        assert_eq!(event["resources"][0]["uid"], "cus_1");
    }

    #[test]
    fn classes_follow_the_action() {
        let none: Vec<String> = Vec::new();
        let staff = RecordedRole::Staff(Role::Admin);
        for (action, class, activity) in [
            (Action::Me, 3002, 1),
            (Action::IssueToken, 3002, 3),
            (Action::SuspendStaff, 3001, 5),
            (Action::ScimCreateUser, 3001, 1),
            (Action::LowerQuota, 3001, 7),
            (Action::ServerStart, 6003, 99),
            (Action::EraseCustomer, 6003, 4),
        ] {
            let mut e = entry(action, &none);
            e.role = staff;
            e.target = Some("bob");
            let event = ledger_event(&e);
            assert_eq!(event["class_uid"], class, "{action}");
            assert_eq!(event["activity_id"], activity, "{action}");
            if class == 3001 {
                assert_eq!(event["user"]["uid"], "bob");
            }
        }
        let mut refused = entry(Action::View, &none);
        refused.role = RecordedRole::Unauthenticated;
        refused.decision = Decision::Deny;
        let event = ledger_event(&refused);
        assert_eq!(event["class_uid"], 3002);
        assert_eq!(event["status_id"], 2);
        assert_eq!(event["actor"]["authorizations"][0]["decision"], "deny");
        assert!(event["actor"]["authorizations"][0].get("policy").is_none());
    }

    #[test]
    fn an_alert_is_a_detection_finding() {
        let reasons = vec!["canary cus_9 viewed".to_owned()];
        let event = alert_event(&Alert {
            id: "al_1",
            created_at: 5,
            staff_id: "mallory",
            org: "custos",
            severity: "critical",
            kind: "canary_hit",
            reasons: &reasons,
            entries: &[3, 7],
            action: "suspended",
            status: "open",
        });
        assert_eq!(event["class_uid"], 2004);
        assert_eq!(event["type_uid"], 200401);
        assert_eq!(event["severity_id"], 5);
        assert_eq!(event["finding_info"]["uid"], "al_1");
        assert_eq!(event["finding_info"]["related_events"][1]["uid"], "7");
        assert_eq!(event["metadata"]["uid"], "al_1");
    }
}
