//! Leak trace: upload a leaked list, see the ranked suspects (and any canary in it), and
//! download the evidence bundle of the first suspects, which `custos ledger
//! check-evidence` verifies offline. The file goes to `POST /v1/trace` as uploaded and is
//! kept nowhere; the session keeps only the last evidence bundle.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use futures::{StreamExt as _, TryStreamExt as _};
use maud::html;
use serde::Deserialize;

use super::page::{self, csrf_field, document, when, when_cell};
use super::{Call, Detour, Page, Shared, Visitor, segment};

/// Suspects whose evidence the console bundles.
const EVIDENCE_TOP: usize = 5;

#[derive(Deserialize)]
struct Report {
    rows: u64,
    matched: u64,
    unmatched: u64,
    ambiguous: u64,
    customers: usize,
    canaries: Vec<Canary>,
    suspects: Vec<Suspect>,
    ring: Option<Ring>,
    evidence: Option<serde_json::Value>,
    since: i64,
    until: i64,
}

#[derive(Deserialize)]
struct Canary {
    customer: String,
    exposed: Vec<CanaryExposure>,
}

#[derive(Deserialize)]
struct CanaryExposure {
    staff: String,
    org: String,
    first_at: i64,
    allocated: bool,
}

#[derive(Deserialize)]
struct Suspect {
    staff: String,
    org: String,
    score: f64,
    records: usize,
    records_revealed: usize,
    first_access: i64,
    last_access: i64,
}

#[derive(Deserialize)]
struct Ring {
    members: Vec<String>,
    records_explained: usize,
    fraction_explained: f64,
}

/// `GET /trace`: the upload form.
pub(super) async fn form(visitor: Visitor) -> Page {
    visitor.analyst()?;
    Ok(document(
        "Leak trace",
        Some(&visitor.session),
        html! {
            // The CSRF field comes first: the upload is checked before the file is read;
            // the window's fields before the file, which is passed on as it arrives.
            form.stack method="post" enctype="multipart/form-data" action="/trace" {
                (csrf_field(&visitor.session))
                fieldset.window aria-describedby="window-help" {
                    legend { "Accesses in (optional)" }
                    label for="since" { "From (UTC)" }
                    input #since type="date" name="since";
                    label for="until" { "Before (UTC)" }
                    input #until type="date" name="until";
                }
                p #window-help .muted { "Accesses to the leaked customers count from the start of the first day up to the start of the second; what each person held in all counts everything before the second. Empty: from the first record, up to now." }
                label for="file" { "Leaked list" }
                input #file type="file" name="file" required aria-describedby="file-help";
                p #file-help .muted { "CSV, TSV or plain text, any columns; UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order mark, or GB18030 (which includes GBK and GB2312). Phone numbers, emails and account ids are matched through the blind indexes; the file is not kept." }
                button type="submit" { "Trace" }
            }
        },
    ))
}

/// `POST /trace`: checks the form's CSRF field, passes the file on to the API as it
/// arrives (nothing of it is buffered or kept here) and shows the report.
pub(super) async fn upload(
    State(console): State<Shared>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Body,
) -> Page {
    visitor.analyst()?;
    let limit = console.app.config().import_limit_bytes;
    // Random, so that no file can contain it by design.
    let boundary = hex::encode(custos_crypto::random_bytes::<16>());
    let (window, file) = file_part(&visitor, &headers, body, &boundary, limit).await?;
    let call = Call {
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        body: Some(file),
        case: None,
    };
    // The window goes to the API as given: it checks it and says what is wrong.
    let mut uri = format!("/v1/trace?top=20&evidence={EVIDENCE_TOP}");
    for (name, value) in &window {
        uri.push_str(&format!("&{name}={}", segment(value)));
    }
    let report: Report = console
        .call_as(&visitor, Method::POST, &uri, call)
        .await
        .decode(&visitor)?;
    let evidence = report
        .evidence
        .as_ref()
        .filter(|e| !e.is_null())
        .and_then(|e| serde_json::to_vec_pretty(e).ok());
    let has_evidence = evidence.is_some();
    console
        .sessions
        .set_evidence(&visitor.key, evidence.as_deref())
        .await
        .map_err(|e| page::unavailable(&e))?;
    Ok(document(
        "Leak trace: suspects",
        Some(&visitor.session),
        html! {
            section.card {
                dl.fields {
                    dt { "Accesses" } dd #window {
                        "from " @if report.since <= 0 { "the first record" } @else { (when(report.since)) }
                        " up to " @if report.until == i64::MAX { "now" } @else { (when(report.until)) }
                    }
                    dt { "Rows" } dd #rows { (report.rows) }
                    dt { "Matched" } dd #matched { (report.matched) " (" (report.customers) " customers)" }
                    dt { "Unmatched" } dd { (report.unmatched) }
                    dt { "Ambiguous" } dd { (report.ambiguous) }
                }
            }
            @if !report.canaries.is_empty() {
                h2.bad { "Canary records in the file" }
                p { "A canary is never opened for real work, except by the one person of a team Custos gave it to: whoever was exposed to one is near-proof." }
                ul { @for c in &report.canaries {
                    li { (c.customer) ": "
                        @for e in &c.exposed {
                            (e.staff) " (" (e.org) ", " (when(e.first_at))
                            @if e.allocated { ", allocated to them" } ") "
                        } }
                } }
            }
            h2 { "Suspects, most likely first" }
            @if report.suspects.is_empty() {
                p { "No one's access explains the file's rows." }
            } @else {
                div.scroll { table #suspects .rows {
                    thead { tr { th { "#" } th { "Person" } th { "Org" } th { "Score" } th { "Leaked records they had" } th { "Revealed" } th { "First access" } th { "Last access" } } }
                    tbody { @for (i, s) in report.suspects.iter().enumerate() {
                        tr { td data-label="#" { (i + 1) } td.id data-label="Person" { a href={ "/staff/" (s.staff) } { (s.staff) } }
                             td.id data-label="Org" { (s.org) } td data-label="Score" { (format!("{:.2}", s.score)) }
                             td data-label="Leaked records they had" { (s.records) } td data-label="Revealed" { (s.records_revealed) }
                             td data-label="First access" { (when_cell(s.first_access)) } td data-label="Last access" { (when_cell(s.last_access)) } }
                    } }
                } }
            }
            @if let Some(ring) = report.ring.as_ref().filter(|r| r.members.len() > 1) {
                h2 { "A group whose union explains the file" }
                p { (ring.members.join(", ")) ": " (ring.records_explained) " records (" (format!("{:.0}", ring.fraction_explained * 100.0)) "%)." }
            }
            @if has_evidence {
                p { a #evidence download="evidence.json" href="/trace/evidence.json" { "Download the evidence bundle" }
                    " (the ledger entries behind the first " (EVIDENCE_TOP) " suspects, each with its inclusion proof and the signed checkpoint; check it with custos ledger check-evidence)." }
            }
        },
    ))
}

