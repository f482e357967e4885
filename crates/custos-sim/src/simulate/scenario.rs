//! Insider scenarios: TOML files an operator or red team writes without recompiling.
//!
//! A scenario says who the insiders are (how many, which role, which organisations),
//! when they act (start day, how many working days, which hours) and what they do each
//! active day (extra customers opened through cases the CRM opens on their behalf,
//! fields revealed, probing searches). The shipped ones are in the repository's
//! `scenarios/` folder; every key is documented there and in [`Scenario`].

use std::path::Path;

use custos_types::Role;
use serde::Deserialize;

/// An inclusive range `[low, high]` of whole numbers, drawn uniformly.
pub type Range = [i64; 2];

/// One scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in the report (`slow-harvest`).
    pub name: String,
    /// What the scenario models, in plain words.
    #[serde(default)]
    pub description: String,
    /// Number of insiders.
    pub insiders: u32,
    /// Where they work: `company`, `partner`, `any`, or one organisation's name.
    #[serde(default = "any_org")]
    pub org: String,
    /// When set, all insiders come from this many organisations (a ring: 1).
    #[serde(default)]
    pub rings: Option<u32>,
    /// Their role.
    #[serde(default = "support")]
    pub role: Role,
    /// First day of abuse; negative days count from the end (`-14`: two weeks before).
    pub start_day: Range,
    /// Working days of abuse (the run's end stops it earlier).
    pub active_days: Range,
    /// Extra customers opened per active day.
    #[serde(default)]
    pub customers_per_day: Range,
    /// Instead of `customers_per_day`: fill this share of the role's daily customer
    /// quota, counting the person's honest contacts of the day (quota hugging).
    #[serde(default)]
    pub quota_share: Option<f64>,
    /// When: `shift` (mixed into working hours), `evening` (after the shift) or
    /// `night` (00:00–05:00).
    #[serde(default)]
    pub hours: Hours,
    /// Fields revealed of each harvested customer.
    #[serde(default = "phone")]
    pub reveal: Vec<String>,
    /// Probing searches per active day, for phone numbers the insider has no case for.
    #[serde(default)]
    pub searches_per_day: Range,
    /// How the insider gets the cases purpose binding asks for: `pretext` (asks the CRM
    /// for a case with no inbound contact), `disguised` (accomplices call about the
    /// customers they choose, from numbers of their own, and the insider works the cases
    /// as honest cases are worked) or `callers` (harvests the customers who contact
    /// them, on the real inbound cases).
    #[serde(default)]
    pub cases: CaseSource,
    /// What the insider does when a reveal is refused because no channel vouches for
    /// the case (it is not `verified`): `none` (gives up on that customer), `request`
    /// (asks for access with a plausible purpose and reveals once approved) or
    /// `break_glass` (takes the fields at once, as in an emergency).
    #[serde(default)]
    pub unlock: Unlock,
    /// Whether the insider reaches each customer through the privacy-number relay (a
    /// scam or sales call on the company's lines) as well as revealing `reveal` (which
    /// may be empty: then the calls are the abuse).
    #[serde(default)]
    pub relay_calls: bool,
    /// Whether one of the company's team leads joins the insiders and approves their
    /// access requests at once (honest approvers approve what they are shown, unless it
    /// is more than they would believe of one person in a day).
    #[serde(default)]
    pub colluding_approver: bool,
    /// Whether the insider leaves alone every case on their queue that no contact of
    /// theirs brought (whatever looks planted: the cases of allocated canaries).
    #[serde(default)]
    pub skip_planted: bool,
    /// Whether the insider leaves the company after the active days.
    #[serde(default)]
    pub leaves: bool,
}

/// When an insider acts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hours {
    /// During the shift, among honest work.
    #[default]
    Shift,
    /// After the shift until midnight.
    Evening,
    /// 00:00–05:00.
    Night,
}

/// What an insider does when a reveal is refused for want of a verified contact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unlock {
    /// Nothing: the insider of before approvals existed.
    #[default]
    None,
    /// An access request, approved by a team lead.
    Request,
    /// Break-glass.
    BreakGlass,
}

/// How an insider obtains cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSource {
    /// Asks the CRM for cases with no inbound contact.
    #[default]
    Pretext,
    /// Has accomplices contact the company about the customers the insider chooses, from
    /// numbers and addresses of their own, routed to the insider (or, a few, asks for a
    /// follow-up), and works each case as an honest case is worked in every field the
    /// insider controls: the channel, the times of view, reveal and closing, the search
    /// first. The contact centre reports these contacts as honest callers from another
    /// number are reported: the cases are `unverified`. Only the extra volume, the
    /// customers chosen and the fields revealed (`reveal`) differ from honest work.
    Disguised,
    /// Opens no case of their own: on an active day every customer who contacts them has
    /// the `reveal` fields revealed, on the inbound case the CRM opened for the contact
    /// (`customers_per_day`, if set, adds disguised cases).
    Callers,
}

