//! The SIEM export (configuration `[export]`): every ledger entry and every alert, as an
//! OCSF event (`custos-ocsf`), sent at least once to syslog over TLS (RFC 5424 messages,
//! RFC 5425 octet-counted frames) and/or POSTed as a JSON array over HTTPS.
//!
//! # At least once, from a cursor in the store
//!
//! The exporter runs as one background task of the server. Each round it reads the
//! export's ledger cursor (the consumer cursor [`EXPORT`]) and the alerts no sink has
//! acknowledged (`exported_alerts`), turns up to `batch` of each into events, and hands
//! the batch to every configured sink. Only when every sink took the whole batch does it
//! move the cursor and mark the alerts sent, so a crash, a restart or a failing sink
//! means the batch is sent again: a receiver may see an event twice (its
//! `metadata.uid`, the ledger index or the alert id, tells), never miss one.
//!
//! The cursor moves only from where the exporter read it (`advance_consumer_cursor`):
//! on nodes sharing a PostgreSQL database each node's exporter may send a batch, but
//! only one moves the cursor past it.
//!
//! # What a sink acknowledges
//!
//! HTTPS: a 2xx answer to the POST. Syslog over TLS has no acknowledgement of its own
//! (RFC 5425): a batch counts as taken once it is written and flushed into a TLS
//! connection the receiver has not closed (checked before every batch, so a receiver
//! that restarted is reconnected to, not written into the void).
//!
//! # Never in the way of requests
//!
//! The task reads the ledger as the detector does and owns its connections; a sink that
//! fails is retried with a backoff doubling from [`RETRY_FIRST`] to [`RETRY_MAX`] while
//! requests go on. Failures are counted (`custos_export_failures_total`, by sink and
//! stable code) and logged with the code only: no address, URL or upstream text (they
//! may carry a token), and events hold ids only (`custos-ocsf`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use custos_access::{AccessLog, AccessRecord};
use custos_store::{AlertRecord, Store};
use custos_types::clock::now_millis;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

/// The export's consumer cursor in the store.
pub const EXPORT: &str = "export";

/// Wait before retrying a failed round; doubled after each further failure.
pub const RETRY_FIRST: Duration = Duration::from_millis(500);

/// The longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// How long the exporter waits for a new ledger entry before it looks for alerts again.
const POLL: Duration = Duration::from_millis(500);

/// Time allowed to connect to, or send one batch to, a sink.
const SINK_TIMEOUT: Duration = Duration::from_secs(10);

/// The syslog facility of the messages: 13, log audit (RFC 5424 §6.2.1).
const FACILITY_LOG_AUDIT: u8 = 13;

/// The syslog APP-NAME of the messages.
const APP_NAME: &str = "custos";

/// Largest accepted `batch`.
const MAX_BATCH: u32 = 5_000;

/// Where events are sent (section `[export]`); off until a sink is configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Syslog over TLS (`[export.syslog]`).
    pub syslog: Option<SyslogConfig>,
    /// HTTPS POST of JSON arrays (`[export.https]`).
    pub https: Option<HttpsExportConfig>,
    /// Most ledger entries, and most alerts, per batch (1 to 5,000; default 500).
    pub batch: u32,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            syslog: None,
            https: None,
            batch: 500,
        }
    }
}

/// A syslog receiver speaking RFC 5425 (syslog over TLS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the receiver (6514 is syslog over TLS's port).
    pub address: String,
    /// PEM file of the certificate authorities the receiver's certificate must chain to.
    pub ca_file: PathBuf,
    /// The name its certificate must carry; default: the host of `address`.
    pub server_name: Option<String>,
    /// The HOSTNAME field of the messages (default `custos`).
    pub hostname: Option<String>,
}

/// An HTTPS endpoint that takes a JSON array of events per POST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsExportConfig {
    /// Where batches are POSTed: `https://…`, or `http://…` for a loopback host only.
    pub url: String,
    /// PEM file of certificate authorities to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// A file holding a bearer token sent as `Authorization: Bearer …` (read at start;
    /// blanks around it are ignored).
    pub token_file: Option<PathBuf>,
}

