//! Authorization for Custos: the Cedar schema, the default policy set, loading and
//! validating an operator's replacement, and turning gateway requests into decisions.
//!
//! Validation is separate from evaluation: [`PolicyEngine::load_dir`] and
//! [`PolicyEngine::embedded`] validate every policy against the schema in strict mode
//! once, at start; [`PolicyEngine::decide`] then only evaluates, and fails closed.

mod error;
mod request;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Authorizer, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};

pub use error::PolicyError;
pub use request::{AccessRequest, Action, CaseContext, Principal, Resource};

/// The shipped schema.
pub const DEFAULT_SCHEMA: &str = include_str!("../policies/custos.cedarschema");
/// The shipped policy set.
pub const DEFAULT_POLICIES: &str = include_str!("../policies/default.cedar");

/// The outcome of one authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The deciding policy's `@id`, or `no_permit` / `policy_error`.
    pub reason_code: String,
}

/// A validated schema and policy set.
pub struct PolicyEngine {
    schema: Schema,
    policies: PolicySet,
    /// Policy ids in load order: for [`PolicyEngine::policy_ids`] and to pick a reason.
    order: Vec<PolicyId>,
    authorizer: Authorizer,
}

/// 1-based line and column of byte `offset` in `text`; the column counts characters,
/// as an editor does. Offsets past the end or inside a character are clamped rather
/// than trusted, since they come from another crate.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a Cedar diagnostic points, as line and column in `text` (1:1 if nowhere).
fn locate(diagnostic: &dyn miette::Diagnostic, text: &str) -> (usize, usize) {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or((1, 1), |label| line_column(text, label.offset()))
}

/// The diagnostic's message with its help, on one line.
fn message(diagnostic: &dyn miette::Diagnostic) -> String {
    match diagnostic.help() {
        Some(help) => format!("{diagnostic}; {help}"),
        None => diagnostic.to_string(),
    }
}

/// A parse error in `file`, located in its `text`.
fn parse_error(file: &Path, text: &str, e: &dyn miette::Diagnostic) -> PolicyError {
    let (line, column) = locate(e, text);
    PolicyError::Parse {
        file: file.to_path_buf(),
        line,
        column,
        message: message(e),
    }
}

fn parse_schema(file: &Path, text: &str) -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(text)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| parse_error(file, text, &e))
}

/// Parses one policy file, validates it, and names each policy by its `@id`.
fn parse_policies(file: &Path, text: &str, schema: &Schema) -> Result<Vec<Policy>, PolicyError> {
    let parsed = PolicySet::from_str(text).map_err(|e| parse_error(file, text, &e))?;
    // Templates would need linking the gateway never does; dropping them silently
    // would leave the operator believing a rule is in force.
    if let Some(template) = parsed.templates().next() {
        let name = template.annotation("id").unwrap_or("a template");
        return Err(PolicyError::Layout(format!(
            "{}: {name} has slots (?principal / ?resource); only static policies are supported",
            file.display()
        )));
    }
    let result = Validator::new(schema.clone()).validate(&parsed, ValidationMode::Strict);
    if let Some(e) = result.validation_errors().next() {
        let (line, column) = locate(e, text);
        return Err(PolicyError::Validation {
            file: file.to_path_buf(),
            line,
            column,
            message: message(e),
        });
    }
    // Cedar names parsed policies "policy0", "policy1", ... in source order but hands
    // them back in no particular order; source order keeps ids and reasons stable.
    let mut policies: Vec<&Policy> = parsed.policies().collect();
    policies.sort_by_key(|p| {
        p.id()
            .to_string()
            .strip_prefix("policy")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    });
    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut named = Vec::with_capacity(policies.len());
    let mut seen = HashSet::new();
    for (n, policy) in policies.into_iter().enumerate() {
        let id = policy
            .annotation("id")
            .map_or_else(|| format!("{file_name}#{n}"), str::to_owned);
        if !seen.insert(id.clone()) {
            return Err(PolicyError::Layout(format!(
                "policy id {id:?} used twice in {}",
                file.display()
            )));
        }
        named.push(policy.new_id(PolicyId::new(&id)));
    }
    Ok(named)
}

impl PolicyEngine {
    /// The shipped schema and policies.
    pub fn embedded() -> Result<PolicyEngine, PolicyError> {
        let schema = parse_schema(Path::new("custos.cedarschema"), DEFAULT_SCHEMA)?;
        let policies = parse_policies(Path::new("default.cedar"), DEFAULT_POLICIES, &schema)?;
        Self::assemble(schema, policies)
    }

