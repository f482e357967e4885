//! Alert delivery to a webhook: after an alert is stored, its JSON is POSTed to the
//! configured URL (configuration `[alerts]`).
//!
//! Delivery is best effort and never holds up the detector: each alert is sent from its
//! own task, with a few attempts; what cannot be delivered is counted
//! (`custos_webhook_failures_total`) and logged without personal data. The alert stays
//! in the store either way (`GET /v1/alerts`): the webhook is a notification, not the
//! record.
//!
//! The body carries the alert's own fields only: ids, fixed words, ledger indexes and
//! the reasons, which are plain words built from counts, thresholds, staff, org, case
//! and customer ids (no names, phone numbers or other personal data: see
//! [`crate::score`] and [`crate::canary`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use custos_store::AlertRecord;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Request header carrying the alert id (lets a receiver drop duplicates of a retry).
pub const ALERT_ID_HEADER: &str = "x-custos-alert-id";

/// Attempts per alert.
const ATTEMPTS: u32 = 3;

/// Wait before the second attempt; doubled for each further one.
const BACKOFF: Duration = Duration::from_millis(500);

/// Deliveries under way at once; an alert beyond that is not sent (and counted as a
/// failure), so that an unreachable receiver cannot pile up tasks without bound.
const MAX_IN_FLIGHT: usize = 256;

/// Longest accepted `webhook_timeout_ms`.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// Where alerts are delivered (configuration section `[alerts]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// URL to POST each new alert to: `https://…`, or `http://…` for a loopback host
    /// only (a receiver on the same machine). None: alerts are only stored.
    pub webhook_url: Option<String>,
    /// Time allowed for one delivery attempt, milliseconds.
    pub webhook_timeout_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_url: None,
            webhook_timeout_ms: 2_000,
        }
    }
}

/// An `[alerts]` setting that cannot be used; the message names the key and never
/// repeats the URL (it may carry a secret token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsConfigError(String);

impl AlertsConfigError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "config_invalid"
    }
}

impl std::fmt::Display for AlertsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlertsConfigError {}

impl AlertsConfig {
    /// Checks the settings; returns the webhook's URL, if one is set.
    pub fn validate(&self) -> Result<Option<reqwest::Url>, AlertsConfigError> {
        if self.webhook_timeout_ms == 0 || self.webhook_timeout_ms > MAX_TIMEOUT_MS {
            return Err(AlertsConfigError(format!(
                "alerts.webhook_timeout_ms must be 1 to {MAX_TIMEOUT_MS}"
            )));
        }
        let Some(raw) = &self.webhook_url else {
            return Ok(None);
        };
        https_or_loopback("alerts.webhook_url", raw)
            .map(Some)
            .map_err(AlertsConfigError)
    }
}

/// `raw` as a URL Custos may send to or read from: `https://…`, or `http://…` for a
/// loopback host only (a peer on the same machine), as the setting `key` must be. The message of
/// a refusal names `key` and never repeats the URL (it may carry a secret token).
pub fn https_or_loopback(key: &str, raw: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(raw.trim()).map_err(|e| format!("{key} is not a valid URL ({e})"))?;
    let Some(host) = url.host_str() else {
        return Err(format!("{key} must name a host"));
    };
    // The URL parser has normalised the host: IPv6 in brackets, IPv4 dotted.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "{key} must use https (plain http is allowed only for localhost, 127.0.0.0/8 or [::1]): what goes over it (alerts, messages, the keys tokens are checked with) must not cross a network in clear"
        )),
        _ => Err(format!(
            "{key} must be an https:// (or loopback http://) URL"
        )),
    }
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    kind: &'a str,
    severity: &'a str,
    /// The person (staff id), or `org:<org>` for an organisation's alert.
    subject: &'a str,
    org: &'a str,
    reasons: &'a [String],
    entries: &'a [u64],
    action: &'a str,
    created_at: i64,
}

/// Delivers alerts to the configured URL.
#[derive(Clone)]
pub(crate) struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    slots: Arc<Semaphore>,
}

impl Webhook {
    /// The webhook of `config`, or `None` when no URL is set.
    pub(crate) fn new(config: &AlertsConfig) -> Result<Option<Webhook>, String> {
        let Some(url) = config.validate().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.webhook_timeout_ms))
            // A redirect could lead from https to plain http elsewhere: not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Some(Webhook {
            client,
            url,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    /// Sends `alert` from a task of its own; returns at once.
    pub(crate) fn send(&self, alert: &AlertRecord) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            failed(&alert.id, "too many deliveries under way");
            return;
        };
        let body = match serde_json::to_vec(&Payload {
            id: &alert.id,
            kind: &alert.kind,
            severity: &alert.severity,
            subject: &alert.staff_id,
            org: &alert.org,
            reasons: &alert.reasons,
            entries: &alert.entries,
            action: &alert.action,
            created_at: alert.created_at,
        }) {
            Ok(body) => body,
            Err(_) => {
                failed(&alert.id, "cannot encode the alert");
                return;
            }
        };
        let webhook = self.clone();
        let id = alert.id.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut wait = BACKOFF;
            for attempt in 1..=ATTEMPTS {
                match webhook.attempt(&id, &body).await {
                    Ok(()) => return,
                    Err((error, retry)) if retry && attempt < ATTEMPTS => {
                        tracing::debug!(alert = %id, attempt, error = %error, "webhook attempt failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    Err((error, _)) => {
                        failed(&id, &error);
                        return;
                    }
                }
            }
        });
    }

    /// One POST; on failure, what went wrong (without the URL) and whether to retry.
    async fn attempt(&self, id: &str, body: &[u8]) -> Result<(), (String, bool)> {
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ALERT_ID_HEADER, id)
            .body(body.to_vec())
            .send()
            .await
            // The URL may hold a secret token: never in a log line.
            .map_err(|e| (e.without_url().to_string(), true))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            // A receiver that refuses the request (other than "later") will refuse it again.
            let retry = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            Err((format!("receiver answered {status}"), retry))
        }
    }
}

/// Counts and logs an alert that was not delivered (its id only: no personal data).
fn failed(id: &str, error: &str) {
    metrics::counter!("custos_webhook_failures_total").increment(1);
    tracing::warn!(alert = %id, error = %error, "alert not delivered to the webhook");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<Option<reqwest::Url>, AlertsConfigError> {
        AlertsConfig {
            webhook_url: Some(url.to_owned()),
            ..AlertsConfig::default()
        }
        .validate()
    }

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        assert!(check("https://hooks.example.com/custos?token=s3cret").is_ok());
        for ok in [
            "http://127.0.0.1:9000/hook",
            "http://127.1.2.3/hook",
            "http://localhost:8080/",
            "http://[::1]:8080/",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/custos",
            "http://10.0.0.5/hook",
            "ftp://127.0.0.1/hook",
            "not a url",
            "https://",
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.code(), "config_invalid");
            assert!(e.to_string().contains("alerts.webhook_url"), "{e}");
        }
        // The message never repeats the URL (it may hold a token).
        let e = check("http://hooks.example.com/custos?token=s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
        assert_eq!(AlertsConfig::default().validate(), Ok(None));
        let slow = AlertsConfig {
            webhook_timeout_ms: 0,
            ..AlertsConfig::default()
        };
        assert!(slow.validate().is_err());
    }
}