impl ExportConfig {
    /// Checks what can be checked without reading files; the message names the key and
    /// never repeats a URL (it may carry a token).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(format!("export.batch must be from 1 to {MAX_BATCH}"));
        }
        if let Some(syslog) = &self.syslog {
            split_address(&syslog.address)?;
            if let Some(name) = &syslog.server_name {
                ServerName::try_from(name.trim().to_owned()).map_err(|_| {
                    "export.syslog.server_name is not a DNS name or IP address".to_owned()
                })?;
            }
            if let Some(hostname) = &syslog.hostname
                && !is_syslog_name(hostname, 255)
            {
                return Err(
                    "export.syslog.hostname must be 1 to 255 printable ASCII characters without spaces"
                        .into(),
                );
            }
        }
        if let Some(https) = &self.https {
            custos_detector::webhook::https_or_loopback("export.https.url", &https.url)?;
        }
        Ok(())
    }
}

/// `host:port` split, the host without brackets.
fn split_address(address: &str) -> Result<(String, u16), String> {
    let bad = || "export.syslog.address must be host:port".to_owned();
    let (host, port) = address.trim().rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// A syslog header field (RFC 5424 §6: PRINTUSASCII, no spaces).
fn is_syslog_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.bytes().all(|b| (33..=126).contains(&b))
}

/// A failure to send, with a stable code and no address, URL or upstream text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sink} export failed: {code}")]
pub struct SinkError {
    /// `syslog` or `https`.
    pub sink: &'static str,
    /// `connect_failed`, `tls_failed`, `send_failed`, `timeout` or `rejected`.
    pub code: &'static str,
    /// The HTTP status of a rejection.
    pub status: Option<u16>,
}

impl SinkError {
    fn new(sink: &'static str, code: &'static str) -> SinkError {
        SinkError {
            sink,
            code,
            status: None,
        }
    }
}

/// One event ready to go: its JSON and what its syslog header needs.
pub struct Event {
    /// The OCSF event, serialised.
    pub json: String,
    /// When it happened, unix milliseconds.
    pub time: i64,
    /// Its OCSF `severity_id`.
    pub severity_id: u8,
    /// Its OCSF `class_uid` (the syslog MSGID).
    pub class_uid: u32,
}

impl Event {
    fn new(value: serde_json::Value) -> Event {
        let number = |key: &str| value.get(key).and_then(serde_json::Value::as_i64);
        Event {
            time: number("time").unwrap_or(0),
            severity_id: number("severity_id")
                .and_then(|s| u8::try_from(s).ok())
                .unwrap_or(0),
            class_uid: number("class_uid")
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0),
            json: value.to_string(),
        }
    }

    /// The event of ledger entry `record` (its `seq` is its index).
    pub fn of_entry(record: &AccessRecord) -> Event {
        Event::new(custos_ocsf::ledger_event(&custos_ocsf::LedgerEntry {
            index: u64::try_from(record.seq).unwrap_or(0),
            request_id: &record.request_id,
            at: record.at,
            staff_id: &record.staff_id,
            org: &record.org,
            role: record.role,
            action: record.action,
            customer_id: record.customer_id.as_deref(),
            fields: &record.fields,
            case_id: record.case_id.as_deref(),
            target: record.target.as_deref(),
            decision: record.decision,
            reason_code: &record.reason_code,
            client: record.client.as_deref(),
        }))
    }

    /// The event of `alert`.
    pub fn of_alert(alert: &AlertRecord) -> Event {
        Event::new(custos_ocsf::alert_event(&custos_ocsf::Alert {
            id: &alert.id,
            created_at: alert.created_at,
            staff_id: &alert.staff_id,
            org: &alert.org,
            severity: &alert.severity,
            kind: &alert.kind,
            reasons: &alert.reasons,
            entries: &alert.entries,
            action: &alert.action,
            status: &alert.status,
        }))
    }
}

/// Appends `event` to `out` as one RFC 5425 frame: the length of the RFC 5424 message in
/// octets, a space, the message (`<PRI>1 TIMESTAMP HOSTNAME custos - MSGID - JSON`).
pub fn syslog_frame(out: &mut Vec<u8>, hostname: &str, event: &Event) {
    // OCSF severity → syslog severity: Informational 6, Low 5 (notice), Medium 4
    // (warning), High 3 (error), Critical 2, Fatal 1; Unknown and Other 5.
    let severity: u8 = match event.severity_id {
        1 => 6,
        2 => 5,
        3 => 4,
        4 => 3,
        5 => 2,
        6 => 1,
        _ => 5,
    };
    let message = format!(
        "<{}>1 {} {hostname} {APP_NAME} - ocsf.{} - {}",
        FACILITY_LOG_AUDIT * 8 + severity,
        rfc3339(event.time),
        event.class_uid,
        event.json
    );
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{} {message}", message.len());
}

