//! PATCH (RFC 7644 §3.5.2): a list of `add`, `replace` and `remove` operations applied
//! to a resource's writable attributes in their JSON form. The result is checked again
//! as a whole by the resource's own parser ([`crate::resource`]), so PATCH can produce
//! nothing a PUT could not.
//!
//! Attributes the resource does not keep are ignored, as on create (identity providers
//! send more than a service needs; Custos keeps only what it uses).

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, Filter, member};

/// The schema URN of a PATCH request.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The most operations one PATCH may carry.
const MAX_OPERATIONS: usize = 1000;

/// What one operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Where an operation applies: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`.
struct Target {
    attr: String,
    filter: Option<Filter>,
    sub: Option<String>,
}

/// Applies the PATCH request `body` to `writable`, the resource's writable attributes
/// (a JSON object whose keys are the canonical attribute names), and returns the result;
/// all operations or none (RFC 7644 §3.5.2). `multi` names the multi-valued attributes.
pub fn apply(
    writable: &Map<String, Value>,
    body: &Value,
    multi: &[&str],
) -> Result<Map<String, Value>, ScimError> {
    let mut result = writable.clone();
    apply_all(&mut result, body, multi)?;
    Ok(result)
}

fn apply_all(
    writable: &mut Map<String, Value>,
    body: &Value,
    multi: &[&str],
) -> Result<(), ScimError> {
    let schemas_ok = member(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty() && s.iter().all(|u| u.as_str() == Some(PATCH_OP)));
    if !schemas_ok {
        return Err(syntax("a PATCH body must name the PatchOp schema"));
    }
    let Some(ops) = member(body, "Operations").and_then(Value::as_array) else {
        return Err(syntax("a PATCH body must carry Operations, a list"));
    };
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(syntax("a PATCH body must carry 1 to 1000 operations"));
    }
    for op in ops {
        let kind = match member(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            _ => return Err(syntax("each operation's op must be add, replace or remove")),
        };
        let value = member(op, "value");
        match member(op, "path") {
            None | Some(Value::Null) => {
                if kind == Op::Remove {
                    return Err(ScimError::new(ScimType::NoTarget, "remove needs a path"));
                }
                let Some(Value::Object(attrs)) = value else {
                    return Err(value_error(
                        "an operation without a path needs an object value",
                    ));
                };
                for (name, v) in attrs {
                    // A key may itself be a path (`name.givenName`), or an extension's
                    // URN whose value is an object.
                    let target = target(name)?;
                    apply_one(writable, kind, &target, Some(v), multi)?;
                }
            }
            Some(Value::String(path)) => {
                let target = target(path)?;
                apply_one(writable, kind, &target, value, multi)?;
            }
            Some(_) => {
                return Err(ScimError::new(
                    ScimType::InvalidPath,
                    "path must be a string",
                ));
            }
        }
    }
    Ok(())
}

fn syntax(detail: &str) -> ScimError {
    ScimError::new(ScimType::InvalidSyntax, detail)
}

fn value_error(detail: &str) -> ScimError {
    ScimError::new(ScimType::InvalidValue, detail)
}

fn target(path: &str) -> Result<Target, ScimError> {
    let path = path.trim();
    let Some(open) = path.find('[') else {
        let p = AttrPath::parse(path)?;
        return Ok(Target {
            attr: p.name,
            filter: None,
            sub: p.sub,
        });
    };
    let close = path
        .rfind(']')
        .filter(|&c| c > open)
        .ok_or_else(|| ScimError::new(ScimType::InvalidPath, "a '[' in the path is not closed"))?;
    let attr = AttrPath::parse(&path[..open])?;
    if attr.sub.is_some() {
        return Err(ScimError::new(
            ScimType::InvalidPath,
            "a value filter follows an attribute, not a sub-attribute",
        ));
    }
    let filter = Filter::parse(&path[open + 1..close]).map_err(|_| {
        ScimError::new(
            ScimType::InvalidPath,
            "the path's value filter is malformed",
        )
    })?;
    let rest = &path[close + 1..];
    let sub = match rest.strip_prefix('.') {
        Some(sub) => Some(AttrPath::parse(sub)?.name),
        None if rest.is_empty() => None,
        None => {
            return Err(ScimError::new(
                ScimType::InvalidPath,
                "a path has text after its value filter",
            ));
        }
    };
    Ok(Target {
        attr: attr.name,
        filter: Some(filter),
        sub,
    })
}