/// Fields of the upload form that set the trace's window, passed on as they are.
const WINDOW_FIELDS: [&str; 2] = ["since", "until"];

/// The upload's first part must be the session's CSRF token; then come the window's
/// fields, if any (returned, the empty ones left out); the file, last, becomes the only
/// part of the body passed on, between `forward_boundary`s. A stream: the API enforces
/// its size limit on it and wipes what it reads.
async fn file_part(
    visitor: &Visitor,
    headers: &HeaderMap,
    body: Body,
    forward_boundary: &str,
    limit: usize,
) -> Page<(Vec<(&'static str, String)>, Body)> {
    let refused = |message: &str| {
        Detour::from(page::problem(
            StatusCode::BAD_REQUEST,
            Some(&visitor.session),
            "invalid_upload",
            message,
            None,
        ))
    };
    let boundary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| refused("Send the file with the upload form."))?;
    // A little over the API's limit: the API then refuses an oversized file by its size.
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit as u64 + 64 * 1024)
            .for_field("csrf", 256)
            .for_field("since", 64)
            .for_field("until", 64),
    );
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let token = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => field.text().await.ok(),
        _ => None,
    };
    visitor.check_csrf(token.as_deref().unwrap_or(""))?;
    let mut window = Vec::new();
    let file = loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            _ => {
                return Err(refused(
                    "The upload form sends one file, in a part named file.",
                ));
            }
        };
        let name = field.name().unwrap_or("");
        if name == "file" {
            break field;
        }
        let Some(&name) = WINDOW_FIELDS.iter().find(|&&w| w == name) else {
            return Err(refused(
                "The upload form sends the window's days and one file, nothing else.",
            ));
        };
        let value = field
            .text()
            .await
            .map_err(|_| refused("A day of the window is too long; give it as YYYY-MM-DD."))?;
        if !value.trim().is_empty() {
            window.push((name, value.trim().to_owned()));
        }
    };
    let head = format!(
        "--{forward_boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{forward_boundary}--\r\n");
    let parts = futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(file.map_err(std::io::Error::other))
        .chain(futures::stream::once(async move { Ok(Bytes::from(tail)) }));
    Ok((window, Body::from_stream(parts)))
}

/// `GET /trace/evidence.json`: the session's last evidence bundle.
pub(super) async fn evidence(State(console): State<Shared>, visitor: Visitor) -> Page {
    visitor.analyst()?;
    let stored = console
        .sessions
        .evidence(&visitor.key)
        .await
        .map_err(|e| page::unavailable(&e))?;
    let Some(bundle) = stored else {
        return Err(page::problem(
            StatusCode::NOT_FOUND,
            Some(&visitor.session),
            "no_evidence",
            "Trace a leaked list first; its evidence bundle is kept for this session only.",
            None,
        )
        .into());
    };
    let mut r = page::with_headers(
        StatusCode::OK,
        "application/json",
        String::from_utf8_lossy(&bundle).into_owned(),
    );
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"evidence.json\""),
    );
    Ok(r)
}