/// Unix milliseconds as an RFC 3339 UTC timestamp with milliseconds, or `-` (NILVALUE)
/// outside years 1 to 9999.
fn rfc3339(ms: i64) -> String {
    use custos_types::calendar::{DAY_MS, days_from_civil};
    if (days_from_civil(1, 1, 1) * DAY_MS..days_from_civil(10_000, 1, 1) * DAY_MS).contains(&ms) {
        custos_types::calendar::rfc3339(ms)
    } else {
        "-".to_owned()
    }
}

/// The configured sinks, with their connections.
pub struct Sinks {
    syslog: Option<SyslogSink>,
    https: Option<HttpsSink>,
}

impl Sinks {
    /// The sinks of `config` (reads its CA and token files); `None` when none is
    /// configured.
    pub fn new(config: &ExportConfig) -> Result<Option<Sinks>, String> {
        if config.syslog.is_none() && config.https.is_none() {
            return Ok(None);
        }
        config.validate()?;
        Ok(Some(Sinks {
            syslog: config.syslog.as_ref().map(SyslogSink::new).transpose()?,
            https: config.https.as_ref().map(HttpsSink::new).transpose()?,
        }))
    }

    /// Sends `events` to every sink; Ok once every one took them all.
    pub async fn send(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        if let Some(syslog) = &mut self.syslog {
            syslog.send(events).await?;
        }
        if let Some(https) = &self.https {
            https.send(events).await?;
        }
        Ok(())
    }

    /// Ends the syslog connection with TLS's close_notify, so the receiver sees an
    /// orderly end rather than a truncation (RFC 8446 §6.1; RFC 5425 §4.4 closes the
    /// session the same way).
    pub async fn close(&mut self) {
        if let Some(mut connection) = self.syslog.as_mut().and_then(|s| s.connection.take()) {
            let closed = tokio::time::timeout(SINK_TIMEOUT, connection.shutdown()).await;
            tracing::debug!(
                orderly = matches!(closed, Ok(Ok(()))),
                "export: the syslog connection closed"
            );
        }
    }
}

struct SyslogSink {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    hostname: String,
    connector: TlsConnector,
    connection: Option<TlsStream<TcpStream>>,
}

impl SyslogSink {
    fn new(config: &SyslogConfig) -> Result<SyslogSink, String> {
        let (host, port) = split_address(&config.address)?;
        let name = config.server_name.as_deref().unwrap_or(&host).trim();
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| "export.syslog.server_name is not a DNS name or IP address".to_owned())?;
        let mut roots = rustls::RootCertStore::empty();
        let unreadable = |e: rustls_pki_types::pem::Error| {
            format!(
                "export.syslog.ca_file {} cannot be read as PEM certificates ({e})",
                config.ca_file.display()
            )
        };
        for cert in CertificateDer::pem_file_iter(&config.ca_file).map_err(unreadable)? {
            roots
                .add(cert.map_err(unreadable)?)
                .map_err(|_| "export.syslog.ca_file holds a certificate rustls refuses")?;
        }
        if roots.is_empty() {
            return Err("export.syslog.ca_file holds no certificate".into());
        }
        // The provider named here, not the process default: two providers in one build
        // leave no default (docs: DEPENDENCIES pitfall 2).
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| "export.syslog: no TLS version available".to_owned())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(SyslogSink {
            host,
            port,
            server_name,
            hostname: config.hostname.clone().unwrap_or_else(|| APP_NAME.into()),
            connector: TlsConnector::from(Arc::new(tls)),
            connection: None,
        })
    }

    async fn connect(&self) -> Result<TlsStream<TcpStream>, SinkError> {
        let err = |code| SinkError::new("syslog", code);
        let tcp = tokio::time::timeout(
            SINK_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| err("timeout"))?
        .map_err(|_| err("connect_failed"))?;
        let _ = tcp.set_nodelay(true);
        tokio::time::timeout(
            SINK_TIMEOUT,
            self.connector.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| err("timeout"))?
        .map_err(|_| err("tls_failed"))
    }

    async fn send(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let mut frames = Vec::with_capacity(events.iter().map(|e| e.json.len() + 96).sum());
        for event in events {
            syslog_frame(&mut frames, &self.hostname, event);
        }
        if let Some(connection) = &mut self.connection
            && !still_open(connection).await
        {
            self.connection = None;
        }
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let written = tokio::time::timeout(SINK_TIMEOUT, async {
            connection.write_all(&frames).await?;
            connection.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.connection = Some(connection);
                Ok(())
            }
            Ok(Err(_)) => Err(SinkError::new("syslog", "send_failed")),
            Err(_) => Err(SinkError::new("syslog", "timeout")),
        }
    }
}

