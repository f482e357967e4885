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

/// The list query of a `GET` (RFC 7644 §3.4.2): unknown parameters (`sortBy`) are
/// ignored, as sorting is not offered.
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
    Ok(ListQuery {
        filter: params.remove("filter"),
        start_index: number(params.remove("startIndex"))?,
        count: number(params.remove("count"))?,
        attributes: params.remove("attributes"),
        excluded_attributes: params.remove("excludedAttributes"),
    })
}

/// The list query of a `POST /.search` body (RFC 7644 §3.4.3).
fn search_query(body: &Value) -> Result<ListQuery, ServiceError> {
    let bad = |what: &str| {
        ServiceError::bad_request(Code::Part(ScimType::InvalidValue.code()), what.to_owned())
    };
    let named = body["schemas"]
        .as_array()
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(SEARCH_REQUEST)));
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
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("attributes are strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| Some(v.join(","))),
            _ => Err(bad("filter and attributes are strings")),
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
        filter: text("filter")?,
        start_index: number("startIndex")?,
        count: number("count")?,
        attributes: text("attributes")?,
        excluded_attributes: text("excludedAttributes")?,
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
