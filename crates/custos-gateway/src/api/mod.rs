//! HTTP routes. Each data route is one handler that decodes its input, calls one
//! operation of the service and answers with the `Recorded` value it gets back
//! (`crate::record::reply`), so no answer leaves without its access record.

mod access;
mod activity;
mod alerts;
mod cases;
mod contact;
mod customers;
pub(crate) mod doc;
mod keys;
mod ledger;
mod ops;
mod scim;
mod staff;
mod trace;
mod transparency;

pub use customers::CASE_HEADER;
pub use custos_service::activity::{OrgActivity, OrgHour, PersonActivity, PersonHour, PersonTotal};
pub use custos_service::ledger::Verification;
pub use custos_service::transparency::{
    CaseSummary, CustomerAccess, CustomerAccesses, DEFAULT_LINK_HOURS, MAX_LINK_HOURS,
    valid_link_hours,
};

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use custos_service::{ServiceError, SharedApp};
use doc::Answers;
use scim::ScimDoc;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custos", description = "The customer-data vault and the one door staff reach it through."),
    paths(ledger::hash_tile, ledger::entry_tile),
    components(schemas(
        crate::error::Envelope, crate::error::Body, custos_service::schema::Id, custos_service::schema::CustomerId, custos_service::schema::CaseId,
        custos_service::schema::Role, custos_service::schema::StaffStatus, custos_service::schema::AlertStatus, custos_service::schema::RevealField,
        custos_service::schema::RevealFields, custos_service::schema::RevealedFields, custos_service::schema::Channel, custos_service::schema::StaffName,
        custos_service::schema::CustomerName, custos_service::schema::Reason, custos_service::schema::StepUpReason, custos_service::schema::Phone, custos_service::schema::Email,
        custos_service::schema::AccountId, custos_service::schema::AttributeValue, custos_service::schema::Attributes, custos_service::schema::SearchKey,
        custos_service::schema::NdjsonCustomers, doc::TraceUpload, custos_service::schema::CosignedNote, custos_service::vault::NewCustomer,
        custos_service::schema::ContactChannel, custos_service::schema::Subject, custos_service::schema::EmailText, custos_service::schema::SmsText, custos_service::schema::ContactBody, custos_service::schema::E164,
        custos_service::schema::AppAssertion,
    )),
    modifiers(&BearerAuth, &ScimDoc)
)]
struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API and operations endpoints with every layer: JSON 404/405, the framework's
/// refusals in the error envelope, metrics and logs per route, `Cache-Control`.
pub fn router(app: SharedApp) -> Router {
    outer_layers(api(app))
}

/// The API's routes with the error envelope for the framework's refusals, without the
/// outer layers: for a site that merges other routes (the console) under
/// [`outer_layers`] and calls the API in process through [`observed`].
pub fn api(app: SharedApp) -> Router {
    api_router(app).layer(middleware::from_fn(crate::rejection::api))
}

/// `router` with requests counted and timed by route (for in-process calls that go
/// around the outer layers).
pub fn observed(router: Router) -> Router {
    router.layer(middleware::from_fn(observe))
}

/// The layers around everything the server answers: metrics and logs per route, and
/// `Cache-Control: no-store` unless a handler chose otherwise.
pub fn outer_layers(router: Router) -> Router {
    router
        .layer(middleware::from_fn(observe))
        .layer(middleware::from_fn(no_store))
}

/// Every answer says `Cache-Control: no-store` unless its handler chose otherwise (the
/// console's stylesheet): reveals, masked views, search results, tokens and customer
/// links must never be kept by a browser, a proxy or a client cache.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The OpenAPI document of [`api_router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The API and operations endpoints, with JSON 404/405.
fn api_router(app: SharedApp) -> Router {
    let (router, openapi) = api_routes();
    let openapi = std::sync::Arc::new(openapi);
    router
        // Tile indexes span path segments (`x001/234`): wildcard routes, described in
        // ApiDoc's `paths` with the index as one parameter.
        .route(
            "/ledger/tile/entries/{*index}",
            axum::routing::get(ledger::entry_tile),
        )
        .route(
            "/ledger/tile/{level}/{*index}",
            axum::routing::get(ledger::hash_tile),
        )
        .nest("/scim/v2", scim::router())
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { crate::error::response(ServiceError::not_found("route")) })
        .method_not_allowed_fallback(|| async {
            crate::error::answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
                None,
            )
        })
        .with_state(app)
}

/// The routes described in OpenAPI, and their description (completed by [`Answers`]
/// once every route is in).
fn api_routes() -> (Router<SharedApp>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(staff::create_staff))
        .routes(routes!(staff::issue_token))
        .routes(routes!(staff::revoke_token))
        .routes(routes!(staff::suspend))
        .routes(routes!(staff::resume))
        .routes(routes!(activity::person))
        .routes(routes!(activity::org))
        .routes(routes!(customers::create_customer, customers::search))
        .routes(routes!(customers::import))
        .routes(routes!(customers::plant_canaries))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::get_alert))
        .routes(routes!(alerts::acknowledge))
        .routes(routes!(alerts::dismiss))
        .routes(routes!(customers::view, customers::erase))
        .routes(routes!(customers::reveal))
        .routes(routes!(keys::start_rotation))
        .routes(routes!(keys::rotation))
        .routes(routes!(keys::start_index_rotation))
        .routes(routes!(keys::index_rotation))
        .routes(routes!(contact::contact))
        .routes(routes!(contact::resolve))
        .routes(routes!(cases::create_case))
        .routes(routes!(cases::close_case))
        .routes(routes!(cases::post_contact))
        .routes(routes!(cases::request_access, cases::access_request_queue))
        .routes(routes!(cases::approve_access))
        .routes(routes!(cases::deny_access))
        .routes(routes!(cases::break_glass))
        .routes(routes!(access::list_access))
        .routes(routes!(trace::trace))
        .routes(routes!(transparency::accesses))
        .routes(routes!(transparency::copy))
        .routes(routes!(transparency::issue_link))
        .routes(routes!(access::me))
        .routes(routes!(ledger::checkpoint))
        .routes(routes!(ledger::inclusion_proof))
        .routes(routes!(ledger::consistency_proof))
        .routes(routes!(ledger::entries))
        .routes(routes!(ledger::entry_proof))
        .routes(routes!(ledger::verify))
        .routes(routes!(ledger::cosignature))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    Answers.modify(&mut openapi);
    (router, openapi)
}

/// Counts and times every request by its route template. Only the template is logged:
/// paths hold ids, and query strings may hold phone numbers or emails.
async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("custos_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("custos_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::info!(%method, %route, %status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// Serialises `body` with `status` as a JSON response.
fn json<T: serde::Serialize>(status: StatusCode, body: T) -> Response {
    (status, axum::Json(body)).into_response()
}