/// Whether the receiver has left `connection` open. A syslog receiver never writes, so
/// anything readable (an end of stream, a TLS alert, an error) means it is closed.
async fn still_open(connection: &mut TlsStream<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    // `timeout` polls the read once before it looks at the deadline: a closed
    // connection answers at once, an open one would wait.
    tokio::time::timeout(Duration::ZERO, connection.read(&mut byte))
        .await
        .is_err()
}

struct HttpsSink {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<Zeroizing<String>>,
}

impl HttpsSink {
    fn new(config: &HttpsExportConfig) -> Result<HttpsSink, String> {
        let url = custos_detector::webhook::https_or_loopback("export.https.url", &config.url)?;
        let mut builder = reqwest::Client::builder()
            .timeout(SINK_TIMEOUT)
            // A redirect could lead from https to plain http elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "export.https.ca_file {} cannot be read: {}",
                    path.display(),
                    e.kind()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| "export.https.ca_file holds no PEM certificate".to_owned())?;
            if certs.is_empty() {
                return Err("export.https.ca_file holds no PEM certificate".into());
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let token = config
            .token_file
            .as_ref()
            .map(|path| {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "export.https.token_file {} cannot be read: {}",
                        path.display(),
                        e.kind()
                    )
                })?);
                let token = text.trim();
                if token.is_empty() || !token.bytes().all(|b| (33..=126).contains(&b)) {
                    return Err(
                        "export.https.token_file must hold one token of printable characters"
                            .to_owned(),
                    );
                }
                Ok(Zeroizing::new(token.to_owned()))
            })
            .transpose()?;
        let client = builder
            .build()
            .map_err(|_| "export.https: cannot set up the HTTPS client".to_owned())?;
        Ok(HttpsSink { client, url, token })
    }

    async fn send(&self, events: &[Event]) -> Result<(), SinkError> {
        let mut body =
            Vec::with_capacity(events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event.json.as_bytes());
        }
        body.push(b']');
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.as_str());
        }
        let answer = request.send().await.map_err(|e| {
            SinkError::new(
                "https",
                if e.is_timeout() {
                    "timeout"
                } else {
                    "send_failed"
                },
            )
        })?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(SinkError {
                sink: "https",
                code: "rejected",
                status: Some(answer.status().as_u16()),
            })
        }
    }
}

/// One round's batch: the events, and how to record that they went.
struct Batch {
    from: u64,
    entries: u64,
    alert_ids: Vec<String>,
    events: Vec<Event>,
}

