//! Gateway configuration: a TOML file, every key overridable by `CUSTOS_...` environment
//! variables (nested keys joined by `__`, e.g. `CUSTOS_QUOTA__SUPPORT__REVEALS_PER_HOUR=5`).

use custos_types::Role;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything the gateway reads from configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The organisation that runs Custos; staff of any other org are partner staff.
    pub company_org: String,
    /// Region used to read phone numbers written without a country code (ISO 3166 alpha-2).
    pub default_region: String,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Largest accepted NDJSON import body, and leaked file to trace, in bytes.
    pub import_limit_bytes: usize,
    /// Most results a search returns.
    pub search_limit: u32,
    /// Harvest ceilings per role; a role without an entry uses `default`, if present.
    pub quota: BTreeMap<String, Quota>,
    /// The ledger's origin: the first line of its checkpoints and the name in its key.
    pub ledger_origin: String,
    /// Verifier keys of witnesses whose cosignatures on checkpoints are accepted
    /// (C2SP signed-note verifier keys of type `cosignature/v1`).
    pub ledger_witnesses: Vec<String>,
    /// The detector: working hours, score weights and the thresholds of its actions.
    pub detector: custos_detector::ModelConfig,
    /// What the detector's restrictions (`risk_lower_quota`, `risk_step_up`) impose.
    pub restrictions: Restrictions,
    /// Where the detector delivers alerts besides the store (`webhook_url`,
    /// `webhook_timeout_ms`).
    pub alerts: custos_detector::AlertsConfig,
    /// The web console's sessions (`[console]`).
    #[serde(default)]
    pub console: ConsoleConfig,
    /// How long the access index and the console's rows are kept (`[retention]`).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Canary allocation (`[canaries]`).
    #[serde(default)]
    pub canaries: CanaryConfig,
    /// Contacts the contact centre reports (`[contacts]`).
    #[serde(default)]
    pub contacts: ContactsConfig,
    /// Break-glass access (`[break_glass]`).
    #[serde(default)]
    pub break_glass: BreakGlassConfig,
    /// The relays of reveal-free contact (`[relay]`, `[relay.email]`, `[relay.sms]`).
    #[serde(default)]
    pub relay: crate::relay::RelayConfig,
    /// Access tokens of the company's identity provider, accepted beside local tokens
    /// (`[idp]`).
    #[serde(default)]
    pub idp: Option<crate::idp::IdpConfig>,
    /// Provisioning from the identity provider (`[scim]`): which groups give which role.
    #[serde(default)]
    pub scim: ScimConfig,
    /// Where the key-encryption keys live (`[keys]`): the master key file, or a PKCS#11
    /// token; the cache of unwrapped data keys.
    #[serde(default)]
    pub keys: KeysConfig,
    /// The SIEM export of every ledger entry and alert as OCSF events (`[export]`,
    /// `[export.syslog]`, `[export.https]`).
    #[serde(default)]
    pub export: crate::export::ExportConfig,
    /// Integration principals that authenticate with a client certificate over mutual
    /// TLS (`[mtls]`): staff id → the SHA-256 fingerprints (hex) of the certificates
    /// it may present. Such a principal is served only over a connection that presented
    /// one of them, with or without its token.
    #[serde(default)]
    pub mtls: BTreeMap<String, Vec<String>>,
    /// Whether the server itself speaks TLS (`custos serve --tls-cert`). Never read from
    /// a file or the environment.
    #[serde(skip)]
    pub tls: bool,
    /// Whether requests may set their own time (`custos serve --simulated-clock`, for
    /// simulators and red teams). Never read from a file or the environment.
    #[serde(skip)]
    pub simulated_clock: bool,
}

/// Harvest ceilings for one role. An absent limit is not enforced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Distinct customers viewed or revealed in any 24 hours.
    pub customers_per_day: Option<u32>,
    /// Field reveals in any hour (each revealed field counts one).
    pub reveals_per_hour: Option<u32>,
    /// Searches in any 24 hours.
    pub searches_per_day: Option<u32>,
}

/// The web console's sessions (section `[console]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session ends after this many minutes without a request (default 15).
    pub idle_minutes: u32,
    /// A session ends this many hours after sign-in whatever happens (default 12).
    pub max_hours: u32,
    /// Marks the session cookie `Secure`, so it never travels in clear. Default: on when
    /// `custos serve` speaks TLS itself; set it to true behind a TLS-terminating proxy.
    pub secure_cookie: Option<bool>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            idle_minutes: 15,
            max_hours: 12,
            secure_cookie: None,
        }
    }
}

