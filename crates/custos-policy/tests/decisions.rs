//! Reason codes, failing closed, and how policies are named and ordered.

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

fn vault<'a>(p: Principal<'a>, action: Action) -> AccessRequest<'a> {
    AccessRequest {
        principal: p,
        action,
        resource: Resource::Vault,
        case: None,
        granted: false,
    }
}

fn open_case<'a>(customer: &'a str, assignee: &'a str) -> Option<CaseContext<'a>> {
    Some(CaseContext {
        id: "case_1",
        customer,
        assignee,
        open: true,
        provenance: Provenance::Verified,
    })
}

/// A directory with the shipped schema and the given policy files.
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
fn actions_name_their_cedar_ids() {
    assert_eq!(Action::RevealPhone.as_str(), "reveal_phone");
    assert_eq!(Action::ReadAccess.as_str(), "read_access");
    assert_eq!(Action::reveal("name"), Some(Action::RevealName));
    assert_eq!(Action::reveal("phone"), Some(Action::RevealPhone));
    assert_eq!(Action::reveal("email"), Some(Action::RevealEmail));
    assert_eq!(Action::reveal("account_id"), Some(Action::RevealAccountId));
    assert_eq!(Action::reveal("address"), None);
    let ids: std::collections::HashSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(ids.len(), Action::ALL.len());
    // Every action id is declared by the shipped schema.
    for action in Action::ALL {
        assert!(
            custos_policy::DEFAULT_SCHEMA.contains(action.as_str()),
            "{action:?}"
        );
    }
}

#[test]
fn reason_codes_name_the_deciding_rule() {
    let engine = PolicyEngine::embedded().unwrap();
    let cases = [
        (
            vault(staff("x", "admin"), Action::ReadAccess),
            (true, "read-access"),
        ),
        (
            vault(staff("x", "admin"), Action::ManageStaff),
            (true, "admin-manages"),
        ),
        (
            vault(staff("x", "security_analyst"), Action::SuspendStaff),
            (true, "suspend-staff"),
        ),
        (
            vault(staff("x", "integration"), Action::CreateCustomer),
            (true, "crm-opens-cases"),
        ),
        (
            vault(staff("x", "support"), Action::ManageStaff),
            (false, "no_permit"),
        ),
        (
            vault(staff("x", "admin"), Action::Export),
            (false, "no-bulk-export"),
        ),
    ];
    for (req, (allowed, code)) in cases {
        let d = engine.decide(&req);
        assert_eq!(
            (d.allowed, d.reason_code.as_str()),
            (allowed, code),
            "{req:?}"
        );
    }
    let search = AccessRequest {
        principal: staff("x", "sales"),
        action: Action::Search,
        resource: Resource::Customer { id: "-" },
        case: None,
        granted: false,
    };
    assert_eq!(engine.decide(&search).reason_code, "agents-search");
}

#[test]
fn a_request_the_schema_rejects_is_denied_as_policy_error() {
    let engine = PolicyEngine::embedded().unwrap();
    // Search declares no context, so a case in it does not fit the schema.
    let search = AccessRequest {
        principal: staff("alice", "support"),
        action: Action::Search,
        resource: Resource::Customer { id: "cus_1" },
        case: open_case("cus_1", "alice"),
        granted: false,
    };
    let d = engine.decide(&search);
    assert_eq!((d.allowed, d.reason_code.as_str()), (false, "policy_error"));
    // A view on the vault instead of a customer: wrong resource type.
    let view = AccessRequest {
        principal: staff("alice", "support"),
        action: Action::View,
        resource: Resource::Vault,
        case: open_case("cus_1", "alice"),
        granted: false,
    };
    let d = engine.decide(&view);
    assert_eq!((d.allowed, d.reason_code.as_str()), (false, "policy_error"));
}

#[test]
fn an_erroring_forbid_denies_even_when_a_permit_applies() {
    // Cedar skips a policy whose evaluation errors; were it a forbid, the permit would
    // win. The engine must deny instead.
    let dir = policy_dir(&[(
        "p.cedar",
        concat!(
            "@id(\"anyone-reads\")\n",
            "permit (principal, action == Custos::Action::\"read_access\", resource);\n",
            "@id(\"overflows\")\n",
            "forbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };\n",
        ),
    )]);
    let engine = PolicyEngine::load_dir(dir.path()).unwrap();
    let d = engine.decide(&vault(staff("x", "admin"), Action::ReadAccess));
    assert_eq!((d.allowed, d.reason_code.as_str()), (false, "policy_error"));
}

