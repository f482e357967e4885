//! What the service publishes about itself (RFC 7644 §4): its configuration, the two
//! resource types and their schemas, listing exactly the attributes Custos keeps. A
//! client (and a conformance checker) fills what these documents describe.

use serde_json::{Value, json};

use crate::resource::{GROUP_SCHEMA, USER_SCHEMA};

/// The ServiceProviderConfig schema.
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The ResourceType schema.
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The Schema schema.
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The most resources one list answer holds (`filter.maxResults`).
pub const MAX_RESULTS: usize = 1000;

/// `GET /ServiceProviderConfig` (RFC 7643 §5), served at `base`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The scim principal's Custos token, or its client certificate over mutual TLS",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
    })
}

/// `GET /ResourceTypes` (RFC 7643 §6): each resource type, served at `base`.
pub fn resource_types(base: &str) -> Vec<Value> {
    [("User", "/Users", USER_SCHEMA), ("Group", "/Groups", GROUP_SCHEMA)]
        .into_iter()
        .map(|(name, endpoint, schema)| {
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": name,
                "name": name,
                "endpoint": endpoint,
                "schema": schema,
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")}
            })
        })
        .collect()
}

/// `GET /Schemas` (RFC 7643 §7): each schema, served at `base`.
pub fn schemas(base: &str) -> Vec<Value> {
    let string =
        |name: &str, required: bool, mutability: &str, uniqueness: &str, description: &str| {
            json!({
                "name": name, "type": "string", "multiValued": false, "description": description,
                "required": required, "caseExact": false, "mutability": mutability,
                "returned": "default", "uniqueness": uniqueness
            })
        };
    let user_attributes = json!([
        string("userName", true, "immutable", "server",
            "The staff id (1 to 64 of A-Z a-z 0-9 _ . : -); fixed once the user exists."),
        string("displayName", false, "readWrite", "none", "The staff entry's name."),
        {"name": "active", "type": "boolean", "multiValued": false, "required": false,
         "mutability": "readWrite", "returned": "default",
         "description": "false suspends the person and ends their tokens and sessions."},
        {"name": "groups", "type": "complex", "multiValued": true, "required": false,
         "mutability": "readOnly", "returned": "default",
         "description": "The groups the user is in; set through the groups' members.",
         "subAttributes": [
            {"name": "value", "type": "string", "multiValued": false, "required": false, "caseExact": true, "mutability": "readOnly", "returned": "default", "uniqueness": "none"},
            {"name": "$ref", "type": "reference", "referenceTypes": ["Group"], "multiValued": false, "required": false, "caseExact": true, "mutability": "readOnly", "returned": "default", "uniqueness": "none"},
            {"name": "display", "type": "string", "multiValued": false, "required": false, "caseExact": false, "mutability": "readOnly", "returned": "default", "uniqueness": "none"}
         ]}
    ]);
    let group_attributes = json!([
        string("displayName", true, "readWrite", "none",
            "The group's name, which the [scim] configuration may map to a role."),
        {"name": "members", "type": "complex", "multiValued": true, "required": false,
         "mutability": "readWrite", "returned": "default", "description": "The users in the group.",
         "subAttributes": [
            {"name": "value", "type": "string", "multiValued": false, "required": false, "caseExact": true, "mutability": "immutable", "returned": "default", "uniqueness": "none"},
            {"name": "$ref", "type": "reference", "referenceTypes": ["User"], "multiValued": false, "required": false, "caseExact": true, "mutability": "immutable", "returned": "default", "uniqueness": "none"},
            {"name": "type", "type": "string", "canonicalValues": ["User"], "multiValued": false, "required": false, "caseExact": false, "mutability": "immutable", "returned": "default", "uniqueness": "none"}
         ]}
    ]);
    [
        (USER_SCHEMA, "User", "A member of staff", user_attributes),
        (
            GROUP_SCHEMA,
            "Group",
            "A group of the identity provider",
            group_attributes,
        ),
    ]
    .into_iter()
    .map(|(id, name, description, attributes)| {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": id, "name": name, "description": description, "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")}
        })
    })
    .collect()
}
