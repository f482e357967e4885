//! The relays of reveal-free contact: the privacy-number pool, the company's SMTP relay
//! and its SMS gateway (configuration `[relay]`, `[relay.email]`, `[relay.sms]`).
//!
//! Custos fills in the customer's address or number itself, so the agent never sees
//! it. Whatever goes wrong on the way, the caller gets `relay_failed` with a fixed
//! message, and the log gets the kind of failure and the upstream's status code only:
//! SMTP servers echo recipients, and a gateway's error text may quote the number.

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Code, ErrorKind, ServiceError};

/// How long one delivery to the SMTP relay or the SMS gateway may take.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Request header of an SMS delivery: the unix time (seconds) it was signed at.
pub const SMS_TIMESTAMP_HEADER: &str = "x-custos-timestamp";

/// Request header of an SMS delivery: `sha256=<hex HMAC-SHA256(secret, timestamp + "."
/// + body)>`.
pub const SMS_SIGNATURE_HEADER: &str = "x-custos-signature";

/// The relays (section `[relay]`); each is off until configured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// The privacy-number pool, E.164 (`+8610…`): numbers of the company's PBX that
    /// Custos binds to an agent and a customer for the life of a case. Empty: no calls.
    pub numbers: Vec<String>,
    /// The company's SMTP relay (`[relay.email]`).
    pub email: Option<EmailRelayConfig>,
    /// The company's SMS gateway (`[relay.sms]`).
    pub sms: Option<SmsRelayConfig>,
}

/// The SMTP relay emails go through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRelayConfig {
    /// Host name of the relay.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The sender, e.g. `Example Support <support@example.com>`.
    pub from: String,
    /// `none` (plain SMTP: a relay on a trusted network only), `starttls` or `tls`
    /// (implicit TLS, as on port 465).
    pub tls: SmtpTls,
}

/// How the connection to the SMTP relay is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// The SMS gateway's webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRelayConfig {
    /// Where each SMS is POSTed: `https://…`, or `http://…` for a loopback host only.
    pub url: String,
    /// A file holding the secret the requests are signed with (read at start; blanks
    /// around it are ignored).
    pub secret_file: PathBuf,
}

/// Whether `number` is in E.164 form: `+`, a country code not starting with 0, at most
/// 15 digits in all.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

impl RelayConfig {
    /// Checks what can be checked without the network or the disk.
    pub fn validate(&self) -> Result<(), String> {
        for (i, number) in self.numbers.iter().enumerate() {
            if !is_e164(number) {
                return Err(format!(
                    "relay.numbers[{i}] must be an E.164 number (+ and 2 to 15 digits)"
                ));
            }
            if self.numbers[..i].contains(number) {
                return Err(format!("relay.numbers[{i}] is listed twice"));
            }
        }
        if let Some(email) = &self.email {
            if email.host.trim().is_empty() {
                return Err("relay.email.host must not be empty".into());
            }
            if email.port == 0 {
                return Err("relay.email.port must be from 1 to 65535".into());
            }
            email.from.parse::<Mailbox>().map_err(|_| {
                "relay.email.from must be a mailbox such as \"Support <support@example.com>\""
                    .to_owned()
            })?;
        }
        if let Some(sms) = &self.sms {
            custos_detector::webhook::https_or_loopback("relay.sms.url", &sms.url)?;
        }
        Ok(())
    }
}

/// The relays as configured, ready to send.
pub(crate) struct Relays {
    numbers: Vec<String>,
    email: Option<EmailRelay>,
    sms: Option<SmsRelay>,
}

struct EmailRelay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

struct SmsRelay {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Zeroizing<Vec<u8>>,
}

/// The answer to a relay that failed: never the address, the number or the
/// upstream's words.
fn failed(channel: &str, why: &str, status: Option<u16>) -> ServiceError {
    tracing::warn!(channel, why, status, "relay failed");
    metrics::counter!("custos_relay_failures_total", "channel" => channel.to_owned()).increment(1);
    ServiceError::new(
        ErrorKind::BadGateway,
        Code::RelayFailed,
        format!(
            "the {channel} relay did not take the message; nothing says it reached the customer (try again later)"
        ),
    )
}

