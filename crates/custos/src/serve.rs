//! `custos serve`: listen, open the service on the data directory
//! (`custos_service::startup`), serve HTTP, or HTTPS with `--tls-cert` ([`crate::tls`]),
//! until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use custos_service::startup::{self, DataDirClaim, StartOptions};
use custos_service::{DirectAccess, SharedApp};

use axum_server::tls_rustls::RustlsConfig;

use crate::Failure;
use crate::tls::TlsFiles;

/// Options of `custos serve`.
#[derive(clap::Args, Clone)]
pub(crate) struct ServeArgs {
    /// Directory for the master key, the admin token, the ledger and the SQLite database.
    #[arg(long, env = "CUSTOS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on standard output).
    #[arg(long, env = "CUSTOS_LISTEN", default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// TOML configuration file.
    #[arg(long, env = "CUSTOS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory with one `.cedarschema` and the `.cedar` policy files replacing the defaults.
    #[arg(long, env = "CUSTOS_POLICIES")]
    pub policies: Option<PathBuf>,
    /// PostgreSQL URL; without it the store is a SQLite file in the data directory.
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Let each request set its time (header `X-Custos-Simulated-Time`, unix ms), so a
    /// simulator or red team can drive the real API through simulated days. The ledger
    /// then gets the origin `<ledger_origin>/simulated`: its records can never pass for
    /// real ones, and a data directory holds either kind, never both.
    #[arg(long)]
    pub simulated_clock: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); reloaded on SIGHUP.
    #[arg(long, env = "CUSTOS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "CUSTOS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: integration
    /// principals pinned in `[mtls]` authenticate with one (mutual TLS).
    #[arg(long, env = "CUSTOS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// What the service is started on.
    pub(crate) fn start_options(&self) -> StartOptions {
        StartOptions {
            data_dir: self.data_dir.clone(),
            config: self.config.clone(),
            policies: self.policies.clone(),
            database_url: self.database_url.clone(),
            simulated_clock: self.simulated_clock,
            tls: self.tls_cert.is_some(),
        }
    }

    /// The TLS files, when the server speaks HTTPS.
    fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }
}

/// A running gateway: its state and the address it listens on.
pub(crate) struct Started {
    pub app: SharedApp,
    pub addr: SocketAddr,
    pub listener: tokio::net::TcpListener,
    pub admin_token_path: PathBuf,
    /// TLS, when the server speaks HTTPS: read at start, reloaded on SIGHUP.
    pub tls: Option<RustlsConfig>,
    /// Direct access to the vault's parts, for this process (shutdown, the demo's summary).
    pub direct: DirectAccess,
    /// The data directory, held against a second Custos while this one runs.
    _claim: DataDirClaim,
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let started = start(&args).await?;
    // Ignored if standard output fails: the server runs on without it.
    let mut out = std::io::stdout();
    let scheme = if started.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(out, "custos listening on {scheme}://{}", started.addr);
    let _ = out.flush();
    serve_until_signal(started).await
}

/// Claims the data directory, binds the listener and opens everything; does not serve yet.
pub(crate) async fn start(args: &ServeArgs) -> Result<Started, Failure> {
    start_claimed(args, startup::claim_data_dir(&args.data_dir)?).await
}

/// [`start`] on a data directory already claimed (the demo writes its configuration
/// there first). On failure the claim is dropped, removing what this run created.
pub(crate) async fn start_claimed(
    args: &ServeArgs,
    mut claim: DataDirClaim,
) -> Result<Started, Failure> {
    // Bound before anything is opened: a port in use fails before a key or a store is made.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::new("listen", format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new("listen", e.to_string()))?;
    // Read before anything is opened: a certificate that cannot be read fails the start.
    let tls = args.tls_files().map(TlsFiles::reloading).transpose()?;
    let opened = startup::open(&args.start_options()).await?;
    claim.keep();
    Ok(Started {
        app: opened.app,
        addr,
        listener,
        admin_token_path: opened.admin_token_path,
        tls,
        direct: opened.direct,
        _claim: claim,
    })
}

/// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
pub(crate) async fn serve_until_signal(started: Started) -> Result<(), Failure> {
    let router = custos_console::site(started.app.clone());
    let served = match started.tls {
        None => axum::serve(
            started.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Failure::new("serve", e.to_string())),
        Some(tls) => {
            let router = router
                .layer(axum::middleware::map_request(
                    crate::tls::client_certificate,
                ))
                .layer(axum::middleware::map_response(crate::tls::strict_transport));
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                stopping.graceful_shutdown(None);
            });
            let listener = started
                .listener
                .into_std()
                .map_err(|e| Failure::new("listen", e.to_string()))?;
            axum_server::from_tcp_rustls(listener, tls)
                .map_err(|e| Failure::new("listen", e.to_string()))?
                .handle(handle)
                .serve(router.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .map_err(|e| Failure::new("serve", e.to_string()))
        }
    };
    // Whatever ended the serving: a last checkpoint over every durable entry.
    started.direct.close(&started.app).await;
    served.map(|_| ())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