/// Break-glass access (section `[break_glass]`): taken at once with a written reason,
/// alerted at once, and rationed per person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakGlassConfig {
    /// How long a break-glass grant holds (minutes; default 15).
    pub minutes: u32,
    /// How many break-glasses one person may take in any 30 days (default 2; 0 turns
    /// break-glass off).
    pub per_30_days: u32,
}

impl Default for BreakGlassConfig {
    fn default() -> Self {
        BreakGlassConfig {
            minutes: 15,
            per_30_days: 2,
        }
    }
}

/// Contacts the contact centre reports (section `[contacts]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactsConfig {
    /// How long after a contact a case may still be opened on it, and how far back the
    /// contact centre may date one (minutes; default 720, 12 hours).
    pub max_age_minutes: u32,
    /// How the customer app's signed assertions are checked
    /// (`[contacts.app_assertion]`); without it, contacts identified by one are refused.
    pub app_assertion: Option<crate::app_assertion::AppAssertionConfig>,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        ContactsConfig {
            max_age_minutes: 720,
            app_assertion: None,
        }
    }
}

impl ContactsConfig {
    /// [`ContactsConfig::max_age_minutes`] in milliseconds.
    pub fn max_age_ms(&self) -> i64 {
        i64::from(self.max_age_minutes) * 60_000
    }
}

/// Canary allocation (section `[canaries]`): with a rate above 0, each case the CRM
/// opens for a person is followed, with that chance, by a case Custos opens for them on a
/// canary allocated to them alone among their peers (same organisation and role).
/// `crate::allocation` has the details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanaryConfig {
    /// The chance per case opened for a person (0 to 1; 0, the default, allocates
    /// nothing). Each allocation puts one more case on a person's queue: 0.05 adds one
    /// for every twenty, 1 doubles every queue.
    pub allocation_rate: f64,
    /// The chance instead for a case the person asked the CRM for themselves
    /// (`requested_by` is the assignee), if higher: the one way to reach a customer no
    /// contact brought, so the way a harvest goes (0 to 1; default 0).
    pub allocation_rate_self_requested: f64,
    /// The reasons an allocated canary's case shows, one drawn at random; they should
    /// read like the reasons the CRM writes (1 to 500 characters each).
    pub case_reasons: Vec<String>,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            allocation_rate: 0.0,
            allocation_rate_self_requested: 0.0,
            case_reasons: [
                "Customer asked to be called back",
                "Follow-up on an earlier contact",
                "Confirm the customer's contact details",
                "Question about a recent order",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// What the detector's restrictions impose (section `[restrictions]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Restrictions {
    /// Under a lowered quota, the share of each ceiling left (rounded down): 0.25 is a
    /// quarter of every limit, 0 leaves nothing.
    pub lower_quota_share: f64,
}

impl Default for Restrictions {
    fn default() -> Self {
        Restrictions {
            lower_quota_share: 0.25,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let agent = Quota {
            customers_per_day: Some(80),
            reveals_per_hour: Some(20),
            searches_per_day: Some(200),
        };
        let quota = BTreeMap::from([
            (Role::Support.as_str().to_owned(), agent.clone()),
            (Role::Sales.as_str().to_owned(), agent.clone()),
            (
                Role::TeamLead.as_str().to_owned(),
                Quota {
                    customers_per_day: Some(150),
                    reveals_per_hour: Some(40),
                    searches_per_day: Some(400),
                },
            ),
            // Roles without their own entry (admin, analyst, integration) still get a
            // ceiling: a missing entry must not mean unlimited access.
            ("default".to_owned(), agent),
        ]);
        Config {
            company_org: "custos".to_owned(),
            default_region: "CN".to_owned(),
            body_limit_bytes: 64 * 1024,
            import_limit_bytes: 64 * 1024 * 1024,
            search_limit: 20,
            quota,
            ledger_origin: "custos.local/ledger".to_owned(),
            ledger_witnesses: Vec::new(),
            detector: custos_detector::ModelConfig::default(),
            restrictions: Restrictions::default(),
            console: ConsoleConfig::default(),
            retention: RetentionConfig::default(),
            canaries: CanaryConfig::default(),
            contacts: ContactsConfig::default(),
            break_glass: BreakGlassConfig::default(),
            relay: crate::relay::RelayConfig::default(),
            alerts: custos_detector::AlertsConfig::default(),
            idp: None,
            scim: ScimConfig::default(),
            keys: KeysConfig::default(),
            export: crate::export::ExportConfig::default(),
            mtls: BTreeMap::new(),
            tls: false,
            simulated_clock: false,
        }
    }
}

/// Configuration that could not be read; the message names the key or file.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "config_invalid"
    }
}

