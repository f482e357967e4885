//! Activity per hour, for analysts: a person's views and field reveals against the
//! median of their peers (same organisation and role) and their quota, and a partner
//! company's totals. Counts only, from the access records.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_detector::baseline::median;
use custos_policy::Action;
use custos_store::HourlyActivity;
use custos_types::calendar::HOUR_MS;
use serde::{Deserialize, Serialize};

use super::doc::Id;
use super::json;
use crate::exchange::{Exchange, RequestInfo, parse_query, valid_id};
use crate::{ApiError, App, SharedApp};

/// Longest window, in hours (a week).
const MAX_HOURS: u32 = 168;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ActivityQuery {
    /// The window: this many hours up to now, 1 to 168 (default 24).
    #[param(minimum = 1, maximum = 168)]
    hours: Option<u32>,
}

/// One hour of a person's activity.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonHour {
    /// Start of the hour, unix milliseconds.
    pub start: i64,
    /// Allowed masked views.
    pub views: u64,
    /// Fields revealed.
    pub reveals: u64,
    /// Median views of the peers active in the window.
    pub peer_views: f64,
    /// Median fields revealed by the peers active in the window.
    pub peer_reveals: f64,
}

/// A person's activity per hour against their peers and quota.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonActivity {
    /// Staff id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Organisation.
    pub org: String,
    /// `active` or `suspended`.
    pub status: String,
    /// People of the same organisation and role active in the window (the person
    /// excluded): whose medians the chart shows.
    pub peers: usize,
    /// The role's hourly reveal quota, if it has one.
    pub reveals_per_hour: Option<u32>,
    /// Oldest hour first, every hour of the window.
    pub hours: Vec<PersonHour>,
}

/// One hour of an organisation's activity.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgHour {
    /// Start of the hour, unix milliseconds.
    pub start: i64,
    /// Allowed masked views by all its staff.
    pub views: u64,
    /// Fields revealed by all its staff.
    pub reveals: u64,
    /// People active in the hour.
    pub people: usize,
}

/// One person's totals in the window.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonTotal {
    /// Staff id.
    pub id: String,
    /// Role.
    pub role: String,
    /// Allowed masked views.
    pub views: u64,
    /// Fields revealed.
    pub reveals: u64,
}

/// An organisation's activity per hour and per person.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgActivity {
    /// The organisation.
    pub org: String,
    /// Whether it is a partner company.
    pub partner: bool,
    /// Oldest hour first, every hour of the window.
    pub hours: Vec<OrgHour>,
    /// People active in the window, most fields revealed first.
    pub people: Vec<PersonTotal>,
}

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
    let mut ex = app.begin(&info, custos_types::Action::ReadActivity);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        valid_id("staff", &id)?;
        let staff = app
            .store
            .staff(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("staff"))?;
        ex.target = Some(id.clone());
        let (first, last) = window(&ex, query)?;
        let rows = app.store.hourly_activity(&staff.org, first, last).await?;
        let mut own: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let mut peers: BTreeMap<&str, BTreeMap<i64, (u64, u64)>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.role == staff.role) {
            let slot = if r.staff_id == staff.id {
                own.entry(r.hour).or_default()
            } else {
                peers
                    .entry(r.staff_id.as_str())
                    .or_default()
                    .entry(r.hour)
                    .or_default()
            };
            slot.0 += r.views;
            slot.1 += r.reveals;
        }
        let hours = hours(first, last)
            .map(|start| {
                let (views, reveals) = own.get(&start).copied().unwrap_or_default();
                let of_peers = |pick: fn(&(u64, u64)) -> u64| {
                    let mut counts: Vec<f64> = peers
                        .values()
                        .map(|p| p.get(&start).map_or(0, pick) as f64)
                        .collect();
                    median(&mut counts).unwrap_or(0.0)
                };
                PersonHour {
                    start,
                    views,
                    reveals,
                    peer_views: of_peers(|c| c.0),
                    peer_reveals: of_peers(|c| c.1),
                }
            })
            .collect();
        Ok(json(
            StatusCode::OK,
            PersonActivity {
                peers: peers.len(),
                reveals_per_hour: app
                    .quotas
                    .effective(
                        &staff.id,
                        &app.config.quota_for(staff.role.as_str()),
                        ex.at(),
                    )
                    .0
                    .reveals_per_hour,
                id: staff.id,
                name: staff.name,
                role: staff.role.as_str().to_owned(),
                org: staff.org,
                status: staff.status.as_str().to_owned(),
                hours,
            },
        ))
    }
    .await;
    app.finish(ex, result).await
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
    let mut ex = app.begin(&info, custos_types::Action::ReadActivity);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        valid_id("org", &org)?;
        ex.target = Some(org.clone());
        let (first, last) = window(&ex, query)?;
        let rows = app.store.hourly_activity(&org, first, last).await?;
        Ok(json(
            StatusCode::OK,
            org_activity(&app, org, first, last, &rows),
        ))
    }
    .await;
    app.finish(ex, result).await
}

fn org_activity(
    app: &App,
    org: String,
    first: i64,
    last: i64,
    rows: &[HourlyActivity],
) -> OrgActivity {
    let mut per_hour: BTreeMap<i64, OrgHour> = BTreeMap::new();
    let mut per_person: BTreeMap<&str, PersonTotal> = BTreeMap::new();
    for r in rows {
        let hour = per_hour.entry(r.hour).or_insert(OrgHour {
            start: r.hour,
            views: 0,
            reveals: 0,
            people: 0,
        });
        hour.views += r.views;
        hour.reveals += r.reveals;
        hour.people += 1;
        let person = per_person.entry(&r.staff_id).or_insert(PersonTotal {
            id: r.staff_id.clone(),
            role: r.role.as_str().to_owned(),
            views: 0,
            reveals: 0,
        });
        person.views += r.views;
        person.reveals += r.reveals;
    }
    let hours = hours(first, last)
        .map(|start| {
            per_hour.remove(&start).unwrap_or(OrgHour {
                start,
                views: 0,
                reveals: 0,
                people: 0,
            })
        })
        .collect();
    let mut people: Vec<PersonTotal> = per_person.into_values().collect();
    people.sort_by(|a, b| b.reveals.cmp(&a.reveals).then(b.views.cmp(&a.views)));
    OrgActivity {
        partner: org != app.config.company_org,
        org,
        hours,
        people,
    }
}

/// The window's first and last hour starts: `hours` hours up to the request's hour.
fn window(ex: &Exchange, query: Option<String>) -> Result<(i64, i64), ApiError> {
    let q: ActivityQuery = parse_query(query, "hours is a whole number from 1 to 168")?;
    let hours = q.hours.unwrap_or(24);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "hours is a whole number from 1 to 168",
        ));
    }
    let last = ex.at() - ex.at().rem_euclid(HOUR_MS);
    Ok((last - i64::from(hours - 1) * HOUR_MS, last + HOUR_MS))
}

/// The hour starts from `first` up to (not including) `end`.
fn hours(first: i64, end: i64) -> impl Iterator<Item = i64> {
    (first..end).step_by(HOUR_MS as usize)
}
