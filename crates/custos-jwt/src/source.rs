//! Where the key set is read from: the issuer's URL, or a file.

use std::path::PathBuf;
use std::time::Duration;

use crate::ConfigError;

/// How long one read of the key set from its URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest key set document read: a provider's set is a few kilobytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Where a verifier reads its key set.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// The issuer's JWKS URL, fetched with GET; redirects are not followed. Which URLs
    /// are trusted is the caller's choice: Custos's configuration allows `https://`, and
    /// `http://` to a loopback host only.
    Url(reqwest::Url),
    /// A file holding the set, for set-ups where the issuer publishes no URL; read again
    /// as a URL would be fetched again.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    /// The source as logs name it: a URL's origin only (its path or query may carry a
    /// secret), a file's path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Url(url) => f.write_str(&url.origin().ascii_serialization()),
            KeySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The HTTP client key sets are fetched with.
pub(crate) fn client() -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        // A redirect could lead from https to plain http elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| ConfigError("the HTTP client for the key set cannot be built".into()))
}

impl KeySource {
    /// The document, at most [`MAX_DOCUMENT_BYTES`]; an error says what failed, never
    /// with the document's content.
    pub(crate) async fn read(&self, client: &reqwest::Client) -> Result<Vec<u8>, String> {
        let too_large = || format!("the key set is larger than {MAX_DOCUMENT_BYTES} bytes");
        match self {
            KeySource::Url(url) => {
                let mut response = client
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| fetch_failure(&e))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(format!("the issuer answered {}", status.as_u16()));
                }
                let mut document = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| fetch_failure(&e))? {
                    if document.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                        return Err(too_large());
                    }
                    document.extend_from_slice(&chunk);
                }
                Ok(document)
            }
            KeySource::File(path) => {
                let document = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("the file cannot be read ({})", e.kind()))?;
                if document.len() > MAX_DOCUMENT_BYTES {
                    return Err(too_large());
                }
                Ok(document)
            }
        }
    }
}

/// What kind of failure a fetch met, without reqwest's text (it repeats the URL).
fn fetch_failure(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("the request {kind}")
}
