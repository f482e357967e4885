//! The default policy set, rule by rule (issue 2, behaviour 8), and loading an operator's
//! policy directory.

use custos_types::Provenance;

use custos_policy::{
    AccessRequest, Action, CaseContext, PolicyEngine, PolicyError, Principal, Resource,
};

fn staff<'a>(id: &'a str, role: &'a str) -> Principal<'a> {
    Principal {
        id,
        role,
        org: "custos",
        partner: false,
        suspended: false,
    }
}

fn on_customer<'a>(
    p: Principal<'a>,
    action: Action,
    customer: &'a str,
    case: Option<CaseContext<'a>>,
) -> AccessRequest<'a> {
    AccessRequest {
        principal: p,
        action,
        resource: Resource::Customer { id: customer },
        case,
        granted: false,
    }
}

fn case<'a>(customer: &'a str, assignee: &'a str, open: bool) -> Option<CaseContext<'a>> {
    Some(CaseContext {
        id: "case_1",
        customer,
        assignee,
        open,
        provenance: Provenance::Verified,
    })
}

fn vault<'a>(p: Principal<'a>, action: Action) -> AccessRequest<'a> {
    AccessRequest {
        principal: p,
        action,
        resource: Resource::Vault,
        case: None,
        granted: false,
    }
}

const READS: [Action; 5] = [
    Action::View,
    Action::RevealName,
    Action::RevealPhone,
    Action::RevealEmail,
    Action::RevealAccountId,
];

#[test]
fn reads_need_an_open_case_assigned_to_the_caller_for_that_customer() {
    let engine = PolicyEngine::embedded().unwrap();
    let alice = staff("alice", "support");
    for action in READS {
        let ok = engine.decide(&on_customer(
            alice,
            action,
            "cus_1",
            case("cus_1", "alice", true),
        ));
        let expected = if action == Action::View {
            "view-with-case"
        } else {
            "reveal-with-case"
        };
        assert_eq!(
            (ok.allowed, ok.reason_code.as_str()),
            (true, expected),
            "{action:?}"
        );
        for (why, c) in [
            ("no case", None),
            ("closed case", case("cus_1", "alice", false)),
            ("someone else's case", case("cus_1", "bob", true)),
            ("case for another customer", case("cus_2", "alice", true)),
        ] {
            let d = engine.decide(&on_customer(alice, action, "cus_1", c));
            assert_eq!(
                (d.allowed, d.reason_code.as_str()),
                (false, "no_permit"),
                "{action:?}: {why}"
            );
        }
    }
}

/// Provenance (issue 18, item 2): a masked view on any open case of one's own; a field in
/// full only while the channel vouches that the customer is on the line.
#[test]
fn reveals_need_a_case_the_channel_verified_views_do_not() {
    let engine = PolicyEngine::embedded().unwrap();
    let alice = staff("alice", "support");
    for provenance in Provenance::ALL.iter().copied() {
        let c = Some(CaseContext {
            provenance,
            ..case("cus_1", "alice", true).unwrap()
        });
        for action in READS {
            let d = engine.decide(&on_customer(alice, action, "cus_1", c));
            let expected = match (action, provenance) {
                (Action::View, _) => (true, "view-with-case"),
                (_, Provenance::Verified) => (true, "reveal-with-case"),
                _ => (false, "no_permit"),
            };
            assert_eq!(
                (d.allowed, d.reason_code.as_str()),
                expected,
                "{action:?} on a {provenance} case"
            );
        }
    }
}

/// Only the contact centre reports contacts; the CRM, agents and admins do not.
#[test]
fn only_the_contact_center_reports_contacts() {
    let engine = PolicyEngine::embedded().unwrap();
    for role in [
        "support",
        "sales",
        "team_lead",
        "security_analyst",
        "admin",
        "integration",
        "telephony",
    ] {
        let d = engine.decide(&vault(staff("x", role), Action::PostContact));
        assert!(!d.allowed, "{role}");
    }
    let d = engine.decide(&vault(
        staff("switch", "contact_center"),
        Action::PostContact,
    ));
    assert_eq!(
        (d.allowed, d.reason_code.as_str()),
        (true, "contact-center-reports")
    );
}