fn any_org() -> String {
    "any".to_owned()
}
fn support() -> Role {
    Role::Support
}
fn phone() -> Vec<String> {
    vec!["phone".to_owned()]
}

/// A scenario file that cannot be used; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ScenarioError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "scenario_invalid"
    }
}

const FIELDS: [&str; 4] = ["name", "phone", "email", "account_id"];

impl Scenario {
    /// Reads and checks one scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let err = |message: String| ScenarioError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        Scenario::parse(&text).map_err(err)
    }

    /// Parses and checks scenario text.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        scenario.check()?;
        Ok(scenario)
    }

    fn check(&self) -> Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err("name must be 1 to 64 characters of a-z, 0-9, - and _".into());
        }
        if self.insiders == 0 || self.insiders > 10_000 {
            return Err("insiders must be between 1 and 10000".into());
        }
        if !self.role.serves_customers() {
            let serving: Vec<&str> = Role::ALL
                .iter()
                .filter(|r| r.serves_customers())
                .map(|r| r.as_str())
                .collect();
            return Err(format!("role must be one of {}", serving.join(", ")));
        }
        if self.rings == Some(0) {
            return Err("rings must be at least 1".into());
        }
        for (key, range, min) in [
            ("active_days", self.active_days, 1),
            ("customers_per_day", self.customers_per_day, 0),
            ("searches_per_day", self.searches_per_day, 0),
        ] {
            if range[0] < min || range[1] < range[0] || range[1] > 1_000_000 {
                return Err(format!(
                    "{key} must be [low, high] with {min} <= low <= high <= 1000000"
                ));
            }
        }
        if self.start_day[1] < self.start_day[0] || self.start_day.iter().any(|d| d.abs() > 3650) {
            return Err("start_day must be [low, high] with low <= high, within 3650 days".into());
        }
        if let Some(share) = self.quota_share
            && !(share > 0.0 && share <= 1.0)
        {
            return Err("quota_share must be in (0, 1]".into());
        }
        if self.quota_share.is_none()
            && self.cases != CaseSource::Callers
            && self.customers_per_day[1] == 0
            && self.searches_per_day[1] == 0
        {
            return Err(
                "the insiders do nothing: set customers_per_day, quota_share or searches_per_day"
                    .into(),
            );
        }
        if let Some(f) = self.reveal.iter().find(|f| !FIELDS.contains(&f.as_str())) {
            return Err(format!(
                "reveal: unknown field {f:?}; fields are {}",
                FIELDS.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: &str = r#"
name = "slow"
insiders = 3
start_day = [2, 5]
active_days = [10, 20]
customers_per_day = [5, 30]
"#;

    #[test]
    fn defaults_and_a_minimal_file() {
        let s = Scenario::parse(SLOW).unwrap();
        assert_eq!((s.role.as_str(), s.org.as_str()), ("support", "any"));
        assert_eq!((s.hours, s.cases), (Hours::Shift, CaseSource::Pretext));
        assert_eq!(s.reveal, ["phone"]);
    }

    #[test]
    fn mistakes_are_named() {
        let typo = SLOW.replace("insiders", "insider");
        assert!(Scenario::parse(&typo).unwrap_err().contains("insider"));
        let field = format!("{SLOW}reveal = [\"salary\"]\n");
        assert!(Scenario::parse(&field).unwrap_err().contains("salary"));
        let range = SLOW.replace("[5, 30]", "[30, 5]");
        assert!(
            Scenario::parse(&range)
                .unwrap_err()
                .contains("customers_per_day")
        );
        let hours = format!("{SLOW}hours = \"lunch\"\n");
        assert!(Scenario::parse(&hours).is_err());
    }

    #[test]
    fn harvesting_callers_needs_no_extra_cases() {
        let idle = SLOW.replace("customers_per_day = [5, 30]\n", "");
        assert!(Scenario::parse(&idle).unwrap_err().contains("do nothing"));
        let callers = Scenario::parse(&format!("{idle}cases = \"callers\"\n")).unwrap();
        assert_eq!(callers.cases, CaseSource::Callers);
        assert!(!callers.skip_planted);
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                names.push(Scenario::load(&path).unwrap().name);
            }
        }
        names.sort();
        for expected in [
            "bulk-night",
            "colluding-ring",
            "colluding-ring-20",
            "colluding-ring-disguised",
            "departing-employee",
            "disguised-cases",
            "enumeration",
            "harvest-callers",
            "pretext-cases",
            "quota-hugging",
            "seed-2017",
            "slow-harvest",
            "slow-harvest-disguised",
            "slow-harvest-wary",
            "pretext-approved",
            "colluding-approver",
            "break-glass-abuse",
            "relay-spam",
            "callers-other-numbers",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }
}