/// The canonical key of `name` in `writable`, if the resource keeps such an attribute.
fn key_of(writable: &Map<String, Value>, name: &str) -> Option<String> {
    writable
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

fn apply_one(
    writable: &mut Map<String, Value>,
    kind: Op,
    target: &Target,
    value: Option<&Value>,
    multi: &[&str],
) -> Result<(), ScimError> {
    // An extension's URN names an object of its attributes: each applies on its own.
    if target.filter.is_none() && target.sub.is_none() && key_of(writable, &target.attr).is_none() {
        if let Some(Value::Object(attrs)) = value
            && kind != Op::Remove
            && target
                .attr
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
        {
            for (name, v) in attrs {
                apply_one(writable, kind, &self::target(name)?, Some(v), multi)?;
            }
        }
        // Not an attribute this resource keeps: ignored, as on create.
        return Ok(());
    }
    let Some(key) = key_of(writable, &target.attr) else {
        return Ok(());
    };
    let is_multi = multi.iter().any(|m| m.eq_ignore_ascii_case(&key));
    let slot = writable.get_mut(&key).expect("key_of found it");
    match (&target.filter, &target.sub) {
        (None, None) => match kind {
            Op::Remove => {
                match (is_multi, value) {
                    // Remove the listed values only (as some providers send it).
                    (true, Some(Value::Array(gone))) => {
                        if let Value::Array(items) = slot {
                            items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                        }
                    }
                    _ => *slot = Value::Null,
                }
            }
            Op::Add if is_multi => {
                let new = match value {
                    Some(Value::Array(items)) => items.clone(),
                    Some(one @ Value::Object(_)) => vec![one.clone()],
                    _ => return Err(value_error("a multi-valued attribute takes a list")),
                };
                let items = match slot {
                    Value::Array(items) => items,
                    other => {
                        *other = Value::Array(Vec::new());
                        other.as_array_mut().expect("just set")
                    }
                };
                for item in new {
                    if !items.iter().any(|i| same_value(i, &item)) {
                        items.push(item);
                    }
                }
            }
            Op::Add | Op::Replace => {
                *slot = value
                    .cloned()
                    .ok_or_else(|| value_error("add and replace need a value"))?;
            }
        },
        (None, Some(sub)) => {
            if is_multi {
                return Err(ScimError::new(
                    ScimType::InvalidPath,
                    "a multi-valued attribute's sub-attribute needs a value filter",
                ));
            }
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let object = slot.as_object_mut().expect("just made an object");
            set_sub(object, sub, kind, value)?;
        }
        (Some(filter), sub) => {
            let Value::Array(items) = slot else {
                return Err(ScimError::new(
                    ScimType::NoTarget,
                    "the path's value filter matched nothing",
                ));
            };
            let matching: Vec<usize> = (0..items.len())
                .filter(|&i| filter.matches(&items[i]))
                .collect();
            if matching.is_empty() {
                return Err(ScimError::new(
                    ScimType::NoTarget,
                    "the path's value filter matched nothing",
                ));
            }
            match sub {
                None if kind == Op::Remove => {
                    let mut i = 0;
                    items.retain(|_| {
                        i += 1;
                        !matching.contains(&(i - 1))
                    });
                }
                None => {
                    let v = value.ok_or_else(|| value_error("add and replace need a value"))?;
                    for i in matching {
                        items[i] = v.clone();
                    }
                }
                Some(sub) => {
                    for i in matching {
                        if let Value::Object(object) = &mut items[i] {
                            set_sub(object, sub, kind, value)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn set_sub(
    object: &mut Map<String, Value>,
    sub: &str,
    kind: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let key = object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(sub))
        .cloned()
        .unwrap_or_else(|| sub.to_owned());
    if kind == Op::Remove {
        object.remove(&key);
    } else {
        let v = value.ok_or_else(|| value_error("add and replace need a value"))?;
        object.insert(key, v.clone());
    }
    Ok(())
}

/// Two values of a multi-valued attribute are the same when their `value`s are.
fn same_value(a: &Value, b: &Value) -> bool {
    match (member(a, "value"), member(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group() -> Map<String, Value> {
        json!({"displayName": "Support", "externalId": null, "members": [{"value": "a"}, {"value": "b"}]})
            .as_object()
            .unwrap()
            .clone()
    }

    fn patch(ops: Value) -> Result<Map<String, Value>, ScimError> {
        apply(
            &group(),
            &json!({"schemas": [PATCH_OP], "Operations": ops}),
            &["members"],
        )
    }

    // RFC 7644 §3.5.2.1: add to a multi-valued attribute appends, without doubling.
    #[test]
    fn add_appends_members_once() {
        let g = patch(
            json!([{"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "c"}]}]),
        )
        .unwrap();
        assert_eq!(
            g["members"],
            json!([{"value": "a"}, {"value": "b"}, {"value": "c"}])
        );
    }

    // RFC 7644 §3.5.2.2: remove with a value filter removes the matching values only.
    #[test]
    fn remove_by_value_filter_and_by_listed_values() {
        let g = patch(json!([{"op": "remove", "path": "members[value eq \"a\"]"}])).unwrap();
        assert_eq!(g["members"], json!([{"value": "b"}]));
        let g =
            patch(json!([{"op": "Remove", "path": "members", "value": [{"value": "b"}]}])).unwrap();
        assert_eq!(g["members"], json!([{"value": "a"}]));
        let g = patch(json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(g["members"], Value::Null);
    }

    // RFC 7644 §3.5.2.3: replace without a path takes an object of attributes.
    #[test]
    fn replace_without_path_and_with_urn_prefix() {
        let g = patch(
            json!([{"op": "replace", "value": {"displayName": "Leads", "nickName": "ignored"}}]),
        )
        .unwrap();
        assert_eq!(g["displayName"], json!("Leads"));
        assert!(!g.contains_key("nickName"));
        let g = patch(json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName", "value": "X"}])).unwrap();
        assert_eq!(g["displayName"], json!("X"));
    }

    #[test]
    fn refusals_have_their_scim_type() {
        let no_target =
            patch(json!([{"op": "remove", "path": "members[value eq \"zz\"]"}])).unwrap_err();
        assert_eq!(no_target.scim_type, ScimType::NoTarget);
        let no_path = patch(json!([{"op": "remove"}])).unwrap_err();
        assert_eq!(no_path.scim_type, ScimType::NoTarget);
        let bad_op = patch(json!([{"op": "move", "path": "displayName"}])).unwrap_err();
        assert_eq!(bad_op.scim_type, ScimType::InvalidSyntax);
        let bad_path =
            patch(json!([{"op": "add", "path": "members[value eq", "value": []}])).unwrap_err();
        assert_eq!(bad_path.scim_type, ScimType::InvalidPath);
        let err = apply(&group(), &json!({"Operations": []}), &["members"]).unwrap_err();
        assert_eq!(err.scim_type, ScimType::InvalidSyntax);
    }
}
