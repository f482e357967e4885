//! The two resources Custos serves, in their wire form (RFC 7643 §4): a User is a staff
//! entry, a Group is a group of the identity provider whose name the configuration may
//! map to a role. Only the attributes Custos uses are kept; [`crate::discovery`]
//! publishes exactly these.

// RFC 3339 in UTC is what RFC 7643 §2.3.5 asks of `xsd:dateTime`.
use custos_types::calendar::rfc3339;
use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, member};
use crate::patch;

/// The User schema (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The Group schema (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// A list response (RFC 7644 §3.4.2).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// An error response (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// A search request sent with POST (RFC 7644 §3.4.3).
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The longest string attribute taken, in characters.
const MAX_TEXT_CHARS: usize = 256;
/// The most members one group may list.
pub const MAX_MEMBERS: usize = 10_000;

/// When a resource was made and changed, and its version (its ETag, RFC 7644 §3.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Creation time, unix milliseconds.
    pub created_ms: i64,
    /// Last change, unix milliseconds.
    pub modified_ms: i64,
    /// Grows by one with each change.
    pub version: i64,
}

impl Meta {
    /// The weak entity tag of this version.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    fn json(&self, resource_type: &str, location: String) -> Value {
        json!({
            "resourceType": resource_type,
            "created": rfc3339(self.created_ms),
            "lastModified": rfc3339(self.modified_ms),
            "location": location,
            "version": self.etag(),
        })
    }
}

/// Whether `if_match` (an `If-Match` header's value) allows changing `meta`'s version.
pub fn if_match_holds(if_match: &str, meta: &Meta) -> bool {
    let etag = meta.etag();
    if_match.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag == etag || tag.trim_start_matches("W/") == etag.trim_start_matches("W/")
    })
}

/// A User's writable attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFields {
    /// `userName`: in Custos, the staff id, fixed once the user exists.
    pub user_name: String,
    /// `displayName`: the staff entry's name.
    pub display_name: Option<String>,
    /// `active`; absent counts as active.
    pub active: Option<bool>,
    /// `externalId`: the provider's own id.
    pub external_id: Option<String>,
}

impl UserFields {
    /// Reads a User from a POST or PUT body (RFC 7644 §3.3, §3.5.1).
    pub fn from_body(body: &Value) -> Result<UserFields, ScimError> {
        require_schema(body, USER_SCHEMA, &[ENTERPRISE_USER_SCHEMA])?;
        UserFields::from_attributes(body)
    }

    fn from_attributes(body: &Value) -> Result<UserFields, ScimError> {
        let user_name = text(body, "userName")?
            .ok_or_else(|| ScimError::new(ScimType::InvalidValue, "userName is required"))?;
        Ok(UserFields {
            user_name,
            display_name: text(body, "displayName")?,
            active: flag(body, "active")?,
            external_id: text(body, "externalId")?,
        })
    }

    fn writable(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("userName".into(), json!(self.user_name));
        m.insert("displayName".into(), json!(self.display_name));
        m.insert("active".into(), json!(self.active));
        m.insert("externalId".into(), json!(self.external_id));
        m
    }

    /// This user after the PATCH request `body` (RFC 7644 §3.5.2).
    pub fn patched(&self, body: &Value) -> Result<UserFields, ScimError> {
        let result = patch::apply(&self.writable(), body, &[])?;
        UserFields::from_attributes(&Value::Object(result))
    }

    /// Whether the user may act, as far as the provider says.
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }

    /// The wire form of user `id`, in groups `groups` (id, name), served at `base`.
    pub fn to_json(&self, id: &str, groups: &[(String, String)], meta: &Meta, base: &str) -> Value {
        let mut m = Map::new();
        m.insert("schemas".into(), json!([USER_SCHEMA]));
        m.insert("id".into(), json!(id));
        for (k, v) in self.writable() {
            if !v.is_null() {
                m.insert(k, v);
            }
        }
        if !groups.is_empty() {
            let groups: Vec<Value> = groups
                .iter()
                .map(|(gid, name)| json!({"value": gid, "$ref": format!("{base}/Groups/{gid}"), "display": name}))
                .collect();
            m.insert("groups".into(), Value::Array(groups));
        }
        m.insert(
            "meta".into(),
            meta.json("User", format!("{base}/Users/{id}")),
        );
        Value::Object(m)
    }
}

/// A Group's writable attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFields {
    /// `displayName`: what the configuration maps to a role.
    pub display_name: String,
    /// `externalId`: the provider's own id.
    pub external_id: Option<String>,
    /// The members: User ids (staff ids), each once, in the order first given.
    pub members: Vec<String>,
}

impl GroupFields {
    /// Reads a Group from a POST or PUT body.
    pub fn from_body(body: &Value) -> Result<GroupFields, ScimError> {
        require_schema(body, GROUP_SCHEMA, &[])?;
        GroupFields::from_attributes(body)
    }