impl Config {
    /// Defaults, then the TOML file (if given), then `CUSTOS_` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let toml = match file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError(format!(
                    "{} is not a readable file",
                    path.display()
                )));
            }
            Some(path) => Some(Toml::file_exact(path)),
            None => None,
        };
        Config::layered(toml)
    }

    /// [`Config::load`] with the file's text given rather than read: defaults, then
    /// `toml`, then `CUSTOS_` environment variables (what the fuzz target calls).
    pub fn from_toml(toml: &str) -> Result<Config, ConfigError> {
        Config::layered(Some(Toml::string(toml)))
    }

    /// Defaults, then `toml`, then the environment; validated.
    fn layered(toml: Option<figment::providers::Data<Toml>>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(toml) = toml {
            figment = figment.merge(toml);
        }
        figment = figment.merge(Env::prefixed("CUSTOS_").split("__").filter(|k| {
            // CUSTOS_ variables that are command-line options, not configuration keys.
            // Keys keep the variable's case, so compare without it.
            !matches!(
                k.as_str().to_ascii_lowercase().as_str(),
                "data_dir"
                    | "listen"
                    | "config"
                    | "policies"
                    | "database_url"
                    | "log_format"
                    | "log"
                    | "token"
            )
        }));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Whether the console's session cookie is `Secure`.
    pub fn secure_cookie(&self) -> bool {
        self.console.secure_cookie.unwrap_or(self.tls)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (staff, pins) in &self.mtls {
            if pins.is_empty() {
                return Err(ConfigError(format!(
                    "mtls.{staff} names no certificate fingerprint"
                )));
            }
            if let Some(bad) = pins.iter().find(|pin| {
                crate::client_certificate::ClientCertificate::parse_fingerprint(pin).is_none()
            }) {
                return Err(ConfigError(format!(
                    "mtls.{staff}: {bad:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
                )));
            }
        }
        if self.company_org.trim().is_empty() {
            return Err(ConfigError("company_org must not be empty".into()));
        }
        if self
            .default_region
            .parse::<phonenumber::country::Id>()
            .is_err()
        {
            return Err(ConfigError(format!(
                "default_region {:?} is not a known region code",
                self.default_region
            )));
        }
        // A signed-note key name: printable, no spaces and no `+` (C2SP signed-note).
        let origin_ok = !self.ledger_origin.is_empty()
            && self.ledger_origin.len() <= 255
            && self
                .ledger_origin
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '+');
        if !origin_ok {
            return Err(ConfigError(
                "ledger_origin must be 1 to 255 printable ASCII characters without spaces or '+'"
                    .into(),
            ));
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError("body_limit_bytes must be at least 1024".into()));
        }
        let share = self.restrictions.lower_quota_share;
        if !(0.0..=1.0).contains(&share) {
            return Err(ConfigError(
                "restrictions.lower_quota_share must be a number from 0 to 1".into(),
            ));
        }
        if let Some(problem) = self.retention.problem() {
            return Err(ConfigError(problem));
        }
        let console = &self.console;
        if !(1..=24 * 60).contains(&console.idle_minutes) {
            return Err(ConfigError(
                "console.idle_minutes must be from 1 to 1440".into(),
            ));
        }
        if !(1..=7 * 24).contains(&console.max_hours) {
            return Err(ConfigError(
                "console.max_hours must be from 1 to 168".into(),
            ));
        }
        if !(1..=7 * 24 * 60).contains(&self.contacts.max_age_minutes) {
            return Err(ConfigError(
                "contacts.max_age_minutes must be from 1 to 10080".into(),
            ));
        }
        if let Some(app_assertion) = &self.contacts.app_assertion {
            app_assertion.verifier_config().map_err(ConfigError)?;
        }
        if let Some(idp) = &self.idp {
            idp.verifier_config().map_err(ConfigError)?;
        }
        self.scim.validate().map_err(ConfigError)?;
        self.keys.validate().map_err(ConfigError)?;
        if !(1..=240).contains(&self.break_glass.minutes) || self.break_glass.per_30_days > 100 {
            return Err(ConfigError(
                "break_glass.minutes must be from 1 to 240 and break_glass.per_30_days from 0 to 100"
                    .into(),
            ));
        }
        let canaries = &self.canaries;
        for (key, rate) in [
            ("allocation_rate", canaries.allocation_rate),
            (
                "allocation_rate_self_requested",
                canaries.allocation_rate_self_requested,
            ),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError(format!(
                    "canaries.{key} must be a number from 0 to 1"
                )));
            }
        }
        let reasons_ok = !canaries.case_reasons.is_empty()
            && canaries
                .case_reasons
                .iter()
                .all(|r| (1..=500).contains(&r.trim().chars().count()));
        if !reasons_ok {
            return Err(ConfigError(
                "canaries.case_reasons must list at least one reason of 1 to 500 characters".into(),
            ));
        }
        self.alerts
            .validate()
            .map_err(|e| ConfigError(e.to_string()))?;
        self.relay.validate().map_err(ConfigError)?;
        self.export.validate().map_err(ConfigError)?;
        Ok(())
    }

    /// The ceilings that apply to `role`.
    pub fn quota_for(&self, role: custos_types::Role) -> Quota {
        self.quota
            .get(role.as_str())
            .or_else(|| self.quota.get("default"))
            .cloned()
            .unwrap_or_default()
    }
}

