//! Customers over HTTP: creation and import, canaries, the masked view, field reveals
//! and search (the rules are the service's: `custos_service::customers`).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::Code;
use custos_service::customers::{
    CreatedCustomer, RevealRequest, Revealed, SEARCH_KEYS, SearchResults,
};
use custos_service::erasure::Erased;
use custos_service::import::{FIRST_LINE_HEADER, IDEMPOTENCY_KEY_HEADER, ImportBatch, Imported};
use custos_service::input::parse_json;
use custos_service::schema::{CaseId, CustomerId, NdjsonCustomers, SearchKey};
use custos_service::vault::{MaskedCustomer, NewCustomer};
use custos_service::{ServiceError, SharedApp};

use crate::input::{parse_query, read_body};
use crate::record::{RequestInfo, reply};

pub use custos_service::customers::CASE_HEADER;

/// Create one customer (admin, integration).
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = NewCustomer,
    responses(
        (status = 201, body = CreatedCustomer, description = "created",
            links(("Accesses" = (operation_id = "accesses", parameters(("id" = "$response.body#/id")))),
                  ("Link" = (operation_id = "issue_link", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "a field is not valid (`invalid_text`, `control_character`, `invalid_phone`, `invalid_email`, `invalid_account_id`) or the body is not this JSON (`malformed_json`, `invalid_body`, `unknown_field`)"),
        (status = 403, description = "`forbidden`: only admins and integrations create customers")),
    security(("bearer" = [])))]
pub(super) async fn create_customer(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let customer = read_body(body, app.config().body_limit_bytes)
        .await
        .and_then(|bytes| parse_json::<NewCustomer>(&bytes));
    reply(
        StatusCode::CREATED,
        app.create_customer(&info.meta, customer).await,
    )
}

/// Import customers as NDJSON, one per line; all or nothing (admin). With an
/// `Idempotency-Key`, a batch is stored once: sent again with the same body it is answered
/// with the first send's ids (`replayed`), so a client may resend after a lost answer.
#[utoipa::path(post, path = "/v1/customers/import", tag = "customers",
    params(
        ("Idempotency-Key" = Option<String>, Header,
            nullable = false, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.:\-]{1,128}$",
            description = "The client's name for this batch, 1 to 128 of A-Z a-z 0-9 _ . : - (one per batch, kept per staff member)"),
        ("X-Custos-First-Line" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 999_999_999_999_f64,
            description = "The number of the body's first line in the client's file, so that errors name that file's lines (default 1)")),
    request_body(content = NdjsonCustomers, content_type = "application/x-ndjson",
        description = "One new customer per line (blank lines are skipped), at least one."),
    responses(
        (status = 200, body = Imported, description = "all imported, or (`replayed`) imported before under this key"),
        (status = 400, description = "a line is not a valid customer (the message names it), none is given (`empty_import`), there are too many (`too_many_records`), or a header is not valid (`invalid_header`)"),
        (status = 403, description = "`forbidden`: only admins import"),
        (status = 409, description = "`idempotency_key_reused`: the key was used for a different body")),
    security(("bearer" = [])))]
pub(super) async fn import(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let ndjson = read_body(body, app.config().import_limit_bytes)
        .await
        .map(Vec::from);
    let batch = ImportBatch::from_headers(
        info.headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .map(|v| v.as_bytes()),
        info.headers.get(FIRST_LINE_HEADER).map(|v| v.as_bytes()),
    );
    reply(
        StatusCode::OK,
        app.import_customers(&info.meta, ndjson, batch).await,
    )
}

/// Plant canary customers (admin): NDJSON like an import. They are stored exactly like
/// other customers; only a keyed mark, which the detector reads, says what they are. Any
/// later view, reveal or search hit on one suspends the person, except the person Custos
/// allocated it to (`[canaries] allocation_rate`). Keep the returned ids secret: the CRM
/// must never open a case for them.
#[utoipa::path(post, path = "/v1/canaries", tag = "customers",
    request_body(content = NdjsonCustomers, content_type = "application/x-ndjson",
        description = "One canary per line, as in an import."),
    responses(
        (status = 200, body = Imported, description = "all planted"),
        (status = 400, description = "a line is not a valid customer (the message names it), none is given (`empty_import`), or there are too many (`too_many_records`)"),
        (status = 403, description = "`forbidden`: only admins plant canaries"),
        (status = 409, description = "`canary_collision`: a canary shares a phone, email or account id with a stored customer; `rotation_in_progress`: the blind-index key is rotating")),
    security(("bearer" = [])))]
