//! SCIM requests an identity provider sends (`/scim/v2`, RFC 7644): filters
//! (`?filter=`), User and Group bodies (POST, PUT) and PATCH requests over a known User
//! and Group. The first byte picks which; bodies are read as the gateway reads them
//! (`serde_json::from_slice`). A refusal names its SCIM type; a resource that is taken
//! reads back the same from the form Custos serves it in.
#![no_main]

use custos_scim::{Filter, GroupFields, Meta, UserFields};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const BASE: &str = "https://custos.example/scim/v2";
const META: Meta = Meta {
    created_ms: 1_764_900_000_000,
    modified_ms: 1_764_900_000_000,
    version: 1,
};

fn user() -> UserFields {
    UserFields {
        user_name: "agent-7".into(),
        display_name: Some("Liu Yang".into()),
        active: Some(true),
        external_id: Some("00u1".into()),
    }
}

fn group() -> GroupFields {
    GroupFields {
        display_name: "Support".into(),
        external_id: None,
        members: vec!["agent-7".into(), "agent-8".into()],
    }
}

/// What Custos serves of `u` reads back as `u`.
fn user_round_trips(u: &UserFields) {
    let served = u.to_json("agent-7", &[("g1".into(), "Support".into())], &META, BASE);
    assert_eq!(UserFields::from_body(&served).as_ref(), Ok(u));
}

/// What Custos serves of `g` reads back as `g`.
fn group_round_trips(g: &GroupFields) {
    let served = g.to_json("g1", &META, BASE);
    assert_eq!(GroupFields::from_body(&served).as_ref(), Ok(g));
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick % 5 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        match Filter::parse(text) {
            Ok(filter) => {
                let served = user().to_json("agent-7", &[], &META, BASE);
                let _ = filter.matches(&served);
            }
            Err(e) => assert!(!e.scim_type.as_str().is_empty()),
        }
        return;
    }
    let Ok(body) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let refusal = match pick % 5 {
        1 => UserFields::from_body(&body).map(|u| user_round_trips(&u)),
        2 => GroupFields::from_body(&body).map(|g| group_round_trips(&g)),
        3 => user().patched(&body).map(|u| user_round_trips(&u)),
        _ => group().patched(&body).map(|g| group_round_trips(&g)),
    };
    if let Err(e) = refusal {
        assert!(!e.scim_type.as_str().is_empty());
    }
});
