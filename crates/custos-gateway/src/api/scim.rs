//! Provisioning over HTTP (SCIM 2.0, RFC 7644) under `/scim/v2`: the documents are
//! `custos_scim`'s, the rules the service's (`custos_service::provisioning`). Answers are
//! `application/scim+json`, errors the SCIM error message (RFC 7644 §3.12) with Custos's
//! stable code in its detail; each answer carries its record's headers like every API
//! answer.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use custos_scim::ScimType;
use custos_scim::resource::{SEARCH_REQUEST, error_response};
use custos_service::provisioning::{ListQuery, ScimDiscovery, ScimDocument, ScimKind, ScimTarget};
use custos_service::{Code, Recorded, ServiceError, SharedApp};
use serde_json::Value;

use crate::error::Answered;
use crate::input::{parse_query, read_body};
use crate::record::{RequestInfo, respond_with};

/// The media type of every SCIM message (RFC 7644 §8.1).
const SCIM_JSON: &str = "application/scim+json";

/// The routes under `/scim/v2`, with SCIM's own 404 and 405.
pub(crate) fn router() -> Router<SharedApp> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/.search", axum::routing::post(search_all))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", axum::routing::post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", axum::routing::post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .fallback(|| async { error(ServiceError::not_found("SCIM endpoint")) })
        .method_not_allowed_fallback(|| async {
            scim_json(
                StatusCode::METHOD_NOT_ALLOWED,
                &error_response(
                    405,
                    None,
                    "method not allowed on this endpoint (method_not_allowed)",
                ),
            )
        })
}

/// A SCIM message with `status`.
fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response.extensions_mut().insert(Answered);
    response
}

/// A service error as a SCIM error message: the status of its kind, the `scimType` its
/// code stands for, and the code in the detail.
fn error(e: ServiceError) -> Response {
    let status = crate::error::status(e.kind);
    let scim_type = match e.code {
        Code::Part(code) => ScimType::from_code(code),
        Code::Conflict => Some(ScimType::Uniqueness),
        Code::InvalidQuery => Some(ScimType::InvalidValue),
        Code::MalformedJson => Some(ScimType::InvalidSyntax),
        _ => None,
    };
    let detail = format!("{} ({})", e.message, e.code.as_str());
    let mut response = scim_json(status, &error_response(status.as_u16(), scim_type, &detail));
    if let Some(secs) = e.details.as_deref().and_then(|d| d.retry_after) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The answer of a recorded SCIM operation, with its ETag and the record's headers.
fn answer(status: StatusCode, recorded: Recorded<ScimDocument>) -> Response {
    let recorded = recorded.map(|doc| {
        let mut response = scim_json(status, &doc.body);
        if let Some(etag) = doc.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        if status == StatusCode::CREATED
            && let Some(location) = doc.body["meta"]["location"]
                .as_str()
                .and_then(|l| HeaderValue::from_str(l).ok())
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    });
    with_scim_errors(recorded)
}

/// `respond`, with a failed outcome turned into a SCIM error message.
fn with_scim_errors(recorded: Recorded<Response>) -> Response {
    respond_with(recorded, error)
}

fn base(app: &SharedApp, info: &RequestInfo) -> String {
    app.scim_base(info.headers.get(header::HOST).and_then(|h| h.to_str().ok()))
}

fn if_match(info: &RequestInfo) -> Option<String> {
    info.headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A JSON body of at most the configured size; anything else is `invalidSyntax`.
async fn json_body(app: &SharedApp, body: Body) -> Result<Value, ServiceError> {
    let bytes = read_body(body, app.config().body_limit_bytes).await?;
    serde_json::from_slice(&bytes).map_err(|_| {
        ServiceError::bad_request(
            Code::Part(ScimType::InvalidSyntax.code()),
            "the body is not JSON",
        )
    })
}

/// The list query of a `GET` (RFC 7644 §3.4.2); `sortBy` and `sortOrder` are taken and
/// ignored, as sorting is not offered, and any other parameter is refused.
fn list_query(raw: Option<String>) -> Result<ListQuery, ServiceError> {
    let mut params: HashMap<String, String> = parse_query(
        raw,
        "filter, startIndex, count, attributes and excludedAttributes",
    )?;
    let number = |v: Option<String>| -> Result<Option<i64>, ServiceError> {
        v.map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ServiceError::bad_request(
                    Code::Part(ScimType::InvalidValue.code()),
                    "startIndex and count are integers",
                )
            })
        })
        .transpose()
    };
    let query = ListQuery {
        // An empty filter filters nothing out.
        filter: params.remove("filter").filter(|f| !f.trim().is_empty()),
        start_index: number(params.remove("startIndex"))?,
        count: number(params.remove("count"))?,
        attributes: params.remove("attributes"),
        excluded_attributes: params.remove("excludedAttributes"),
    };
    // Sorting is not offered (the configuration says so): its parameters are ignored.
    params.remove("sortBy");
    params.remove("sortOrder");
    if !params.is_empty() {
        return Err(ServiceError::bad_request(
            Code::InvalidQuery,
            "the parameters are filter, startIndex, count, attributes, excludedAttributes, sortBy and sortOrder",
        ));
    }
    Ok(query)
}