    /// One `*.cedarschema` and one or more `*.cedar` files from `dir`, replacing the
    /// defaults. Policy ids must be unique across files.
    pub fn load_dir(dir: &Path) -> Result<PolicyEngine, PolicyError> {
        let io = |path: &Path, e: std::io::Error| PolicyError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut schemas: Vec<PathBuf> = Vec::new();
        let mut policy_files: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let path = entry.map_err(|e| io(dir, e))?.path();
            match path.extension().and_then(|x| x.to_str()) {
                Some("cedarschema") => schemas.push(path),
                Some("cedar") => policy_files.push(path),
                _ => {}
            }
        }
        policy_files.sort();
        let schema_file = match schemas.as_slice() {
            [one] => one,
            [] => {
                return Err(PolicyError::Layout(format!(
                    "no .cedarschema file in {}",
                    dir.display()
                )));
            }
            _ => {
                return Err(PolicyError::Layout(format!(
                    "more than one .cedarschema file in {}",
                    dir.display()
                )));
            }
        };
        if policy_files.is_empty() {
            return Err(PolicyError::Layout(format!(
                "no .cedar policy file in {}",
                dir.display()
            )));
        }
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| io(p, e));
        let schema = parse_schema(schema_file, &read(schema_file)?)?;
        let mut all = Vec::new();
        for file in &policy_files {
            all.extend(parse_policies(file, &read(file)?, &schema)?);
        }
        Self::assemble(schema, all)
    }

    /// One set from the policies of all files, remembering their order.
    fn assemble(schema: Schema, policies: Vec<Policy>) -> Result<PolicyEngine, PolicyError> {
        let mut set = PolicySet::new();
        let mut order = Vec::with_capacity(policies.len());
        for policy in policies {
            let id = policy.id().clone();
            set.add(policy).map_err(|_| {
                PolicyError::Layout(format!(
                    "policy id {:?} is used more than once",
                    id.to_string()
                ))
            })?;
            order.push(id);
        }
        Ok(PolicyEngine {
            schema,
            policies: set,
            order,
            authorizer: Authorizer::new(),
        })
    }

    /// The loaded schema-validated policies in Cedar syntax, for fingerprinting what is
    /// in force (the server records a digest of it in the ledger at start).
    pub fn policy_text(&self) -> String {
        self.policies.to_string()
    }

    /// The ids of all loaded policies, in file and source order.
    pub fn policy_ids(&self) -> Vec<String> {
        self.order.iter().map(ToString::to_string).collect()
    }

    /// Decides `req`. Anything that keeps Cedar from a clean answer denies (fail closed).
    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        let deny = |code: &str| Decision {
            allowed: false,
            reason_code: code.to_owned(),
        };
        let Ok((request, entities)) = (*req).to_cedar(&self.schema) else {
            return deny("policy_error");
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        // A policy that errors is skipped by Cedar; if it was a forbid, the permit would
        // win. Any error therefore denies.
        if response.diagnostics().errors().next().is_some() {
            return deny("policy_error");
        }
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        // Several policies may determine the decision (a suspended admin exporting meets
        // two forbids); name the first in load order, so the most general rule, written
        // first, is the one reported and the code does not vary between runs.
        let reasons: HashSet<&PolicyId> = response.diagnostics().reason().collect();
        match self.order.iter().find(|id| reasons.contains(id)) {
            Some(id) => Decision {
                allowed,
                reason_code: id.to_string(),
            },
            // Allow without a reason cannot happen in Cedar; deny rather than trust it.
            None => deny("no_permit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("ab\ncd\nef", 0), (1, 1));
        assert_eq!(line_column("ab\ncd\nef", 4), (2, 2));
        assert_eq!(line_column("ab\ncd\nef", 99), (3, 3));
        // Columns count characters; an offset inside a character is clamped.
        assert_eq!(line_column("// 客户\nx", 10), (2, 1));
        assert_eq!(line_column("客户x", 6), (1, 3));
        assert_eq!(line_column("客户x", 4), (1, 2));
    }

    #[test]
    fn engine_is_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<PolicyEngine>();
    }

    #[test]
    fn defaults_validate() {
        let engine = PolicyEngine::embedded().unwrap();
        let ids = engine.policy_ids();
        for id in [
            "suspended",
            "view-with-case",
            "partner-no-email",
            "no-bulk-export",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id}");
        }
    }
}