pub(super) async fn plant_canaries(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let ndjson = read_body(body, app.config().import_limit_bytes)
        .await
        .map(Vec::from);
    reply(StatusCode::OK, app.plant_canaries(&info.meta, ndjson).await)
}

/// The masked view of a customer, for the case named in `X-Custos-Case`.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = CustomerId, Path, description = "customer id"),
           ("X-Custos-Case" = CaseId, Header, description = "an open case assigned to the caller for this customer")),
    responses(
        (status = 200, body = MaskedCustomer, description = "the masked view"),
        (status = 403, description = "`forbidden`: the policy refuses (no open case of the caller for this customer, a suspended caller, a role that serves no customers)"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 429, description = "`quota_exceeded`: a quota of the caller is used up")),
    security(("bearer" = [])))]
pub(super) async fn view(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let case = info
        .headers
        .get(CASE_HEADER)
        .map(|v| {
            v.to_str()
                .map_err(|_| ServiceError::bad_request(Code::InvalidId, "case id must be ASCII"))
        })
        .transpose();
    reply(
        StatusCode::OK,
        app.view_customer(&info.meta, &id, case).await,
    )
}

/// Erase a customer at their request (the privacy officer): their data key, sealed fields
/// and blind indexes are destroyed; only the id stays, and the ledger still verifies.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = CustomerId, Path, description = "customer id")),
    responses(
        (status = 200, body = Erased, description = "erased"),
        (status = 403, description = "`forbidden`: only the privacy officer erases"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 409, description = "`canary_not_erasable`: this customer cannot be erased"),
        (status = 410, description = "`erased`: the customer was erased already")),
    security(("bearer" = [])))]
pub(super) async fn erase(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.erase_customer(&info.meta, &id).await)
}

/// Reveal named fields in full, for a case, with a reason; each field is its own Cedar action.
#[utoipa::path(post, path = "/v1/customers/{id}/reveal", tag = "customers",
    params(("id" = CustomerId, Path, description = "customer id")),
    request_body = RevealRequest,
    responses(
        (status = 200, body = Revealed, description = "the fields in full"),
        (status = 400, description = "a field is not valid (`invalid_field`, `invalid_id`, `invalid_text`, `control_character`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the policy refuses a field or the case; `step_up_required`: a risk alert requires `step_up_reason`"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 429, description = "`quota_exceeded`: a quota of the caller is used up")),
    security(("bearer" = [])))]
pub(super) async fn reveal(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let request = read_body(body, app.config().body_limit_bytes)
        .await
        .and_then(|bytes| parse_json::<RevealRequest>(&bytes));
    reply(
        StatusCode::OK,
        app.reveal_fields(&info.meta, &id, request).await,
    )
}

/// Search by exactly one of phone, email or account_id. Results are masked and limited to
/// customers on the caller's open cases; anything else returns an empty list (and is
/// recorded), so a search is no oracle for who is a customer.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(("key" = SearchKey, Query, style = Form, explode,
        description = "exactly one of `phone`, `email`, `account_id`, as a query parameter of that name")),
    responses(
        (status = 200, body = SearchResults, description = "the matches on the caller's open cases, masked (often none)"),
        (status = 400, description = "`invalid_query`: not exactly one key; `invalid_phone`, `invalid_email`, `invalid_account_id`: the value is not one"),
        (status = 403, description = "`forbidden`: the caller's role may not search"),
        (status = 429, description = "`quota_exceeded`: the caller's search quota is used up")),
    security(("bearer" = [])))]
pub(super) async fn search(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_query(query, SEARCH_KEYS);
    reply(
        StatusCode::OK,
        app.search_customers(&info.meta, params).await,
    )
}