/// The list query of a `POST /.search` body (RFC 7644 §3.4.3).
fn search_query(body: &Value) -> Result<ListQuery, ServiceError> {
    let bad = |what: &str| {
        ServiceError::bad_request(Code::Part(ScimType::InvalidValue.code()), what.to_owned())
    };
    let named = body["schemas"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|u| u.as_str() == Some(SEARCH_REQUEST)));
    if !named {
        return Err(ServiceError::bad_request(
            Code::Part(ScimType::InvalidSyntax.code()),
            "a search names the SearchRequest schema",
        ));
    }
    let text = |key: &str| -> Result<Option<String>, ServiceError> {
        match &body[key] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad("filter is a string")),
        }
    };
    // RFC 7644 §3.4.3: attributes and excludedAttributes are lists of names.
    let names = |key: &str| -> Result<Option<String>, ServiceError> {
        match &body[key] {
            Value::Null => Ok(None),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("attributes are lists of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| Some(v.join(","))),
            _ => Err(bad("attributes are lists of strings")),
        }
    };
    let number = |key: &str| -> Result<Option<i64>, ServiceError> {
        match &body[key] {
            Value::Null => Ok(None),
            v => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad("startIndex and count are integers")),
        }
    };
    Ok(ListQuery {
        filter: text("filter")?.filter(|f| !f.trim().is_empty()),
        start_index: number("startIndex")?,
        count: number("count")?,
        attributes: names("attributes")?,
        excluded_attributes: names("excludedAttributes")?,
    })
}

async fn discovery(
    app: SharedApp,
    info: RequestInfo,
    what: ScimDiscovery,
    id: Option<String>,
) -> Response {
    let base = base(&app, &info);
    answer(
        StatusCode::OK,
        app.scim_discovery(&info.meta, &base, what, id.as_deref())
            .await,
    )
}

async fn service_provider_config(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    discovery(app, info, ScimDiscovery::ServiceProviderConfig, None).await
}

async fn resource_types(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    discovery(app, info, ScimDiscovery::ResourceTypes, None).await
}

async fn resource_type(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    discovery(app, info, ScimDiscovery::ResourceTypes, Some(id)).await
}

async fn schemas(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    discovery(app, info, ScimDiscovery::Schemas, None).await
}

async fn schema(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    discovery(app, info, ScimDiscovery::Schemas, Some(id)).await
}

async fn list(
    app: SharedApp,
    info: RequestInfo,
    kinds: &[ScimKind],
    query: Result<ListQuery, ServiceError>,
) -> Response {
    let base = base(&app, &info);
    answer(
        StatusCode::OK,
        app.scim_list(&info.meta, &base, kinds, query).await,
    )
}

async fn list_users(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(raw): RawQuery,
) -> Response {
    list(app, info, &[ScimKind::User], list_query(raw)).await
}