/// The roles provisioning may give: people's, never a service's.
const PERSON_ROLES: [Role; 5] = [
    Role::Support,
    Role::Sales,
    Role::TeamLead,
    Role::SecurityAnalyst,
    Role::Admin,
];

/// What provisioning from the identity provider may do (section `[scim]`; what it does is
/// `crate::provisioning`'s).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScimConfig {
    /// Group name → role (and organisation), in order: the first that names one of a
    /// person's groups gives their role.
    pub groups: Vec<GroupRole>,
    /// The address SCIM clients reach this server at, ending in `/scim/v2`, for the
    /// `location` of resources; default: from the request's `Host`.
    pub base_url: Option<String>,
}

/// One mapping of a provider's group to a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    /// The group's `displayName` at the provider (matched without regard to case).
    pub group: String,
    /// The role it gives: `support`, `sales`, `team_lead`, `security_analyst` or `admin`.
    pub role: Role,
    /// The organisation it gives (a partner company's id); default: the company's own.
    pub org: Option<String>,
}

impl ScimConfig {
    /// Checks the mapping; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (i, g) in self.groups.iter().enumerate() {
            if g.group.trim().is_empty() {
                return Err(format!("scim.groups[{i}].group must not be empty"));
            }
            if !PERSON_ROLES.contains(&g.role) {
                return Err(format!(
                    "scim.groups[{i}].role must be a person's role (support, sales, team_lead, security_analyst, admin)"
                ));
            }
            if let Some(org) = &g.org
                && crate::input::valid_id("org", org).is_err()
            {
                return Err(format!(
                    "scim.groups[{i}].org must be 1 to 64 characters of A-Z, a-z, 0-9, _ . : -"
                ));
            }
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("scim.base_url must be an http(s) URL".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrictions_and_alerts_are_checked() {
        assert!(Config::default().validate().is_ok());
        let mut config = Config::default();
        config.restrictions.lower_quota_share = 1.5;
        let e = config.validate().unwrap_err();
        assert!(e.to_string().contains("lower_quota_share"), "{e}");
        config.restrictions.lower_quota_share = 0.0;
        assert!(config.validate().is_ok());
        config.alerts.webhook_url = Some("http://alerts.example.com/hook".into());
        let e = config.validate().unwrap_err();
        assert_eq!(e.code(), "config_invalid");
        assert!(
            e.to_string().contains("alerts.webhook_url must use https"),
            "{e}"
        );
        config.alerts.webhook_url = Some("https://alerts.example.com/hook".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn console_single_sign_on_is_read_beside_idp_and_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let load = |console: &str| {
            let path = dir.path().join("custos.toml");
            std::fs::write(
                &path,
                format!(
                    "[idp]\njwks_url = \"https://login.example.com/jwks\"\nissuer = \"https://login.example.com\"\naudience = \"custos-api\"\n\n[idp.console]\n{console}"
                ),
            )
            .unwrap();
            Config::load(Some(&path))
        };
        let good = "client_id = \"custos-console\"\nclient_secret_file = \"/etc/custos/oidc.secret\"\nredirect_url = \"https://custos.example.com/signin/oidc/callback\"\n";
        let config = load(good).unwrap();
        let console = config.idp.unwrap().console.unwrap();
        assert_eq!(console.client_id, "custos-console");
        // A secret written inline is not a key of the section.
        let e = load(&format!("{good}client_secret = \"inline\"\n")).unwrap_err();
        assert!(e.to_string().contains("client_secret"), "{e}");
        let e = load("client_id = \"custos-console\"\nredirect_url = \"https://custos.example.com/signin/oidc/callback\"\n").unwrap_err();
        assert!(
            e.to_string().contains(
                "idp.console needs exactly one of client_secret_file and client_secret_env"
            ),
            "{e}"
        );
        let e = load(&good.replace("/signin/oidc/callback", "/")).unwrap_err();
        assert!(e.to_string().contains("idp.console.redirect_url"), "{e}");
    }

    #[test]
    fn a_file_and_its_text_give_the_same_configuration_or_the_same_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.toml");
        let good = "company_org = \"acme\"\ndefault_region = \"DE\"\n";
        std::fs::write(&path, good).unwrap();
        let (from_file, from_text) = (
            Config::load(Some(&path)).unwrap(),
            Config::from_toml(good).unwrap(),
        );
        assert_eq!(from_text.company_org, "acme");
        assert_eq!(from_text.default_region, "DE");
        assert_eq!(
            serde_json::to_value(&from_file).unwrap(),
            serde_json::to_value(&from_text).unwrap()
        );
        for (bad, names) in [
            ("company_org = \"\"\n", "company_org"),
            ("default_region = \"XX\"\n", "default_region"),
            ("quota = 3\n", "quota"),
        ] {
            std::fs::write(&path, bad).unwrap();
            for e in [Config::load(Some(&path)), Config::from_toml(bad)].map(Result::unwrap_err) {
                assert_eq!(e.code(), "config_invalid", "{bad}");
                assert!(e.to_string().contains(names), "{bad}: {e}");
            }
        }
    }

    #[test]
    fn retention_keeps_three_years_unless_the_operator_decides_otherwise() {
        let mut config = Config::default();
        assert_eq!(config.retention.access_index_days, 1095);
        assert!(config.validate().is_ok());
        config.retention.access_index_days = 365;
        let e = config.validate().unwrap_err();
        assert!(e.to_string().contains("retention.access_index_days"), "{e}");
        config.retention.allow_below_legal_minimum = true;
        assert!(config.validate().is_ok());
        config.retention.console_days = 7;
        let e = config.validate().unwrap_err();
        assert!(e.to_string().contains("at least 31 days"), "{e}");
        config.retention.console_days = 31;
        config.retention.interval_hours = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn console_sessions_cannot_be_endless_or_instant() {
        let mut config = Config::default();
        config.console.idle_minutes = 0;
        let e = config.validate().unwrap_err();
        assert!(e.to_string().contains("console.idle_minutes"), "{e}");
        config.console.idle_minutes = 30;
        config.console.max_hours = 24 * 365;
        let e = config.validate().unwrap_err();
        assert!(e.to_string().contains("console.max_hours"), "{e}");
        config.console.max_hours = 8;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn canary_allocation_is_bounded_and_needs_reasons() {
        let mut config = Config::default();
        assert_eq!(config.canaries.allocation_rate, 0.0, "off unless asked for");
        for rate in [-0.1, 1.5, f64::NAN] {
            config.canaries.allocation_rate = rate;
            let e = config.validate().unwrap_err();
            assert!(e.to_string().contains("canaries.allocation_rate"), "{e}");
        }
        config.canaries.allocation_rate = 0.1;
        assert!(config.validate().is_ok());
        config.canaries.allocation_rate_self_requested = 1.01;
        let e = config.validate().unwrap_err();
        assert!(
            e.to_string().contains("allocation_rate_self_requested"),
            "{e}"
        );
        config.canaries.allocation_rate_self_requested = 0.3;
        assert!(config.validate().is_ok());
        for reasons in [vec![], vec!["  ".to_owned()], vec!["x".repeat(501)]] {
            config.canaries.case_reasons = reasons;
            let e = config.validate().unwrap_err();
            assert!(e.to_string().contains("canaries.case_reasons"), "{e}");
        }
    }
}

/// Three years, the PIPL's minimum for handling records: the default limits and the
/// least allowed without `allow_below_legal_minimum`.
pub const LEGAL_MINIMUM_DAYS: u32 = 3 * 365;
/// The least any limit may be (break-glass rations count the last 30 days of records).
pub const ABSOLUTE_MINIMUM_DAYS: u32 = 31;
/// What is kept how long (section `[retention]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days the access index (and leak tracing's summary of it) keeps a record (default
    /// 1095).
    pub access_index_days: u32,
    /// Days a console session is kept after its last use (default 1095; sessions end
    /// much sooner, see `[console]`, so this bounds what a crash could leave).
    pub console_days: u32,
    /// Hours between runs (1 to 8760; default 24).
    pub interval_hours: u32,
    /// Allows limits under three years (down to 31 days) where the law the company
    /// answers to allows it.
    pub allow_below_legal_minimum: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            access_index_days: LEGAL_MINIMUM_DAYS,
            console_days: LEGAL_MINIMUM_DAYS,
            interval_hours: 24,
            allow_below_legal_minimum: false,
        }
    }
}