/// Who can ever see a plaintext value (README, "Who sees what"): only the roles that
/// serve customers, and only under their own open case. Every other role is refused by
/// `serves-customers` even with a case that names it as the assignee, partner or not.
#[test]
fn only_roles_that_serve_customers_ever_read_a_record() {
    let engine = PolicyEngine::embedded().unwrap();
    let roles = [
        ("support", true),
        ("sales", true),
        ("team_lead", true),
        ("security_analyst", false),
        ("admin", false),
        ("integration", false),
        ("customer", false),
        ("system", false),
        ("", false),
        ("Support", false),
    ];
    for (role, serves) in roles {
        for partner in [false, true] {
            let p = Principal {
                partner,
                ..staff("x", role)
            };
            for action in READS {
                let d = engine.decide(&on_customer(p, action, "cus_1", case("cus_1", "x", true)));
                let partner_email = partner && action == Action::RevealEmail;
                let expected = match (serves, partner_email) {
                    (true, false) => (
                        true,
                        if action == Action::View {
                            "view-with-case"
                        } else {
                            "reveal-with-case"
                        },
                    ),
                    (true, true) => (false, "partner-no-email"),
                    (false, _) => (false, "serves-customers"),
                };
                assert_eq!(
                    (d.allowed, d.reason_code.as_str()),
                    expected,
                    "{role:?} partner={partner} {action:?}"
                );
            }
        }
    }
}

#[test]
fn suspended_staff_are_denied_everything() {
    let engine = PolicyEngine::embedded().unwrap();
    for role in ["support", "admin", "security_analyst", "integration"] {
        let p = Principal {
            suspended: true,
            ..staff("alice", role)
        };
        for action in Action::ALL {
            let req = match action {
                Action::CreateCase | Action::CloseCase => AccessRequest {
                    principal: p,
                    action,
                    resource: Resource::Case(CaseContext {
                        id: "case_1",
                        customer: "cus_1",
                        assignee: "alice",
                        open: true,
                        provenance: Provenance::Verified,
                    }),
                    case: None,
                    granted: false,
                },
                Action::Search => on_customer(p, action, "-", None),
                Action::View
                | Action::RevealName
                | Action::RevealPhone
                | Action::RevealEmail
                | Action::RevealAccountId => AccessRequest {
                    granted: true,
                    ..on_customer(p, action, "cus_1", case("cus_1", "alice", true))
                },
                Action::RequestAccess
                | Action::BreakGlass
                | Action::ContactCall
                | Action::ContactEmail
                | Action::ContactSms => {
                    on_customer(p, action, "cus_1", case("cus_1", "alice", true))
                }
                Action::DecideAccess => AccessRequest {
                    principal: p,
                    action,
                    resource: Resource::AccessRequest {
                        id: "req_1",
                        requester: "bob",
                        requester_org: "huaxin",
                    },
                    case: None,
                    granted: false,
                },
                _ => vault(p, action),
            };
            let d = engine.decide(&req);
            // Export meets two forbids; the first in the file, "suspended", is named.
            assert_eq!(
                (d.allowed, d.reason_code.as_str()),
                (false, "suspended"),
                "{role} {action:?}"
            );
        }
    }
}

const CONTACTS: [Action; 3] = [
    Action::ContactCall,
    Action::ContactEmail,
    Action::ContactSms,
];

/// A relay reaches a customer under the same binding as a reveal: an open case of the
/// caller's for that customer, a role that serves customers. Partner staff may email
/// this way (the address is never shown to them).
#[test]
fn contacts_are_bound_to_an_open_case_of_the_caller() {
    let engine = PolicyEngine::embedded().unwrap();
    for partner in [false, true] {
        let alice = Principal {
            partner,
            ..staff("alice", "support")
        };
        for action in CONTACTS {
            let ok = engine.decide(&on_customer(
                alice,
                action,
                "cus_1",
                case("cus_1", "alice", true),
            ));
            assert_eq!(
                (ok.allowed, ok.reason_code.as_str()),
                (true, "contact-with-case"),
                "{action:?} partner={partner}"
            );
            for c in [
                None,
                case("cus_1", "alice", false),
                case("cus_1", "bob", true),
                case("cus_2", "alice", true),
            ] {
                let d = engine.decide(&on_customer(alice, action, "cus_1", c));
                assert_eq!((d.allowed, d.reason_code.as_str()), (false, "no_permit"));
            }
        }
    }
    for role in [
        "admin",
        "security_analyst",
        "integration",
        "telephony",
        "contact_center",
    ] {
        for action in CONTACTS {
            let d = engine.decide(&on_customer(
                staff("x", role),
                action,
                "cus_1",
                case("cus_1", "x", true),
            ));
            assert_eq!(
                (d.allowed, d.reason_code.as_str()),
                (false, "serves-customers"),
                "{role} {action:?}"
            );
        }
    }
}