async fn list_groups(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(raw): RawQuery,
) -> Response {
    list(app, info, &[ScimKind::Group], list_query(raw)).await
}

async fn search(app: SharedApp, info: RequestInfo, kinds: &[ScimKind], body: Body) -> Response {
    let query = async { search_query(&json_body(&app, body).await?) }.await;
    list(app, info, kinds, query).await
}

async fn search_all(State(app): State<SharedApp>, info: RequestInfo, body: Body) -> Response {
    search(app, info, &[ScimKind::User, ScimKind::Group], body).await
}

async fn search_users(State(app): State<SharedApp>, info: RequestInfo, body: Body) -> Response {
    search(app, info, &[ScimKind::User], body).await
}

async fn search_groups(State(app): State<SharedApp>, info: RequestInfo, body: Body) -> Response {
    search(app, info, &[ScimKind::Group], body).await
}

async fn get_one(
    app: SharedApp,
    info: RequestInfo,
    kind: ScimKind,
    id: String,
    raw: Option<String>,
) -> Response {
    let base = base(&app, &info);
    let projection = list_query(raw).map(|q| (q.attributes, q.excluded_attributes));
    answer(
        StatusCode::OK,
        app.scim_get(&info.meta, &base, kind, &id, projection).await,
    )
}

async fn get_user(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    get_one(app, info, ScimKind::User, id, raw).await
}

async fn get_group(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    get_one(app, info, ScimKind::Group, id, raw).await
}

async fn create(app: SharedApp, info: RequestInfo, kind: ScimKind, body: Body) -> Response {
    let base = base(&app, &info);
    let body = json_body(&app, body).await;
    answer(
        StatusCode::CREATED,
        app.scim_create(&info.meta, &base, kind, body).await,
    )
}

async fn create_user(State(app): State<SharedApp>, info: RequestInfo, body: Body) -> Response {
    create(app, info, ScimKind::User, body).await
}

async fn create_group(State(app): State<SharedApp>, info: RequestInfo, body: Body) -> Response {
    create(app, info, ScimKind::Group, body).await
}

async fn update(
    app: SharedApp,
    info: RequestInfo,
    kind: ScimKind,
    id: String,
    patch: bool,
    body: Body,
) -> Response {
    let base = base(&app, &info);
    let body = json_body(&app, body).await;
    let if_match = if_match(&info);
    let target = ScimTarget {
        kind,
        id: &id,
        if_match: if_match.as_deref(),
    };
    answer(
        StatusCode::OK,
        app.scim_update(&info.meta, &base, target, patch, body)
            .await,
    )
}

async fn replace_user(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    update(app, info, ScimKind::User, id, false, body).await
}

async fn patch_user(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    update(app, info, ScimKind::User, id, true, body).await
}

async fn replace_group(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    update(app, info, ScimKind::Group, id, false, body).await
}

async fn patch_group(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    update(app, info, ScimKind::Group, id, true, body).await
}

async fn delete(app: SharedApp, info: RequestInfo, kind: ScimKind, id: String) -> Response {
    let if_match = if_match(&info);
    let target = ScimTarget {
        kind,
        id: &id,
        if_match: if_match.as_deref(),
    };
    let recorded = app.scim_delete(&info.meta, target).await;
    with_scim_errors(recorded.map(|()| {
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.extensions_mut().insert(Answered);
        response
    }))
}

async fn delete_user(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    delete(app, info, ScimKind::User, id).await
}

async fn delete_group(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    delete(app, info, ScimKind::Group, id).await
}

/// One SCIM call in the OpenAPI document: path, method, operation id, summary,
/// parameters, request body, success answers.
type DocRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Vec<Value>,
    Option<Value>,
    Value,
);

/// The SCIM calls in the OpenAPI document: written from one table, since their bodies
/// are SCIM's documents (RFC 7643) rather than Rust types.
pub(crate) struct ScimDoc;

