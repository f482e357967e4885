//! What every CLI command calling the server's API shares: the base URL as the user may
//! type it, the bearer token (from `--token-file`, `--token` or `CUSTOS_TOKEN`), and one
//! readable form for failures (`error[server_unreachable]: …`, or the API's own
//! `{"error":{"code","message"}}` as `error[<code>]: <message>`), never raw JSON.

use std::path::PathBuf;

use custos_client::{Answer, Client, Http};

use crate::Failure;

/// The server's base URL from what the user gave: a trailing `/` and a trailing
/// `/ledger` are dropped, so `http://host:8700`, `http://host:8700/` and
/// `http://host:8700/ledger` all name the same server (the ledger's tiles are
/// under `<base>/ledger`, the API under `<base>/v1`).
pub(crate) fn base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/ledger")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_owned()
}

/// The bearer token options of a command calling the API.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct TokenArgs {
    /// File holding the bearer token (as `DATA/admin.token` does); wins over --token and
    /// CUSTOS_TOKEN.
    // No `conflicts_with`: clap would count a CUSTOS_TOKEN in the environment as --token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Bearer token (prefer --token-file or CUSTOS_TOKEN: arguments are visible to
    /// other users of the machine).
    #[arg(long, env = "CUSTOS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl TokenArgs {
    /// The token, if one was given; the file wins over `--token`/`CUSTOS_TOKEN`.
    pub(crate) fn get(&self) -> Result<Option<String>, Failure> {
        match (&self.token_file, &self.token) {
            (Some(path), _) => crate::serve::read_token_file(path).map(Some),
            (None, Some(token)) => Ok(Some(token.clone())),
            (None, None) => Ok(None),
        }
    }

    /// The token; without one, a usage error saying how to give it and whose it must be.
    pub(crate) fn require(&self, whose: &str) -> Result<String, Failure> {
        self.get()?.ok_or_else(|| {
            Failure::new(
                "usage",
                format!("no token: give --token-file FILE or set CUSTOS_TOKEN ({whose})"),
            )
        })
    }
}

/// The typed client of the server at `url` (as the user typed it, see [`base_url`]).
pub(crate) fn client(url: &str) -> Client<Http> {
    Client::new(Http::new(&base_url(url)))
}

/// Passes a successful answer through; turns any other into the API's error as
/// `error[<code>]: <message>`. `whose` names the token the call needs, for the hint
/// on 401 and 403.
pub(crate) fn accepted(answer: Answer, whose: &str) -> Result<Answer, Failure> {
    if answer.is_success() {
        Ok(answer)
    } else {
        Err(refusal(answer.status, &answer.body, whose))
    }
}

/// The readable form of a refused call: the envelope's code and message when there is
/// one (with a hint on what token is needed), else the HTTP status alone.
pub(crate) fn refusal(status: u16, envelope: &serde_json::Value, whose: &str) -> Failure {
    let error = &envelope["error"];
    let (Some(code), Some(message)) = (error["code"].as_str(), error["message"].as_str()) else {
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

/// Text from the server, safe for a terminal: control characters become `?`.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_accepts_both_forms() {
        for url in [
            "http://h:8700",
            "http://h:8700/",
            "http://h:8700/ledger",
            "http://h:8700/ledger/",
        ] {
            assert_eq!(base_url(url), "http://h:8700", "{url}");
        }
        assert_eq!(base_url("http://h/x/ledger"), "http://h/x");
    }

    #[test]
    fn refusals_read_as_code_and_message() {
        let body =
            serde_json::json!({"error":{"code":"forbidden","message":"denied by policy (p1)"}});
        let f = refusal(403, &body, "an admin's token");
        assert_eq!(f.code(), "forbidden");
        assert_eq!(
            f.message(),
            "denied by policy (p1): this needs an admin's token"
        );
        let f = refusal(502, &serde_json::Value::Null, "x");
        assert_eq!(
            (f.code(), f.message()),
            ("http", "the server answered HTTP 502 Bad Gateway")
        );
    }
}