    fn from_attributes(body: &Value) -> Result<GroupFields, ScimError> {
        let display_name = text(body, "displayName")?
            .ok_or_else(|| ScimError::new(ScimType::InvalidValue, "displayName is required"))?;
        let mut members: Vec<String> = Vec::new();
        match member(body, "members") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let Some(Value::String(value)) = member(item, "value") else {
                        return Err(ScimError::new(
                            ScimType::InvalidValue,
                            "each member needs a value, a string",
                        ));
                    };
                    if let Some(Value::String(kind)) = member(item, "type")
                        && !kind.eq_ignore_ascii_case("User")
                    {
                        return Err(ScimError::new(
                            ScimType::InvalidValue,
                            "members are users; groups do not nest here",
                        ));
                    }
                    if !members.contains(value) {
                        members.push(value.clone());
                    }
                }
            }
            Some(_) => {
                return Err(ScimError::new(
                    ScimType::InvalidValue,
                    "members must be a list",
                ));
            }
        }
        if members.len() > MAX_MEMBERS {
            return Err(ScimError::new(
                ScimType::InvalidValue,
                "a group has at most 10000 members",
            ));
        }
        Ok(GroupFields {
            display_name,
            external_id: text(body, "externalId")?,
            members,
        })
    }

    fn writable(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("displayName".into(), json!(self.display_name));
        m.insert("externalId".into(), json!(self.external_id));
        let members: Vec<Value> = self.members.iter().map(|v| json!({"value": v})).collect();
        m.insert("members".into(), Value::Array(members));
        m
    }

    /// This group after the PATCH request `body`.
    pub fn patched(&self, body: &Value) -> Result<GroupFields, ScimError> {
        let result = patch::apply(&self.writable(), body, &["members"])?;
        GroupFields::from_attributes(&Value::Object(result))
    }

    /// The wire form of group `id`, served at `base`.
    pub fn to_json(&self, id: &str, meta: &Meta, base: &str) -> Value {
        let mut m = Map::new();
        m.insert("schemas".into(), json!([GROUP_SCHEMA]));
        m.insert("id".into(), json!(id));
        m.insert("displayName".into(), json!(self.display_name));
        if let Some(e) = &self.external_id {
            m.insert("externalId".into(), json!(e));
        }
        if !self.members.is_empty() {
            let members: Vec<Value> = self
                .members
                .iter()
                .map(|v| json!({"value": v, "$ref": format!("{base}/Users/{v}"), "type": "User"}))
                .collect();
            m.insert("members".into(), Value::Array(members));
        }
        m.insert(
            "meta".into(),
            meta.json("Group", format!("{base}/Groups/{id}")),
        );
        Value::Object(m)
    }
}

/// The enterprise User extension (RFC 7643 §4.3): identity providers send its URN; its
/// attributes are not kept.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// `schemas` must name the resource's own schema, and nothing but it and the
/// extensions `extensions` names (RFC 7643 §3).
fn require_schema(body: &Value, schema: &str, extensions: &[&str]) -> Result<(), ScimError> {
    if !body.is_object() {
        return Err(ScimError::new(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        ));
    }
    let urns: Option<Vec<&str>> = member(body, "schemas")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().map(Value::as_str).collect());
    let known = |u: &str| {
        u.eq_ignore_ascii_case(schema) || extensions.iter().any(|e| u.eq_ignore_ascii_case(e))
    };
    match urns {
        Some(urns)
            if urns.iter().any(|u| u.eq_ignore_ascii_case(schema))
                && urns.iter().all(|u| known(u)) =>
        {
            Ok(())
        }
        _ => Err(ScimError::new(
            ScimType::InvalidSyntax,
            "schemas must name the resource's schema, and no schema but it and its known extensions",
        )),
    }
}

/// A string attribute: absent or null is `None`; anything but a string of 1 to 256
/// characters without control characters is refused.
fn text(body: &Value, name: &str) -> Result<Option<String>, ScimError> {
    match member(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS || s.chars().any(char::is_control) {
                Err(ScimError::new(
                    ScimType::InvalidValue,
                    format!(
                        "{name} must be 1 to {MAX_TEXT_CHARS} characters without control characters"
                    ),
                ))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(ScimError::new(
            ScimType::InvalidValue,
            format!("{name} must be a string"),
        )),
    }
}

/// A boolean attribute. Some providers send `"True"`/`"False"` as strings; those are
/// taken too.
fn flag(body: &Value, name: &str) -> Result<Option<bool>, ScimError> {
    match member(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ScimError::new(
            ScimType::InvalidValue,
            format!("{name} must be true or false"),
        )),
    }
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): which attributes an
/// answer carries. `schemas`, `id` and (unless excluded by name) `meta` always stay. A
/// name that is no attribute path names nothing a resource has: it selects nothing and
/// refuses nothing.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    /// Whether `attributes` asked for a subset (even of names that match nothing).
    restricted: bool,
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