#[test]
fn odd_identifiers_are_data_not_syntax() {
    let engine = PolicyEngine::embedded().unwrap();
    let id = "alice\" || true || \"\n客服";
    let req = AccessRequest {
        principal: staff(id, "support"),
        action: Action::RevealPhone,
        resource: Resource::Customer { id: "cus_\"1" },
        case: Some(CaseContext {
            id: "case::\"1\"",
            customer: "cus_\"1",
            assignee: id,
            open: true,
            provenance: Provenance::Verified,
        }),
        granted: false,
    };
    assert!(engine.decide(&req).allowed);
    let other = AccessRequest {
        case: Some(CaseContext {
            id: "case::\"1\"",
            customer: "cus_\"1",
            assignee: "alice",
            open: true,
            provenance: Provenance::Verified,
        }),
        ..req
    };
    assert_eq!(engine.decide(&other).reason_code, "no_permit");
}

#[test]
fn policy_ids_follow_file_and_source_order() {
    let embedded = PolicyEngine::embedded().unwrap();
    assert_eq!(
        embedded.policy_ids(),
        [
            "suspended",
            "serves-customers",
            "view-with-case",
            "reveal-with-case",
            "reveal-with-grant",
            "request-on-own-case",
            "company-leads-approve",
            "no-self-approval",
            "no-approval-within-the-org",
            "contact-with-case",
            "pbx-resolves-calls",
            "partner-no-email",
            "no-bulk-export",
            "agents-search",
            "crm-opens-cases",
            "campaigns-from-systems",
            "contact-center-reports",
            "close-case",
            "admin-manages",
            "admin-rotates-keys",
            "privacy-officer-erases",
            "scim-provisions",
            "suspend-staff",
            "read-access",
            "customer-portal",
        ]
    );

    let dir = policy_dir(&[
        (
            "b.cedar",
            "permit (principal, action == Custos::Action::\"read_access\", resource);\n",
        ),
        (
            "a.cedar",
            concat!(
                "forbid (principal, action, resource) when { principal.suspended };\n",
                "@id(\"named\")\nforbid (principal, action == Custos::Action::\"export\", resource);\n",
                "forbid (principal, action, resource) when { principal.org.partner };\n",
            ),
        ),
    ]);
    let engine = PolicyEngine::load_dir(dir.path()).unwrap();
    assert_eq!(
        engine.policy_ids(),
        ["a.cedar#0", "named", "a.cedar#2", "b.cedar#0"]
    );
    let d = engine.decide(&vault(staff("x", "admin"), Action::ReadAccess));
    assert_eq!((d.allowed, d.reason_code.as_str()), (true, "b.cedar#0"));
}

#[test]
fn templates_are_refused() {
    let dir = policy_dir(&[(
        "t.cedar",
        "@id(\"linked\")\npermit (principal == ?principal, action, resource);\n",
    )]);
    let err = PolicyEngine::load_dir(dir.path()).err().unwrap();
    assert!(matches!(err, PolicyError::Layout(_)), "{err:?}");
    assert!(err.to_string().contains("linked"), "{err}");
}

#[test]
fn schema_errors_name_the_schema_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.cedarschema"),
        "namespace Custos {\n  entity Org = { partner: Bool };\n  entity Staff = { role: };\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        "forbid (principal, action, resource);\n",
    )
    .unwrap();
    let err = PolicyEngine::load_dir(dir.path()).err().unwrap();
    match &err {
        PolicyError::Parse { file, line, .. } => {
            assert!(file.ends_with("mine.cedarschema"), "{}", file.display());
            assert_eq!(*line, 3, "{err}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_schemas_are_a_layout_error() {
    let dir = policy_dir(&[("p.cedar", "forbid (principal, action, resource);\n")]);
    std::fs::write(
        dir.path().join("other.cedarschema"),
        custos_policy::DEFAULT_SCHEMA,
    )
    .unwrap();
    let err = PolicyEngine::load_dir(dir.path()).err().unwrap();
    assert_eq!(err.code(), "policy_layout");
}

#[test]
fn errors_display_as_file_line_column() {
    let err = PolicyError::Parse {
        file: "policies/x.cedar".into(),
        line: 3,
        column: 7,
        message: "unexpected token".into(),
    };
    assert_eq!(err.to_string(), "policies/x.cedar:3:7: unexpected token");
    let err = PolicyError::Validation {
        file: "y.cedar".into(),
        line: 1,
        column: 2,
        message: "no attribute rank".into(),
    };
    assert_eq!(err.to_string(), "y.cedar:1:2: no attribute rank");
    assert_eq!(err.code(), "policy_invalid");
}