/// Reads the next batch from the cursor: alerts not yet sent and ledger entries from the
/// cursor on; waits up to [`POLL`] for a ledger entry when there is nothing to send.
/// `None` when the ledger has shut down.
async fn next_batch(
    access: &AccessLog,
    store: &Store,
    batch: u32,
) -> Result<Option<Batch>, String> {
    let from = store
        .consumer_cursor(EXPORT)
        .await
        .map_err(|e| e.to_string())?;
    if from > access.size() {
        return Err(format!(
            "the export's cursor ({from}) is ahead of the ledger ({} entries); the ledger directory does not belong to this store",
            access.size()
        ));
    }
    let alerts = store
        .unexported_alerts(batch)
        .await
        .map_err(|e| e.to_string())?;
    let max = usize::try_from(batch).unwrap_or(500);
    let records = if alerts.is_empty() {
        let mut subscription = access.subscribe(from);
        match tokio::time::timeout(POLL, subscription.next_batch(max)).await {
            Ok(Some(read)) => read.map_err(|e| e.to_string())?,
            Ok(None) => return Ok(None),
            Err(_) => Vec::new(),
        }
    } else if access.size() > from {
        access.entries(from, max).await.map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let mut events: Vec<Event> = records.iter().map(Event::of_entry).collect();
    events.extend(alerts.iter().map(Event::of_alert));
    Ok(Some(Batch {
        from,
        entries: records.len() as u64,
        alert_ids: alerts.into_iter().map(|a| a.id).collect(),
        events,
    }))
}

impl crate::App {
    /// Starts the export in the background to `sinks` (`[export]`'s, when it names any;
    /// module docs).
    pub(crate) fn start_export(self: &Arc<Self>, sinks: Option<Sinks>) {
        let Some(sinks) = sinks else {
            return;
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(
            self.access.clone(),
            self.store.clone(),
            sinks,
            self.config.export.batch,
            stopped,
        ));
        *self
            .export_task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((task, stop));
        tracing::info!("the SIEM export is on");
    }
}

/// Runs the export until the ledger shuts down or `stop` turns true (module docs); then
/// ends the sinks' connections. A round in flight finishes first, so no frame is cut.
pub(crate) async fn run(
    access: AccessLog,
    store: Store,
    mut sinks: Sinks,
    batch: u32,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = RETRY_FIRST;
    while !*stop.borrow() {
        match round(&access, &store, &mut sinks, batch).await {
            Ok(Some(_)) => backoff = RETRY_FIRST,
            // The ledger has shut down: the server is stopping.
            Ok(None) => break,
            Err(_) => {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
    sinks.close().await;
}

/// One round of the export (module docs): reads a batch from the cursor, sends it to
/// every sink, then moves the cursor and marks the alerts sent. Answers how many events
/// went (0 after waiting [`POLL`] with nothing to send), `None` once the ledger has shut
/// down, or the stable code of a failure (already counted and logged).
pub async fn round(
    access: &AccessLog,
    store: &Store,
    sinks: &mut Sinks,
    batch: u32,
) -> Result<Option<usize>, &'static str> {
    let Some(round) = next_batch(access, store, batch).await.map_err(|e| {
        metrics::counter!("custos_export_failures_total", "sink" => "store", "code" => "read_failed")
            .increment(1);
        tracing::error!(error = %e, "export cannot read the ledger or the store");
        "read_failed"
    })?
    else {
        return Ok(None);
    };
    sinks.send(&round.events).await.map_err(|e| {
        tracing::warn!(
            sink = e.sink,
            code = e.code,
            status = e.status,
            "export batch not taken; it will be sent again"
        );
        metrics::counter!("custos_export_failures_total", "sink" => e.sink, "code" => e.code)
            .increment(1);
        e.code
    })?;
    let stored = async {
        let ids: Vec<&str> = round.alert_ids.iter().map(String::as_str).collect();
        // Alerts first: were the cursor stored first and the alerts' mark then lost,
        // nothing would resend them; this way a loss only resends.
        store.mark_alerts_exported(&ids, now_millis()).await?;
        let to = round.from + round.entries;
        if to > round.from
            && !store
                .advance_consumer_cursor(EXPORT, round.from, to)
                .await?
        {
            tracing::debug!("another exporter moved the export cursor first");
        }
        metrics::gauge!("custos_export_lag_entries").set(access.size().saturating_sub(to) as f64);
        Ok::<(), custos_store::StoreError>(())
    };
    stored.await.map_err(|_| {
        metrics::counter!("custos_export_failures_total", "sink" => "store", "code" => "store_failed")
            .increment(1);
        tracing::error!(code = "store_failed", "export cannot record a sent batch; it will be sent again");
        "store_failed"
    })?;
    metrics::counter!("custos_export_events_total", "source" => "ledger").increment(round.entries);
    metrics::counter!("custos_export_events_total", "source" => "alerts")
        .increment(round.alert_ids.len() as u64);
    Ok(Some(round.events.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_counted_in_octets_and_rfc_5424() {
        let event = Event {
            json: r#"{"class_uid":6003,"x":"é"}"#.into(),
            time: 1_764_870_000_123,
            severity_id: 3,
            class_uid: 6003,
        };
        let mut out = Vec::new();
        syslog_frame(&mut out, "node1", &event);
        let text = String::from_utf8(out).unwrap();
        let (len, message) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        assert_eq!(
            message,
            r#"<108>1 2025-12-04T17:40:00.123Z node1 custos - ocsf.6003 - {"class_uid":6003,"x":"é"}"#
        );
        assert_eq!(rfc3339(-62_200_000_000_000), "-");
    }

    #[test]
    fn settings_are_checked_without_echoing_a_url() {
        let mut config = ExportConfig {
            https: Some(HttpsExportConfig {
                url: "http://siem.example.com/?token=secret".into(),
                ca_file: None,
                token_file: None,
            }),
            ..ExportConfig::default()
        };
        let e = config.validate().unwrap_err();
        assert!(
            e.contains("export.https.url") && !e.contains("secret"),
            "{e}"
        );
        config.https = None;
        config.syslog = Some(SyslogConfig {
            address: "siem.example.com".into(),
            ca_file: "/nonexistent".into(),
            server_name: None,
            hostname: None,
        });
        assert!(config.validate().unwrap_err().contains("host:port"));
        config.syslog.as_mut().unwrap().address = "[::1]:6514".into();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(split_address("[::1]:6514").unwrap(), ("::1".into(), 6514));
        config.batch = 0;
        assert!(config.validate().is_err());
    }
}
