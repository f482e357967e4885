//! TLS for `custos serve`: the server's certificate and key, and optionally the CA whose
//! client certificates integration principals present (mutual TLS, pinned per principal
//! in `[mtls]`). The files are read again on SIGHUP: new connections get the new
//! configuration, connections already open keep theirs, so a renewed certificate is
//! taken without a restart and without dropping anyone.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::response::Response;
use axum_server::tls::TlsInfo;
use axum_server::tls_rustls::RustlsConfig;
use custos_service::client_certificate::ClientCertificate;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Failure;

/// `Strict-Transport-Security` on every answer served over TLS: a year, this host only
/// (the console and the API are one origin; subdomains are not ours to pin).
const HSTS: &str = "max-age=31536000";

/// The PEM files TLS is configured from.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to; without it no client
    /// certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the files into a server configuration. A client certificate is asked for
    /// but not required at the handshake: staff and browsers come with tokens and
    /// sessions; which principals must present one is the service's decision
    /// (`[mtls]`), made per request.
    pub(crate) fn server_config(&self) -> Result<ServerConfig, Failure> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_failure(&self.cert, &e))?;
        if chain.is_empty() {
            return Err(Failure::new(
                "tls",
                format!("{} holds no certificate", self.cert.display()),
            ));
        }
        let key =
            PrivateKeyDer::from_pem_file(&self.key).map_err(|e| tls_failure(&self.key, &e))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Failure::new("tls", e.to_string()))?;
        let builder = match &self.client_ca {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in
                    CertificateDer::pem_file_iter(path).map_err(|e| tls_failure(path, &e))?
                {
                    let cert = cert.map_err(|e| tls_failure(path, &e))?;
                    roots
                        .add(cert)
                        .map_err(|e| Failure::new("tls", format!("{}: {e}", path.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| Failure::new("tls", format!("{}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| Failure::new("tls", format!("{}: {e}", self.key.display())))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The configuration to serve with, reloaded from the files on every SIGHUP for as
    /// long as the process runs. A reload that fails keeps the configuration in force
    /// and says why in the log.
    pub(crate) fn reloading(self) -> Result<RustlsConfig, Failure> {
        let config = RustlsConfig::from_config(Arc::new(self.server_config()?));
        let reloaded = config.clone();
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| Failure::new("tls", format!("cannot watch SIGHUP: {e}")))?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match self.server_config() {
                    Ok(c) => {
                        reloaded.reload_from_config(Arc::new(c));
                        tracing::info!(cert = %self.cert.display(), "TLS configuration reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; the previous configuration stays in force");
                    }
                }
            }
        });
        Ok(config)
    }
}

fn tls_failure(path: &std::path::Path, e: &rustls_pki_types::pem::Error) -> Failure {
    Failure::new("tls", format!("cannot read {}: {e}", path.display()))
}

/// Hands the service the client certificate TLS verified, if the connection presented
/// one: the fingerprint of its leaf, which `[mtls]` pins per principal.
pub(crate) async fn client_certificate(mut request: Request) -> Request {
    let leaf = request
        .extensions()
        .get::<Arc<TlsInfo>>()
        .and_then(|info| info.peer_certificates.first())
        .map(|der| ClientCertificate::of_der(der));
    if let Some(certificate) = leaf {
        request.extensions_mut().insert(certificate);
    }
    request
}

/// Adds `Strict-Transport-Security` to an answer served over TLS.
pub(crate) async fn strict_transport(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    response
}
