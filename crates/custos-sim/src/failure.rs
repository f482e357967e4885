//! Why a run or a command ended without success.

use std::borrow::Cow;

use custos_client::Answer;

use crate::stdout::printable;

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

impl From<custos_service::startup::StartError> for Failure {
    fn from(e: custos_service::startup::StartError) -> Self {
        Failure::new(e.code, e.message)
    }
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

    /// The readable form of a call the API refused: the envelope's
    /// `{"error":{"code","message"}}` as `error[<code>]: <message>` (with a hint on the
    /// token needed, `whose`, on 401 and 403), else the HTTP status alone; never raw JSON.
    pub fn refusal(status: u16, envelope: &serde_json::Value, whose: &str) -> Self {
        let error = &envelope["error"];
        let (Some(code), Some(message)) = (error["code"].as_str(), error["message"].as_str())
        else {
            let status = reqwest::StatusCode::from_u16(status)
                .map_or_else(|_| status.to_string(), |s| s.to_string());
            return Failure::new("http", format!("the server answered HTTP {status}"));
        };
        let message = printable(message);
        let message = match status {
            401 => format!("{message}: give {whose} with --token-file FILE or CUSTOS_TOKEN"),
            403 => format!("{message}: this needs {whose}"),
            _ => message,
        };
        Failure::new(stable_code(code), message)
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

/// Passes a successful answer through; turns any other into the API's error (see
/// [`Failure::refusal`]).
pub fn accepted(answer: Answer, whose: &str) -> Result<Answer, Failure> {
    if answer.is_success() {
        Ok(answer)
    } else {
        Err(Failure::refusal(answer.status, &answer.body, whose))
    }
}

/// A code from the server, if it looks like one (short, `a-z0-9_`); anything else is
/// shown as `api_error` (a hostile or broken server cannot write to the terminal).
fn stable_code(code: &str) -> String {
    let sane = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if sane { code } else { "api_error" }.to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_code_and_message() {
        let body =
            serde_json::json!({"error":{"code":"forbidden","message":"denied by policy (p1)"}});
        let f = Failure::refusal(403, &body, "an admin's token");
        assert_eq!(f.code(), "forbidden");
        assert_eq!(
            f.message(),
            "denied by policy (p1): this needs an admin's token"
        );
        let f = Failure::refusal(502, &serde_json::Value::Null, "x");
        assert_eq!(
            (f.code(), f.message()),
            ("http", "the server answered HTTP 502 Bad Gateway")
        );
    }
}