/// Only the PBX learns where a privacy number leads.
#[test]
fn only_telephony_resolves_calls() {
    let engine = PolicyEngine::embedded().unwrap();
    for role in [
        "support",
        "sales",
        "team_lead",
        "admin",
        "security_analyst",
        "integration",
        "contact_center",
        "telephony",
    ] {
        let d = engine.decide(&vault(staff("x", role), Action::ResolveCall));
        let expected = if role == "telephony" {
            (true, "pbx-resolves-calls")
        } else {
            (false, "no_permit")
        };
        assert_eq!((d.allowed, d.reason_code.as_str()), expected, "{role}");
    }
}

#[test]
fn partner_staff_may_not_reveal_email() {
    let engine = PolicyEngine::embedded().unwrap();
    let bob = Principal {
        org: "huaxin-bpo",
        partner: true,
        ..staff("bob", "support")
    };
    let c = case("cus_1", "bob", true);
    let d = engine.decide(&on_customer(bob, Action::RevealEmail, "cus_1", c));
    assert_eq!(
        (d.allowed, d.reason_code.as_str()),
        (false, "partner-no-email")
    );
    assert!(
        engine
            .decide(&on_customer(bob, Action::RevealPhone, "cus_1", c))
            .allowed
    );
    let company = staff("bob", "support");
    assert!(
        engine
            .decide(&on_customer(company, Action::RevealEmail, "cus_1", c))
            .allowed
    );
}

#[test]
fn no_one_exports_and_roles_gate_the_rest() {
    let engine = PolicyEngine::embedded().unwrap();
    for role in ["admin", "security_analyst", "integration", "support"] {
        let d = engine.decide(&vault(staff("x", role), Action::Export));
        assert!(!d.allowed, "{role}");
    }
    assert_eq!(
        engine
            .decide(&vault(staff("x", "admin"), Action::Export))
            .reason_code,
        "no-bulk-export"
    );
    let allowed = |role, action| engine.decide(&vault(staff("x", role), action)).allowed;
    assert!(allowed("admin", Action::ManageStaff));
    assert!(!allowed("security_analyst", Action::ManageStaff));
    // Provisioning is the scim principal's alone, erasure the privacy officer's alone;
    // neither sees a customer.
    for role in [
        "admin",
        "security_analyst",
        "support",
        "integration",
        "privacy_officer",
    ] {
        assert!(!allowed(role, Action::ProvisionStaff), "{role} provisions");
    }
    assert!(allowed("scim", Action::ProvisionStaff));
    for role in ["admin", "security_analyst", "support", "team_lead", "scim"] {
        assert!(!allowed(role, Action::EraseCustomer), "{role} erases");
    }
    assert!(allowed("privacy_officer", Action::EraseCustomer));
    // Only admins rotate keys.
    for role in [
        "security_analyst",
        "support",
        "team_lead",
        "integration",
        "scim",
        "privacy_officer",
    ] {
        assert!(!allowed(role, Action::RotateKeys), "{role} rotates keys");
    }
    assert!(allowed("admin", Action::RotateKeys));
    assert!(allowed("security_analyst", Action::SuspendStaff));
    assert!(!allowed("team_lead", Action::SuspendStaff));
    assert!(allowed("security_analyst", Action::ReadAccess));
    assert!(!allowed("support", Action::ReadAccess));
    assert!(allowed("integration", Action::CustomerPortal));
    assert!(allowed("admin", Action::CustomerPortal));
    assert!(!allowed("security_analyst", Action::CustomerPortal));
    assert!(!allowed("support", Action::CustomerPortal));
    assert!(allowed("integration", Action::CreateCustomer));
    assert!(!allowed("sales", Action::CreateCustomer));
    assert!(allowed("admin", Action::ImportCustomers));
    assert!(!allowed("integration", Action::ImportCustomers));
    let new_case = |role, id| AccessRequest {
        principal: staff(id, role),
        action: Action::CreateCase,
        resource: Resource::Case(CaseContext {
            id: "case_9",
            customer: "cus_1",
            assignee: "alice",
            open: true,
            provenance: Provenance::Verified,
        }),
        case: None,
        granted: false,
    };
    assert!(engine.decide(&new_case("integration", "crm")).allowed);
    assert!(
        !engine.decide(&new_case("support", "alice")).allowed,
        "agents cannot open their own pretext cases"
    );
    let close = |role, id| AccessRequest {
        principal: staff(id, role),
        action: Action::CloseCase,
        resource: Resource::Case(CaseContext {
            id: "case_9",
            customer: "cus_1",
            assignee: "alice",
            open: true,
            provenance: Provenance::Verified,
        }),
        case: None,
        granted: false,
    };
    assert!(engine.decide(&close("support", "alice")).allowed);
    assert!(!engine.decide(&close("support", "bob")).allowed);
    let search = |role| {
        engine
            .decide(&on_customer(staff("x", role), Action::Search, "-", None))
            .allowed
    };
    assert!(search("support") && search("sales") && search("team_lead"));
    assert!(!search("integration") && !search("admin"));
}

