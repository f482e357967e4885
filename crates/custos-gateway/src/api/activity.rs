//! Activity per hour, for analysts, over HTTP (the rules are the service's:
//! `custos_service::activity`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::activity::{ActivityQuery, HOURS_RULE, OrgActivity, PersonActivity};
use custos_service::schema::Id;

use crate::input::parse_query;
use crate::record::{RequestInfo, reply};

/// A person's views and reveals per hour against their peers' medians and quota
/// (security_analyst, admin).
#[utoipa::path(get, path = "/v1/staff/{id}/activity", tag = "staff", params(
        ("id" = Id, Path, description = "staff id"), ActivityQuery),
    responses(
        (status = 200, body = PersonActivity, description = "the activity"),
        (status = 400, description = "`invalid_query`: hours is not a whole number from 1 to 168"),
        (status = 403, description = "`forbidden`: only security analysts and admins read activity"),
        (status = 404, description = "`not_found`: no such staff entry")),
    security(("bearer" = [])))]
pub(super) async fn person(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = parse_query::<ActivityQuery>(query, HOURS_RULE);
    reply(
        StatusCode::OK,
        app.person_activity(&info.meta, &id, query).await,
    )
}

/// An organisation's views and reveals per hour, and per person (security_analyst, admin).
#[utoipa::path(get, path = "/v1/orgs/{org}/activity", tag = "staff", params(
        ("org" = Id, Path, description = "organisation"), ActivityQuery),
    responses(
        (status = 200, body = OrgActivity, description = "the activity (none for an organisation without staff)"),
        (status = 400, description = "`invalid_query`: hours is not a whole number from 1 to 168"),
        (status = 403, description = "`forbidden`: only security analysts and admins read activity")),
    security(("bearer" = [])))]
pub(super) async fn org(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = parse_query::<ActivityQuery>(query, HOURS_RULE);
    reply(
        StatusCode::OK,
        app.org_activity(&info.meta, &org, query).await,
    )
}