impl Projection {
    /// Parses the two comma-separated lists.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let names = |s: Option<&str>| -> Vec<String> {
            s.map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        let paths = |names: &[String]| -> Vec<AttrPath> {
            names
                .iter()
                .filter_map(|n| AttrPath::parse(n).ok())
                .collect()
        };
        let asked = names(attributes);
        Projection {
            restricted: !asked.is_empty(),
            attributes: paths(&asked),
            excluded: paths(&names(excluded)),
        }
    }

    /// `resource` with only the attributes asked for.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(mut m) = resource else {
            return resource;
        };
        let always = |k: &str| k == "schemas" || k == "id";
        if self.restricted {
            m.retain(|k, _| {
                always(k)
                    || k == "meta"
                    || self
                        .attributes
                        .iter()
                        .any(|a| a.name.eq_ignore_ascii_case(k))
            });
            for a in &self.attributes {
                if let (Some(sub), Some(key)) = (
                    &a.sub,
                    m.keys().find(|k| k.eq_ignore_ascii_case(&a.name)).cloned(),
                ) {
                    keep_sub(m.get_mut(&key).expect("found"), sub);
                }
            }
        }
        for e in &self.excluded {
            if e.sub.is_none() {
                m.retain(|k, _| always(k) || !k.eq_ignore_ascii_case(&e.name));
            }
        }
        Value::Object(m)
    }
}

fn keep_sub(value: &mut Value, sub: &str) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|i| keep_sub(i, sub)),
        Value::Object(o) => o.retain(|k, _| k.eq_ignore_ascii_case(sub)),
        _ => {}
    }
}

/// A list response of one page (RFC 7644 §3.4.2): `total` matches in all, this page from
/// the 1-based `start_index`.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// An error response (RFC 7644 §3.12).
pub fn error_response(status: u16, scim_type: Option<ScimType>, detail: &str) -> Value {
    let mut m = Map::new();
    m.insert("schemas".into(), json!([ERROR_SCHEMA]));
    m.insert("status".into(), json!(status.to_string()));
    if let Some(t) = scim_type {
        m.insert("scimType".into(), json!(t.as_str()));
    }
    m.insert("detail".into(), json!(detail));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_400_000_123), "2026-12-04T16:00:00.123Z");
    }

    #[test]
    fn a_user_is_read_from_its_body_and_patched_as_a_whole() {
        let body = json!({"schemas": [USER_SCHEMA], "userName": "alice", "active": "False", "emails": [{"value": "x"}]});
        let u = UserFields::from_body(&body).unwrap();
        assert_eq!(u.user_name, "alice");
        assert!(!u.is_active());
        let patched = u
            .patched(&json!({"schemas": [patch::PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": true}]}))
            .unwrap();
        assert!(patched.is_active());
        // Removing the one required attribute is refused.
        let err = u
            .patched(&json!({"schemas": [patch::PATCH_OP], "Operations": [{"op": "remove", "path": "userName"}]}))
            .unwrap_err();
        assert_eq!(err.scim_type, ScimType::InvalidValue);
        assert_eq!(
            UserFields::from_body(&json!({"userName": "a"}))
                .unwrap_err()
                .scim_type,
            ScimType::InvalidSyntax
        );
        assert!(
            UserFields::from_body(&json!({"schemas": [USER_SCHEMA], "userName": "a\u{7}"}))
                .is_err()
        );
    }

    #[test]
    fn group_members_are_users_each_once() {
        let g =
            GroupFields::from_body(&json!({"schemas": [GROUP_SCHEMA], "displayName": "Support",
            "members": [{"value": "a"}, {"value": "a", "type": "User"}, {"value": "b"}]}))
            .unwrap();
        assert_eq!(g.members, ["a", "b"]);
        let nested = GroupFields::from_body(&json!({"schemas": [GROUP_SCHEMA], "displayName": "S",
            "members": [{"value": "g", "type": "Group"}]}));
        assert_eq!(nested.unwrap_err().scim_type, ScimType::InvalidValue);
    }

    #[test]
    fn projection_keeps_id_and_schemas() {
        let meta = Meta {
            created_ms: 0,
            modified_ms: 0,
            version: 3,
        };
        let u = UserFields {
            user_name: "a".into(),
            display_name: Some("A".into()),
            active: Some(true),
            external_id: None,
        };
        let full = u.to_json("a", &[], &meta, "https://x/scim/v2");
        let only = Projection::parse(Some("displayName"), None).apply(full.clone());
        assert!(
            only.get("displayName").is_some()
                && only.get("userName").is_none()
                && only.get("id").is_some()
        );
        let without = Projection::parse(None, Some("displayName,meta")).apply(full.clone());
        assert!(
            without.get("displayName").is_none()
                && without.get("meta").is_none()
                && without.get("userName").is_some()
        );
        assert!(
            if_match_holds("W/\"3\"", &meta)
                && if_match_holds("\"3\"", &meta)
                && if_match_holds("*", &meta)
        );
        assert!(!if_match_holds("W/\"2\"", &meta));
        // Names that are no attribute: nothing selected, nothing refused.
        let odd = Projection::parse(Some("\u{2}x,1abc"), Some("%%")).apply(full);
        assert!(odd.get("userName").is_none() && odd.get("id").is_some());
    }
}
