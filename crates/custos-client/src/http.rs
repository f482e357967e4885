//! The HTTP transport, over reqwest.

use crate::{ClientError, Method, RawAnswer, Request, Transport};

/// The server's base URL from what a user typed: a trailing `/` and a trailing `/ledger`
/// are dropped, so `http://host:8700`, `http://host:8700/` and `http://host:8700/ledger`
/// all name the same server (the ledger's tiles are under `<base>/ledger`, the API under
/// `<base>/v1`).
pub fn base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/ledger")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_owned()
}

/// Sends requests to a server at a base URL (`http://127.0.0.1:8700`).
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// A transport to the server at `base` (a trailing `/` is dropped).
    pub fn new(base: &str) -> Http {
        Http::with_client(reqwest::Client::new(), base)
    }

    /// The same, over a configured reqwest client (timeouts, pool size).
    pub fn with_client(client: reqwest::Client, base: &str) -> Http {
        Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The reqwest client, for requests the typed calls do not cover (multipart).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            base: self.base.clone(),
            // The URL's query may name a customer's phone or email.
            reason: e.without_url().to_string(),
        }
    }
}

impl Transport for Http {
    async fn send(&self, request: Request) -> Result<RawAnswer, ClientError> {
        let url = format!("{}{}", self.base, request.path);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, url);
        if let Some(token) = &request.token {
            builder = builder.bearer_auth(token);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some((content_type, bytes)) = request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let response = builder.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Ok(RawAnswer {
            status,
            headers,
            bytes: bytes.to_vec(),
        })
    }
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
}
