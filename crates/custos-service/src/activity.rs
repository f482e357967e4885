//! Activity per hour, for analysts: a person's views and field reveals against the
//! median of their peers (same organisation and role) and their quota, and a partner
//! company's totals. Counts only, from the access records.

use crate::error::Code;
use std::collections::BTreeMap;

use custos_detector::baseline::median;
use custos_policy::Action;
use custos_store::HourlyActivity;
use custos_types::calendar::HOUR_MS;
use serde::{Deserialize, Serialize};

use crate::input::valid_id;
use crate::record::{Exchange, Recorded, RequestMeta};
use crate::{App, ServiceError};

/// Longest window, in hours (a week).
const MAX_HOURS: u32 = 168;

/// The window when the query names none, in hours.
const DEFAULT_HOURS: u32 = 24;

/// What an activity query accepts, as its refusal says.
pub const HOURS_RULE: &str = "hours is a whole number from 1 to 168";

/// The window of an activity query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
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
    #[schema(value_type = crate::schema::Role)]
    pub role: custos_types::Role,
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
    #[schema(value_type = String)]
    pub role: custos_types::RecordedRole,
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

impl App {
    /// Staff member `id`'s views and reveals per hour against their peers' medians and
    /// quota (`read_access`: security analysts, admins); `query` is the window as
    /// decoded by the transport.
    pub async fn person_activity(
        &self,
        meta: &RequestMeta,
        id: &str,
        query: Result<ActivityQuery, ServiceError>,
    ) -> Recorded<PersonActivity> {
        let mut ex = self.begin(meta, custos_types::Action::ReadActivity);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            valid_id("staff", id)?;
            let staff = self
                .store
                .staff(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("staff"))?;
            ex.target = Some(id.to_owned());
            let (first, last) = window(&ex, query?)?;
            let rows = self.store.hourly_activity(&staff.org, first, last).await?;
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
            Ok(PersonActivity {
                peers: peers.len(),
                reveals_per_hour: self
                    .quotas
                    .effective(&staff.id, &self.config.quota_for(staff.role), ex.at())
                    .0
                    .reveals_per_hour,
                id: staff.id,
                name: staff.name,
                role: staff.role,
                org: staff.org,
                status: staff.status.as_str().to_owned(),
                hours,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Organisation `org`'s views and reveals per hour, and per person (`read_access`:
    /// security analysts, admins); `query` is the window as decoded by the transport.
    pub async fn org_activity(
        &self,
        meta: &RequestMeta,
        org: &str,
        query: Result<ActivityQuery, ServiceError>,
    ) -> Recorded<OrgActivity> {
        let mut ex = self.begin(meta, custos_types::Action::ReadActivity);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            valid_id("org", org)?;
            ex.target = Some(org.to_owned());
            let (first, last) = window(&ex, query?)?;
            let rows = self.store.hourly_activity(org, first, last).await?;
            Ok(org_totals(
                &self.config.company_org,
                org.to_owned(),
                first,
                last,
                &rows,
            ))
        }
        .await;
        self.finish(ex, result).await
    }
}

/// `rows` of organisation `org` summed per hour and per person over the window.
fn org_totals(
    company_org: &str,
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
            role: r.role,
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
        partner: org != company_org,
        org,
        hours,
        people,
    }
}

/// The window's first and last hour starts: `hours` hours up to the request's hour.
fn window(ex: &Exchange, query: ActivityQuery) -> Result<(i64, i64), ServiceError> {
    let hours = query.hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ServiceError::bad_request(Code::InvalidQuery, HOURS_RULE));
    }
    let last = ex.at() - ex.at().rem_euclid(HOUR_MS);
    Ok((last - i64::from(hours - 1) * HOUR_MS, last + HOUR_MS))
}

/// The hour starts from `first` up to (not including) `end`.
fn hours(first: i64, end: i64) -> impl Iterator<Item = i64> {
    (first..end).step_by(HOUR_MS as usize)
}