impl utoipa::Modify for ScimDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use serde_json::json;
        let components = openapi.components.get_or_insert_with(Default::default);
        // Null is the same as absent (RFC 7644 §3.5.1).
        let text = json!({"type": ["string", "null"], "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$"});
        // `schemas` names the resource's own schema and any known extension; a JSON Schema
        // for "contains this one" is not in the dialect this document is written in.
        let urn = |u: &[&str]| {
            json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": u},
            "description": format!("must include {}", u[0])})
        };
        let bodies = [
            (
                "ScimUser",
                json!({
                "description": "A User (RFC 7643 §4.1): a staff entry. Attributes Custos does not keep are ignored.",
                "type": "object", "required": ["schemas", "userName"],
                "properties": {
                    "schemas": urn(&[custos_scim::resource::USER_SCHEMA, custos_scim::resource::ENTERPRISE_USER_SCHEMA]),
                    "userName": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                        "description": "The staff id; fixed once the user exists."},
                    "displayName": text, "externalId": text,
                    "active": {"type": ["boolean", "null"], "description": "false suspends the person and ends their tokens and sessions"}
                }}),
            ),
            (
                "ScimGroup",
                json!({
                "description": "A Group (RFC 7643 §4.2); `[scim] groups` maps its name to a role.",
                "type": "object", "required": ["schemas", "displayName"],
                "properties": {
                    "schemas": urn(&[custos_scim::resource::GROUP_SCHEMA]),
                    "displayName": text, "externalId": text,
                    "members": {"type": ["array", "null"], "items": {
                        "type": "object", "required": ["value"],
                        "properties": {"value": {"type": "string", "description": "a provisioned user's id"},
                                       "type": {"type": "string", "enum": ["User"]}}}}
                }}),
            ),
            (
                "ScimPatchOp",
                json!({
                "description": "A PATCH request (RFC 7644 §3.5.2): all operations or none.",
                "type": "object", "required": ["schemas", "Operations"],
                "properties": {
                    "schemas": urn(&[custos_scim::patch::PATCH_OP]),
                    "Operations": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
                        "type": "object", "required": ["op"],
                        "properties": {"op": {"enum": ["add", "replace", "remove", "Add", "Replace", "Remove"]},
                                       "path": {"type": "string"}, "value": {}}}}
                }}),
            ),
            (
                "ScimSearchRequest",
                json!({
                "description": "A search sent with POST (RFC 7644 §3.4.3).",
                "type": "object", "required": ["schemas"],
                "properties": {
                    "schemas": urn(&[SEARCH_REQUEST]),
                    "filter": {"type": ["string", "null"]},
                    "startIndex": {"type": ["integer", "null"]}, "count": {"type": ["integer", "null"]},
                    "attributes": {"type": ["array", "null"], "items": {"type": "string"}},
                    "excludedAttributes": {"type": ["array", "null"], "items": {"type": "string"}}
                }}),
            ),
            (
                "ScimDocument",
                json!({
                "description": "A SCIM message: a resource, a list response or a discovery document.",
                "type": "object", "required": ["schemas"]}),
            ),
            (
                "ScimError",
                json!({
                "description": "A SCIM error (RFC 7644 §3.12); the detail ends with Custos's stable code in parentheses.",
                "type": "object", "required": ["schemas", "status", "detail"],
                "properties": {"schemas": {"type": "array", "items": {"type": "string"}},
                    "status": {"type": "string"}, "scimType": {"type": "string"}, "detail": {"type": "string"}}}),
            ),
        ];
        for (name, body) in bodies {
            components
                .schemas
                .insert(name.to_owned(), custos_service::schema::schema(body));
        }
        let document = |status: &str, what: &str| {
            json!({status: {"description": what, "content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/ScimDocument"}}},
                "headers": {"etag": {"description": "The resource's version (W/\"n\"), for If-Match", "schema": {"type": "string"}}}}})
        };
        let refusal = |status: &str, what: &str| {
            (
                status.to_owned(),
                json!({"description": what, "content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/ScimError"}}}}),
            )
        };
        let refusals = [
            refusal(
                "400",
                "a malformed body, filter, path or value: `scimType` says which (`invalidSyntax`, `invalidFilter`, `invalidPath`, `invalidValue`, `noTarget`, `mutability`)",
            ),
            refusal("401", "`unauthenticated`: no valid credential"),
            refusal("403", "`forbidden`: only the `scim` principal provisions"),
            refusal("404", "`not_found`: no such resource"),
            refusal(
                "409",
                "`scimType: uniqueness`: the userName is taken (also by a staff entry made otherwise)",
            ),
            refusal(
                "412",
                "`precondition_failed`: the resource changed since the version If-Match names",
            ),
            refusal(
                "413",
                "`payload_too_large`: the body is over the server's limit",
            ),
            refusal(
                "503",
                "`ledger_unavailable`: the access record could not be made durable",
            ),
        ];
        let query = |name: &str, what: &str, kind: &str| json!({"name": name, "in": "query", "required": false, "description": what, "schema": {"type": kind}});
        let projection = [
            query(
                "attributes",
                "attributes to return, comma-separated (RFC 7644 §3.4.2.5)",
                "string",
            ),
            query(
                "excludedAttributes",
                "attributes to leave out, comma-separated",
                "string",
            ),
        ];
        let list_params: Vec<Value> = [
            query("filter", "a filter (RFC 7644 §3.4.2.2)", "string"),
            query(
                "startIndex",
                "the 1-based index of the first result",
                "integer",
            ),
            query("count", "the most results (at most 1000)", "integer"),
            query(
                "sortBy",
                "accepted and ignored: sorting is not offered",
                "string",
            ),
            query("sortOrder", "accepted and ignored", "string"),
        ]
        .into_iter()
        .chain(projection.clone())
        .collect();
        let id_of = |pattern: &str, what: &str| {
            json!({"name": "id", "in": "path", "required": true,
            "description": what, "schema": {"type": "string", "pattern": pattern}})
        };
        let user_id = id_of("^[A-Za-z0-9_.:-]{1,64}$", "the user's id: their staff id");
        let group_id = id_of("^grp_[0-9a-f]{16}$", "the group's id, given by Custos");
        let doc_id = id_of(
            "^[A-Za-z0-9_.:-]{1,128}$",
            "a resource type's name or a schema's URN",
        );
        let body = |name: &str| json!({"required": true, "content": {SCIM_JSON: {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        // (path, method, operation id, summary, parameters, body, success)
        let table: Vec<DocRow> = vec![
            (
                "/ServiceProviderConfig",
                "get",
                "scim_service_provider_config",
                "What the service offers (RFC 7644 §4)",
                vec![],
                None,
                document("200", "the configuration"),
            ),
            (
                "/ResourceTypes",
                "get",
                "scim_resource_types",
                "The resource types",
                vec![],
                None,
                document("200", "a list response"),
            ),
            (
                "/ResourceTypes/{id}",
                "get",
                "scim_resource_type",
                "One resource type",
                vec![doc_id.clone()],
                None,
                document("200", "the resource type"),
            ),
            (
                "/Schemas",
                "get",
                "scim_schemas",
                "The schemas, with exactly the attributes Custos keeps",
                vec![],
                None,
                document("200", "a list response"),
            ),
            (
                "/Schemas/{id}",
                "get",
                "scim_schema",
                "One schema",
                vec![doc_id.clone()],
                None,
                document("200", "the schema"),
            ),
            (
                "/.search",
                "post",
                "scim_search",
                "Search users and groups",
                vec![],
                Some(body("ScimSearchRequest")),
                document("200", "a list response"),
            ),
            (
                "/Users",
                "get",
                "scim_list_users",
                "List users",
                list_params.clone(),
                None,
                document("200", "a list response"),
            ),
            (
                "/Users",
                "post",
                "scim_create_user",
                "Provision a user: a staff entry, held without a role until a mapped group names them",
                vec![],
                Some(body("ScimUser")),
                document("201", "the user"),
            ),
            (
                "/Users/.search",
                "post",
                "scim_search_users",
                "Search users",
                vec![],
                Some(body("ScimSearchRequest")),
                document("200", "a list response"),
            ),
            (
                "/Users/{id}",
                "get",
                "scim_get_user",
                "One user",
                [user_id.clone()]
                    .into_iter()
                    .chain(projection.clone())
                    .collect(),
                None,
                document("200", "the user"),
            ),
            (
                "/Users/{id}",
                "put",
                "scim_replace_user",
                "Replace a user",
                vec![user_id.clone()],
                Some(body("ScimUser")),
                document("200", "the user"),
            ),
            (
                "/Users/{id}",
                "patch",
                "scim_patch_user",
                "Patch a user (active: false deprovisions)",
                vec![user_id.clone()],
                Some(body("ScimPatchOp")),
                document("200", "the user"),
            ),
            (
                "/Users/{id}",
                "delete",
                "scim_delete_user",
                "Deprovision a user: suspended, tokens and sessions ended; the staff entry stays",
                vec![user_id.clone()],
                None,
                json!({"204": {"description": "deleted"}}),
            ),
            (
                "/Groups",
                "get",
                "scim_list_groups",
                "List groups",
                list_params,
                None,
                document("200", "a list response"),
            ),
            (
                "/Groups",
                "post",
                "scim_create_group",
                "Provision a group",
                vec![],
                Some(body("ScimGroup")),
                document("201", "the group"),
            ),
            (
                "/Groups/.search",
                "post",
                "scim_search_groups",
                "Search groups",
                vec![],
                Some(body("ScimSearchRequest")),
                document("200", "a list response"),
            ),
            (
                "/Groups/{id}",
                "get",
                "scim_get_group",
                "One group",
                [group_id.clone()].into_iter().chain(projection).collect(),
                None,
                document("200", "the group"),
            ),
            (
                "/Groups/{id}",
                "put",
                "scim_replace_group",
                "Replace a group (its members' roles follow)",
                vec![group_id.clone()],
                Some(body("ScimGroup")),
                document("200", "the group"),
            ),
            (
                "/Groups/{id}",
                "patch",
                "scim_patch_group",
                "Patch a group (its members' roles follow)",
                vec![group_id.clone()],
                Some(body("ScimPatchOp")),
                document("200", "the group"),
            ),
            (
                "/Groups/{id}",
                "delete",
                "scim_delete_group",
                "Delete a group (its members' roles follow)",
                vec![group_id.clone()],
                None,
                json!({"204": {"description": "deleted"}}),
            ),
        ];
        let mut items: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
            Default::default();
        for (path, method, operation_id, summary, parameters, request_body, success) in table {
            let mut responses = success.as_object().cloned().unwrap_or_default();
            let if_match = json!({"name": "if-match", "in": "header", "required": false,
                "description": "Change only if the resource is still at this version (its ETag)", "schema": {"type": "string"}});
            let mut parameters = parameters;
            if matches!(method, "put" | "patch" | "delete") {
                parameters.push(if_match);
            }
            for (status, r) in &refusals {
                let applies = match status.as_str() {
                    "409" => operation_id == "scim_create_user",
                    "412" => matches!(method, "put" | "patch" | "delete"),
                    "413" => request_body.is_some(),
                    "404" => {
                        path.contains("{id}") || path.starts_with("/Groups") && method != "get"
                    }
                    _ => true,
                };
                if applies {
                    responses.insert(status.clone(), r.clone());
                }
            }
            let mut operation = json!({
                "tags": ["scim"], "operationId": operation_id, "summary": summary,
                "parameters": parameters, "responses": responses, "security": [{"bearer": []}]
            });
            if let Some(b) = request_body {
                operation["requestBody"] = b;
            }
            items
                .entry(format!("/scim/v2{path}"))
                .or_default()
                .insert(method.to_owned(), operation);
        }
        for (path, item) in items {
            match serde_json::from_value::<utoipa::openapi::path::PathItem>(Value::Object(item)) {
                Ok(item) => {
                    openapi.paths.paths.insert(path, item);
                }
                Err(e) => panic!("the SCIM part of the OpenAPI document is malformed: {e}"),
            }
        }
    }
}