impl RetentionConfig {
    /// Why this configuration is refused, if it is.
    pub(crate) fn problem(&self) -> Option<String> {
        let floor = if self.allow_below_legal_minimum {
            ABSOLUTE_MINIMUM_DAYS
        } else {
            LEGAL_MINIMUM_DAYS
        };
        for (key, days) in [
            ("access_index_days", self.access_index_days),
            ("console_days", self.console_days),
        ] {
            if days < floor {
                return Some(if self.allow_below_legal_minimum {
                    format!("retention.{key} must be at least {ABSOLUTE_MINIMUM_DAYS} days")
                } else {
                    format!(
                        "retention.{key} must be at least {LEGAL_MINIMUM_DAYS} days (three years, the PIPL's minimum for handling records); set retention.allow_below_legal_minimum = true to go lower"
                    )
                });
            }
        }
        if !(1..=24 * 365).contains(&self.interval_hours) {
            return Some("retention.interval_hours must be from 1 to 8760".into());
        }
        None
    }
}

/// Customers re-wrapped per transaction and per ledger entry during a key rotation, by
/// default.
pub const BATCH: u32 = 500;

/// `[keys]`: where the KEKs live, and the cache of unwrapped data keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// `file` (derived from the master key file) or `pkcs11` (`[keys.pkcs11]`).
    pub provider: ProviderName,
    /// The PKCS#11 token, for `provider = "pkcs11"`.
    pub pkcs11: Option<Pkcs11Config>,
    /// Unwrapped data keys kept in memory with a token (each saves a token call).
    pub cache_keys: usize,
    /// How long an unwrapped data key may stay cached, in seconds.
    pub cache_seconds: u64,
    /// Customers re-wrapped per transaction and per ledger entry during a rotation.
    pub rotation_batch: u32,
    /// A pause between a rotation's batches, in milliseconds, to leave the store and the
    /// token more room for requests (0: none; the walk yields between batches anyway).
    pub rotation_pause_ms: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            provider: ProviderName::File,
            pkcs11: None,
            cache_keys: 10_000,
            cache_seconds: 300,
            rotation_batch: BATCH,
            rotation_pause_ms: 0,
        }
    }
}

/// A KEK provider's name in configuration.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// The master key file.
    File,
    /// A PKCS#11 token.
    Pkcs11,
}

impl ProviderName {
    pub(crate) fn provider(self) -> custos_crypto::KekProvider {
        match self {
            ProviderName::File => custos_crypto::KekProvider::File,
            ProviderName::Pkcs11 => custos_crypto::KekProvider::Pkcs11,
        }
    }
}

/// `[keys.pkcs11]`: the token that holds the KEKs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// A file holding the user PIN (mode 0600 or stricter; one line).
    pub pin_file: PathBuf,
}

impl KeysConfig {
    /// Checks what can be checked without the token.
    pub fn validate(&self) -> Result<(), String> {
        match (self.provider, &self.pkcs11) {
            (ProviderName::Pkcs11, None) => Err(
                "keys.provider = \"pkcs11\" needs [keys.pkcs11] (module, token_label, pin_file)"
                    .into(),
            ),
            (_, Some(p)) if p.token_label.trim().is_empty() => {
                Err("keys.pkcs11.token_label must not be empty".into())
            }
            _ if self.cache_keys > 10_000_000 => Err("keys.cache_keys is at most 10000000".into()),
            _ => Ok(()),
        }
    }
}
