//! Why a run or a command ended without success.

use std::borrow::Cow;

/// What a failure means for the exit status (the binary maps it; see the README):
/// 1 when something was checked and found wrong, 2 for everything else that went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Usage, could not read, could not start: nothing was found wrong. Exit 2.
    Error,
    /// A ledger, proof or evidence bundle was checked and found wrong. Exit 1.
    Failed,
    /// Standard output was closed by its reader (`| head`): a normal end, exit 0.
    OutputClosed,
}

/// A failure: a message for the operator and a stable code.
#[derive(Debug)]
pub struct Failure {
    code: Cow<'static, str>,
    message: String,
    ending: Ending,
}

impl Failure {
    /// A failure that found nothing wrong in what it was to check (exit 2).
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            ending: Ending::Error,
        }
    }

    /// A check that ran and found the ledger, proof or evidence wrong (exit 1).
    pub fn failed(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Failure {
            ending: Ending::Failed,
            ..Failure::new(code, message)
        }
    }

    /// Standard output was closed: the command ends quietly.
    pub fn output_closed() -> Self {
        Failure {
            ending: Ending::OutputClosed,
            ..Failure::new("output_closed", "standard output was closed")
        }
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How the failure ends the process.
    pub fn ending(&self) -> Ending {
        self.ending
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl From<custos_client::ClientError> for Failure {
    fn from(e: custos_client::ClientError) -> Self {
        match e {
            custos_client::ClientError::Unreachable { .. } => {
                Failure::new("server_unreachable", e.to_string())
            }
            custos_client::ClientError::Request(_) => Failure::new("request", e.to_string()),
        }
    }
}