fn policy_dir(policies: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custos.cedarschema"),
        custos_policy::DEFAULT_SCHEMA,
    )
    .unwrap();
    for (name, text) in policies {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn operator_directory_replaces_the_defaults() {
    let dir = policy_dir(&[(
        "open.cedar",
        "@id(\"analysts-read\")\npermit (principal, action == Custos::Action::\"read_access\", resource) when { principal.role == \"security_analyst\" };\n",
    )]);
    let engine = PolicyEngine::load_dir(dir.path()).unwrap();
    assert_eq!(engine.policy_ids(), vec!["analysts-read".to_owned()]);
    assert!(
        !engine
            .decide(&vault(staff("x", "admin"), Action::ReadAccess))
            .allowed
    );
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = policy_dir(&[(
        "broken.cedar",
        "// one\n// two\npermit (principal, action, resource) when { principal.role == };\n",
    )]);
    let err = PolicyEngine::load_dir(dir.path()).err().unwrap();
    match &err {
        PolicyError::Parse { file, line, .. } => {
            assert!(file.ends_with("broken.cedar"));
            assert_eq!(*line, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), "policy_parse");
    assert!(err.to_string().contains("broken.cedar:3:"), "{err}");
}

#[test]
fn schema_violation_names_file_and_line() {
    let dir = policy_dir(&[
        (
            "a.cedar",
            "@id(\"ok\")\nforbid (principal, action, resource) when { principal.suspended };\n",
        ),
        (
            "b.cedar",
            "\n\n\n@id(\"typo\")\npermit (principal, action == Custos::Action::\"view\", resource)\nwhen { principal.rank == 1 };\n",
        ),
    ]);
    let err = PolicyEngine::load_dir(dir.path()).err().unwrap();
    match &err {
        PolicyError::Validation { file, line, .. } => {
            assert!(file.ends_with("b.cedar"), "{}", file.display());
            assert_eq!(*line, 6, "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), "policy_invalid");
}

#[test]
fn layout_errors() {
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        PolicyEngine::load_dir(empty.path()).err().unwrap().code(),
        "policy_layout"
    );
    let no_policies = policy_dir(&[]);
    assert_eq!(
        PolicyEngine::load_dir(no_policies.path())
            .err()
            .unwrap()
            .code(),
        "policy_layout"
    );
    let twice = policy_dir(&[
        (
            "a.cedar",
            "@id(\"same\")\nforbid (principal, action, resource);\n",
        ),
        (
            "b.cedar",
            "@id(\"same\")\nforbid (principal, action, resource);\n",
        ),
    ]);
    assert_eq!(
        PolicyEngine::load_dir(twice.path()).err().unwrap().code(),
        "policy_layout"
    );
    let missing = PolicyEngine::load_dir(std::path::Path::new("/nonexistent/custos"))
        .err()
        .unwrap();
    assert_eq!(missing.code(), "policy_io");
}
