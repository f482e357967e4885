//! `custos demo`: the gateway on 127.0.0.1:8700 with ./custos-data, and a demo company
//! loaded through the API on first start.

use std::net::SocketAddr;
use std::path::PathBuf;

use custos::demo_data::{self, DEMO_SEED};
use custos::demo_load;

use crate::Fatal;
use crate::serve::{self, ServeArgs};

/// Options of `custos demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Data directory.
    #[arg(long, default_value = "./custos-data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700")]
    listen: SocketAddr,
    /// Customers to load into an empty store.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Open cases per agent.
    #[arg(long, default_value_t = 3)]
    cases_per_agent: usize,
    /// PostgreSQL URL instead of the embedded SQLite store.
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    database_url: Option<String>,
    /// Load the data, print where things are, and exit instead of serving.
    #[arg(long)]
    load_only: bool,
}

pub async fn run(args: DemoArgs) -> Result<(), Fatal> {
    let serve_args = ServeArgs {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        config: None,
        policies: None,
        database_url: args.database_url.clone(),
        simulated_clock: false,
    };
    let started = serve::start(&serve_args).await?;
    let base = format!("http://{}", started.addr);
    let tokens_path = args.data_dir.join("demo-tokens.json");
    let empty = started
        .app
        .store
        .count_customers()
        .await
        .map_err(|e| Fatal::new(e.code(), e.to_string()))?
        == 0;
    let app = started.app.clone();
    let admin_token_path = started.admin_token_path.clone();
    let server = tokio::spawn(serve::serve_until_signal(started));
    if empty {
        let admin_token = std::fs::read_to_string(&admin_token_path).map_err(|e| {
            Fatal::new(
                "admin_token",
                format!("cannot read {}: {e}", admin_token_path.display()),
            )
        })?;
        eprintln!(
            "Loading the demo company into {} ...",
            args.data_dir.display()
        );
        let company = demo_data::generate(args.customers, DEMO_SEED);
        let loaded = demo_load::load(
            &base,
            admin_token.trim(),
            &company,
            args.cases_per_agent,
            false,
        )
        .await
        .map_err(|e| Fatal::new("demo_load", e.to_string()))?;
        let json = serde_json::to_string_pretty(&loaded)
            .map_err(|e| Fatal::new("demo_load", e.to_string()))?;
        serve::write_secret(&tokens_path, &json)?;
    }
    let customers = app
        .store
        .count_customers()
        .await
        .map_err(|e| Fatal::new(e.code(), e.to_string()))?;
    println!("Custos demo running at {base}");
    println!(
        "  customers: {customers}, open cases: {}",
        app.store
            .count_open_cases()
            .await
            .map_err(|e| Fatal::new(e.code(), e.to_string()))?
    );
    println!("  admin token:        {}", admin_token_path.display());
    println!(
        "  every staff token:  {} (id, role, org, token, open cases)",
        tokens_path.display()
    );
    if let Some(loaded) = demo_load::read_tokens(&tokens_path)
        && let Some(agent) = loaded
            .staff
            .iter()
            .find(|s| s.role == "support" && !s.cases.is_empty())
    {
        let (case, customer) = &agent.cases[0];
        println!("  try, as support agent {}:", agent.id);
        println!(
            "    curl -H 'Authorization: Bearer {}' -H 'X-Custos-Case: {case}' {base}/v1/customers/{customer}",
            agent.token
        );
    }
    println!("  API description:    {base}/openapi.json");
    let verifier_key = app.access.with_ledger(|l| Ok(l.verifier_key())).await;
    if let Ok(key) = verifier_key {
        println!(
            "  ledger ({} entries), verify it as an auditor would:",
            app.access.size()
        );
        println!(
            "    CUSTOS_TOKEN=<a security_analyst token> custos ledger verify --url {base}/ledger --key {key}"
        );
    }
    if args.load_only {
        server.abort();
        return Ok(());
    }
    server
        .await
        .map_err(|e| Fatal::new("serve", e.to_string()))?
}
