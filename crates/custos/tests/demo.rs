//! Behaviours 2 and 11: the demo company loads, with a console address, a sign-in per
//! role, a customer access link and the alerts of a short working day; afterwards none
//! of its plaintext personal data is in the stored files, the server log, or any denied
//! response.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use custos_sim::demo::data::{self as demo_data, DEMO_SEED};
use serde_json::json;

const CUSTOMERS: usize = 2000;

#[tokio::test]
async fn demo_loads_and_nothing_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("custos-data");
    let out = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args([
            "--log-format",
            "json",
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--load-only",
            "--customers",
        ])
        .arg(CUSTOMERS.to_string())
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Custos demo running at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("demo-tokens.json") && stdout.contains("admin.token"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "customers: {} (5 of them planted canaries)",
            CUSTOMERS + 5
        )),
        "{stdout}"
    );
    let tokens_path = data.join("demo-tokens.json");
    assert_eq!(
        std::fs::metadata(&tokens_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let loaded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tokens_path).unwrap()).unwrap();
    let staff = loaded["staff"].as_array().unwrap();
    assert!(staff.len() >= 200);
    let token_of = |id: &str| {
        staff.iter().find(|s| s["id"] == id).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // The console's address, and one sign-in per role, each a working token.
    let base = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Custos demo running at "))
        .unwrap();
    assert!(
        stdout.contains(&format!("console:            {base}/ ")),
        "{stdout}"
    );
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let sign_ins = [
        ("security analyst", "custos.security_analyst.001"),
        ("support agent", "custos.support.001"),
        ("partner agent", "huaxin-bpo.support.001"),
        ("admin", "admin"),
        ("CRM integration", "crm"),
    ];
    for (what, id) in sign_ins {
        let token = if id == "admin" {
            admin.trim().to_owned()
        } else {
            token_of(id)
        };
        assert!(
            stdout.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.join(" ") == format!("{what} {id} {token}")
            }),
            "no sign-in line for {what}: {stdout}"
        );
    }
    // A customer access link for a customer of the printed agent's open case.
    let agent = staff
        .iter()
        .find(|s| s["id"] == "custos.support.001")
        .unwrap();
    let customer = agent["cases"][0][1].as_str().unwrap();
    assert!(
        stdout.lines().any(|l| l.contains(&format!(
            "customer link:      {base}/customer/enter?link=cl1.{customer}."
        )) && l.contains(" UTC)")),
        "{stdout}"
    );
    // The short working day raised alerts of at least three kinds.
    let alerts_line = stdout.lines().find(|l| l.contains("alerts: ")).unwrap();
    for kind in ["canary_hit", "risk_step_up", "risk_lower_quota"] {
        assert!(alerts_line.contains(kind), "{alerts_line}");
    }
    let orgs: std::collections::BTreeSet<_> =
        staff.iter().map(|s| s["org"].as_str().unwrap()).collect();
    assert!(
        orgs.len() >= 4,
        "the company and at least 3 partners: {orgs:?}"
    );
    for role in ["support", "sales", "team_lead", "security_analyst", "admin"] {
        assert!(staff.iter().any(|s| s["role"] == role), "{role}");
    }
    assert!(
        staff
            .iter()
            .filter(|s| !s["cases"].as_array().unwrap().is_empty())
            .count()
            >= 100
    );

    // Serve the same data and exercise it, collecting every denied body.
    let log_path = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = announced_url(&mut child).unwrap();
    let c = Client::new(&base);
    let company = demo_data::generate(CUSTOMERS, DEMO_SEED);
    let agents: Vec<&serde_json::Value> = staff
        .iter()
        .filter(|s| !s["cases"].as_array().unwrap().is_empty())
        .collect();
    let mut denied = Vec::new();
    let mut allowed = Vec::new();
    for (n, agent) in agents.iter().take(40).enumerate() {
        let token = agent["token"].as_str().unwrap();
        let case = &agent["cases"][0];
        let (case_id, customer) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
        assert_eq!(c.view(token, customer, case_id).await.status, 200);
        let other = agents[(n + 1) % agents.len()]["cases"][0][1]
            .as_str()
            .unwrap();
        let answers = vec![
            c.view(token, other, case_id).await,
            c.reveal(token, other, case_id, &["phone", "email", "name"]).await,
            c.get(token, &format!("/v1/customers?phone={}", company.customers[n].phone)).await,
            c.post(token, "/v1/customers", json!({"name": company.customers[n].name, "phone": company.customers[n].phone})).await,
            c.post(token, "/v1/customers", json!({"name": company.customers[n].name, "phone": format!("{}99", company.customers[n].phone)})).await,
            c.get("cst_invalid", &format!("/v1/customers?email={}", company.customers[n].email)).await,
        ];
        for a in answers {
            if a.status >= 400 || a.body["results"] == json!([]) {
                denied.push(a.text);
            }
        }
        // An allowed reveal, so the log has seen a request that carried plaintext out.
        if agent["org"] == "custos" {
            let shown = c
                .reveal(token, customer, case_id, &["phone", "email", "name"])
                .await;
            assert_eq!(shown.status, 200);
            allowed.push(shown.text);
        }
    }
    assert!(denied.len() >= 150, "{}", denied.len());

    // The alerts are in the store, about people none of the printed sign-ins is.
    let analyst = token_of("custos.security_analyst.001");
    let r = c.get(&analyst, "/v1/alerts").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let alerts = r.body["alerts"].as_array().unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        alerts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
    for a in alerts {
        assert!(!sign_ins.iter().any(|(_, id)| a["staff_id"] == *id), "{a}");
    }
    assert!(
        alerts
            .iter()
            .any(|a| a["kind"] == "canary_hit" && a["action"] == "suspended"),
        "{alerts:?}"
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();

    let mut haystacks: Vec<(String, Vec<u8>)> =
        vec![("server log".into(), std::fs::read(&log_path).unwrap())];
    // Every stored file, the ledger's tiles and checkpoints included.
    let mut files = Vec::new();
    collect_files(&data, &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(data.join("ledger/tile/entries")))
    );
    for path in files {
        haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    haystacks.push(("denied responses".into(), denied.join("\n").into_bytes()));
    let phones: HashSet<&str> = company.customers.iter().map(|c| c.phone.as_str()).collect();
    let emails: HashSet<&str> = company.customers.iter().map(|c| c.email.as_str()).collect();
    let names: HashSet<&str> = company.customers.iter().map(|c| c.name.as_str()).collect();
    // Positive control: the detectors do find the values in allowed reveals.
    let shown = allowed.join("\n");
    assert!(contains_phone(&shown, &phones) && contains_email(&shown, &emails));
    assert!(names.iter().any(|n| shown.contains(n)));
    for (what, bytes) in &haystacks {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !contains_phone(&text, &phones),
            "{what} contains a demo phone number"
        );
        assert!(
            !contains_email(&text, &emails),
            "{what} contains a demo email"
        );
        // Only a few hundred distinct names exist, so a plain scan is affordable.
        for name in &names {
            assert!(!text.contains(name), "{what} contains a demo customer name");
        }
    }
}

/// Whether any 11-digit window of a digit run is a demo phone number (national or
/// inside +86…): one pass instead of one scan per number.
fn contains_phone(text: &str, phones: &HashSet<&str>) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 11)
        .any(|run| (0..=run.len() - 11).any(|i| phones.contains(&run[i..i + 11])))
}

/// Whether any address-shaped token around an `@` is a demo email.
fn contains_email(text: &str, emails: &HashSet<&str>) -> bool {
    let is_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    text.split(|c: char| !is_part(c))
        .filter(|token| token.contains('@'))
        .any(|token| {
            (0..token.len()).any(|i| token.is_char_boundary(i) && emails.contains(&token[i..]))
        })
}
