//! `custos demo`: the gateway on 127.0.0.1:8700 with ./custos-data, a demo company loaded
//! through the API on first start followed by a short working day with two insiders (see
//! [`custos_sim::demo::activity`]); at every start, the console's address, a sign-in token per role and
//! a fresh customer access link.

use std::net::SocketAddr;
use std::path::PathBuf;

use custos_sim::demo::activity as demo_activity;
use custos_sim::demo::data::{self as demo_data, DEMO_SEED};
use custos_sim::demo::load as demo_load;

use crate::serve::{self, ServeArgs};
use crate::{Failure, api_client, customer_cli};

/// Options of `custos demo`.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
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

pub(crate) async fn run(args: DemoArgs) -> Result<(), Failure> {
    // Claimed first: a second demo on this directory is refused before it writes here.
    let mut claim = custos_service::startup::claim_data_dir(&args.data_dir)?;
    let config_path = args.data_dir.join("demo.toml");
    claim.created_file(config_path.clone());
    std::fs::write(&config_path, custos_sim::demo::CONFIG).map_err(|e| {
        Failure::new(
            "demo_config",
            format!("cannot write {}: {e}", config_path.display()),
        )
    })?;
    let serve_args = ServeArgs {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        config: Some(config_path),
        policies: None,
        database_url: args.database_url.clone(),
        simulated_clock: false,
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
    };
    let started = serve::start_claimed(&serve_args, claim).await?;
    let base = format!("http://{}", started.addr);
    let tokens_path = args.data_dir.join("demo-tokens.json");
    let store_err = |e: custos_store::StoreError| Failure::new(e.code(), e.to_string());
    let empty = started
        .direct
        .store(&started.app)
        .count_customers()
        .await
        .map_err(store_err)?
        == 0;
    let app = started.app.clone();
    let direct = started.direct.clone();
    let admin_token_path = started.admin_token_path.clone();
    let server = tokio::spawn(serve::serve_until_signal(started));
    let admin_token = custos_service::startup::read_token_file(&admin_token_path)?;
    let client = api_client::client(&base);
    if empty {
        custos_sim::stdout::note(format_args!(
            "Loading the demo company into {} ...",
            args.data_dir.display()
        ));
        let company = demo_data::generate(args.customers, DEMO_SEED);
        let loaded = demo_load::load(&client, &admin_token, &company, args.cases_per_agent, false)
            .await
            .map_err(|e| Failure::new("demo_load", e.to_string()))?;
        let json = serde_json::to_string_pretty(&loaded)
            .map_err(|e| Failure::new("demo_load", e.to_string()))?;
        custos_service::startup::write_secret(&tokens_path, &json)?;
        demo_activity::run_and_await_alerts(&app, &direct, &client, &admin_token, &loaded).await?;
    }
    let loaded = demo_load::read_tokens(&tokens_path).ok_or_else(|| {
        Failure::new(
            "demo_tokens",
            format!(
                "cannot read {}: did the first load stop half-way? Start again with an empty data directory",
                tokens_path.display()
            ),
        )
    })?;
    let customers = direct
        .store(&app)
        .count_customers()
        .await
        .map_err(store_err)?;
    let open_cases = direct
        .store(&app)
        .count_open_cases()
        .await
        .map_err(store_err)?;
    let agent = demo_activity::staff(&loaded, demo_activity::AGENT)?;
    let crm = demo_activity::staff(&loaded, demo_activity::CRM)?;
    custos_sim::outln!("Custos demo running at {base}")?;
    custos_sim::outln!("  console:            {base}/   (sign in with one of these tokens)")?;
    for (what, id, token) in [
        (
            "security analyst",
            demo_activity::ANALYST,
            demo_activity::staff(&loaded, demo_activity::ANALYST)?
                .token
                .as_str(),
        ),
        ("support agent", agent.id.as_str(), agent.token.as_str()),
        (
            "partner agent",
            demo_activity::PARTNER_AGENT,
            demo_activity::staff(&loaded, demo_activity::PARTNER_AGENT)?
                .token
                .as_str(),
        ),
        (
            "admin",
            custos_service::BOOTSTRAP_ADMIN,
            admin_token.as_str(),
        ),
        ("CRM integration", crm.id.as_str(), crm.token.as_str()),
    ] {
        custos_sim::outln!("    {what:<18} {id:<28} {token}")?;
    }
    if let Some((case, customer)) = agent.cases.first() {
        let link = customer_cli::issue_link(&client, &crm.token, customer, 24).await?;
        custos_sim::outln!(
            "  customer link:      {} (customer {customer}, expires {})",
            link.url,
            custos_types::calendar::utc(link.expires_at)
        )?;
        custos_sim::outln!(
            "    the customer sees every access to their record: sign in as {} and open their case",
            agent.id
        )?;
        custos_sim::outln!("  try, as support agent {}:", agent.id)?;
        custos_sim::outln!(
            "    curl -H 'Authorization: Bearer {}' -H 'X-Custos-Case: {case}' {base}/v1/customers/{customer}",
            agent.token
        )?;
    }
    let alerts = direct
        .store(&app)
        .alerts(None, 1000)
        .await
        .map_err(store_err)?;
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for a in &alerts {
        *kinds.entry(a.kind.as_str()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    custos_sim::outln!(
        "  alerts:             {} ({}), in the console's alert queue",
        alerts.len(),
        kinds.join(", ")
    )?;
    let canaries = direct
        .store(&app)
        .canary_marks()
        .await
        .map_err(store_err)?
        .len();
    custos_sim::outln!(
        "  customers: {customers} ({canaries} of them planted canaries), open cases: {open_cases}"
    )?;
    custos_sim::outln!("  admin token:        {}", admin_token_path.display())?;
    custos_sim::outln!(
        "  every staff token:  {} (id, role, org, token, open cases)",
        tokens_path.display()
    )?;
    custos_sim::outln!("  API description:    {base}/openapi.json")?;
    let verifier_key = direct
        .access_log(&app)
        .with_ledger(|l| Ok(l.verifier_key()))
        .await;
    if let Ok(key) = verifier_key {
        custos_sim::outln!(
            "  ledger ({} entries), verify it as an auditor would:",
            direct.access_log(&app).size()
        )?;
        custos_sim::outln!(
            "    CUSTOS_TOKEN=<a security_analyst token> custos ledger verify --url {base} --key {key}"
        )?;
    }
    if args.load_only {
        server.abort();
        return Ok(());
    }
    server
        .await
        .map_err(|e| Failure::new("serve", e.to_string()))?
}