impl Relays {
    /// The relays of `config` (validated); reads the SMS secret.
    pub(crate) fn new(config: &RelayConfig) -> Result<Relays, String> {
        config.validate()?;
        let email = config
            .email
            .as_ref()
            .map(|c| {
                let builder = match c.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.trim())
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(c.host.trim())
                            .map_err(|_| "relay.email: cannot set up STARTTLS".to_owned())?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(c.host.trim())
                        .map_err(|_| "relay.email: cannot set up TLS".to_owned())?,
                };
                Ok::<_, String>(EmailRelay {
                    transport: builder.port(c.port).timeout(Some(RELAY_TIMEOUT)).build(),
                    from: c
                        .from
                        .parse()
                        .map_err(|_| "relay.email.from is not a mailbox".to_owned())?,
                })
            })
            .transpose()?;
        let sms = config
            .sms
            .as_ref()
            .map(|c| {
                let url = custos_detector::webhook::https_or_loopback("relay.sms.url", &c.url)?;
                let secret = std::fs::read_to_string(&c.secret_file).map_err(|e| {
                    format!(
                        "relay.sms.secret_file {} cannot be read: {}",
                        c.secret_file.display(),
                        e.kind()
                    )
                })?;
                let secret = Zeroizing::new(secret.trim().as_bytes().to_vec());
                if secret.len() < 16 {
                    return Err("relay.sms.secret_file must hold at least 16 bytes".to_owned());
                }
                let client = reqwest::Client::builder()
                    .timeout(RELAY_TIMEOUT)
                    // A redirect could lead from https to plain http elsewhere.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the SMS client: {e}"))?;
                Ok(SmsRelay {
                    client,
                    url,
                    secret,
                })
            })
            .transpose()?;
        Ok(Relays {
            numbers: config.numbers.clone(),
            email,
            sms,
        })
    }

    /// Whether the relay of `channel` is configured.
    pub(crate) fn configured(&self, channel: custos_types::ContactChannel) -> bool {
        match channel {
            custos_types::ContactChannel::Call => !self.numbers.is_empty(),
            custos_types::ContactChannel::Email => self.email.is_some(),
            custos_types::ContactChannel::Sms => self.sms.is_some(),
        }
    }

    /// The pool, in configured order.
    pub(crate) fn numbers(&self) -> &[String] {
        &self.numbers
    }

    /// Sends a plain-text email to `to` through the SMTP relay.
    pub(crate) async fn send_email(
        &self,
        to: &str,
        subject: &str,
        text: &str,
    ) -> Result<(), ServiceError> {
        let relay = self.email.as_ref().ok_or_else(not_configured)?;
        let to = to
            .parse::<lettre::Address>()
            .map_err(|_| failed("email", "the stored address is not one SMTP takes", None))?;
        let message = Message::builder()
            .from(relay.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject.trim())
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|_| failed("email", "the message could not be built", None))?;
        relay.transport.send(message).await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_permanent() {
                "refused (permanent)"
            } else if e.is_transient() {
                "refused (transient)"
            } else {
                "could not deliver"
            };
            failed("email", why, e.status().map(u16::from))
        })?;
        Ok(())
    }

    /// POSTs an SMS to the gateway, signed: `{to, text, id}` with `id` the request's.
    pub(crate) async fn send_sms(
        &self,
        to: &str,
        text: &str,
        id: &str,
    ) -> Result<(), ServiceError> {
        let relay = self.sms.as_ref().ok_or_else(not_configured)?;
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({"to": to, "text": text, "id": id}))
                .map_err(|_| ServiceError::internal())?,
        );
        let timestamp = (custos_types::clock::now_millis() / 1000).to_string();
        let signature = sign(&relay.secret, &timestamp, &body);
        let response = relay
            .client
            .post(relay.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SMS_TIMESTAMP_HEADER, &timestamp)
            .header(SMS_SIGNATURE_HEADER, format!("sha256={signature}"))
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "could not deliver"
                };
                failed("sms", why, None)
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(failed("sms", "refused", Some(status.as_u16())))
        }
    }
}

/// `hex(HMAC-SHA256(secret, timestamp + "." + body))`: what `X-Custos-Signature`
/// carries after `sha256=`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The answer for a channel whose relay is not configured.
pub(crate) fn not_configured() -> ServiceError {
    ServiceError::new(
        ErrorKind::Conflict,
        Code::RelayNotConfigured,
        "this channel's relay is not configured on this server (see [relay] in the configuration)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_numbers_are_e164_and_listed_once() {
        for ok in ["+8610000001", "+12", "+123456789012345"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "8610000001",
            "+0123",
            "+1",
            "+1234567890123456",
            "+86 10",
            "+86-10",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
        let mut config = RelayConfig {
            numbers: vec!["+8610000001".into(), "+8610000002".into()],
            ..RelayConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        config.numbers.push("+8610000001".into());
        assert!(config.validate().unwrap_err().contains("relay.numbers[2]"));
        config.numbers = vec!["010 0000 0001".into()];
        assert!(config.validate().unwrap_err().contains("E.164"));
    }

    #[test]
    fn sms_goes_over_https_or_to_loopback_and_email_needs_a_mailbox() {
        let sms = |url: &str| RelayConfig {
            sms: Some(SmsRelayConfig {
                url: url.into(),
                secret_file: "/nonexistent".into(),
            }),
            ..RelayConfig::default()
        };
        assert_eq!(sms("https://sms.example.com/send").validate(), Ok(()));
        assert_eq!(sms("http://127.0.0.1:9000/send").validate(), Ok(()));
        let e = sms("http://sms.example.com/send").validate().unwrap_err();
        assert!(e.contains("relay.sms.url must use https"), "{e}");
        let e = Relays::new(&sms("https://sms.example.com/send"))
            .err()
            .unwrap();
        assert!(e.contains("relay.sms.secret_file"), "{e}");
        let email = |from: &str| RelayConfig {
            email: Some(EmailRelayConfig {
                host: "smtp.example.com".into(),
                port: 587,
                from: from.into(),
                tls: SmtpTls::Starttls,
            }),
            ..RelayConfig::default()
        };
        assert_eq!(email("Support <support@example.com>").validate(), Ok(()));
        assert!(
            email("not a mailbox")
                .validate()
                .unwrap_err()
                .contains("relay.email.from")
        );
    }

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // Checked against Python's hmac module.
        assert_eq!(
            sign(
                b"0123456789abcdef",
                "1700000000",
                br#"{"to":"+8613800138000"}"#
            ),
            "fb9eaff619f3fdd7559b9d16c32f6f87b6867f445234531e5f46724ed8da456d"
        );
    }
}
