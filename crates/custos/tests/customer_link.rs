//! `custos customer link`: a customer access link issued through the API of a real
//! server (so the issuance is in the ledger), and every refusal with its stable code.
//! A client of the API: one backend is enough (the API's own tests cover both).

mod common;

use common::*;

/// Runs `custos customer link` against `server` with `args` after the customer id.
fn link(server: &Server, customer: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["customer", "link", customer, "--url", &server.base];
    all.extend(args);
    custos(&all)
}

/// The stable code of a failed run, from its `error[CODE]: …` line.
fn failure(o: &std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let err = stderr(o);
    err.strip_prefix("error[")
        .and_then(|rest| rest.split_once(']'))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_else(|| panic!("no error code in {err:?}"))
}

#[tokio::test]
async fn issues_links_through_the_api_and_refuses_with_stable_codes() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;

    // The CRM integration issues a link; it names the customer and says when it expires.
    let o = link(&server, &w.customer, &["--token", &w.crm]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let url = out.lines().next().unwrap();
    assert!(
        url.starts_with(&format!("{}/customer/enter?link=cl1.", server.base)),
        "{out}"
    );
    assert!(url.contains(&w.customer), "{out}");
    let expires = out.lines().nth(1).unwrap();
    assert!(
        expires.starts_with("expires 20") && expires.ends_with(" UTC"),
        "{out}"
    );

    // An admin, with the token in a file (as `admin.token` is) and the longest validity.
    let token_file = server.data_dir().join("admin.token");
    let o = link(
        &server,
        &w.customer,
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--hours",
            "168",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(stdout(&o).lines().next(), Some(url), "a new link each time");

    // Both issuances are in the ledger, with the customer as their target.
    let records = access_records(&server, "").await;
    let issued: Vec<_> = records
        .iter()
        .filter(|r| r["action"] == "issue_customer_link" && r["decision"] == "allow")
        .map(|r| {
            (
                r["staff_id"].as_str().unwrap(),
                r["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        issued,
        [("crm", w.customer.as_str()), ("admin", w.customer.as_str())]
    );

    // Refusals, each with its code and a non-zero exit.
    let o = link(&server, &w.customer, &["--token", &w.agent]);
    assert_eq!(failure(&o), "forbidden");
    let o = link(&server, "cus_0123456789abcdef", &["--token", &w.crm]);
    assert_eq!(failure(&o), "not_found");
    let o = link(&server, &w.customer, &["--token", "cst_not_a_token"]);
    assert_eq!(failure(&o), "unauthenticated");
    for hours in ["0", "169", "720"] {
        let o = link(&server, &w.customer, &["--token", &w.crm, "--hours", hours]);
        assert_eq!(failure(&o), "invalid_link_hours");
    }
    let o = link(&server, "../staff", &["--token", &w.crm]);
    assert_eq!(failure(&o), "invalid_id");
    let o = link(&server, &w.customer, &[]);
    assert_eq!(failure(&o), "usage");
    let o = custos(&[
        "customer",
        "link",
        &w.customer,
        "--url",
        "http://127.0.0.1:1",
        "--token",
        &w.crm,
    ]);
    assert_eq!(failure(&o), "server_unreachable");
    // None of the refusals issued a link.
    let records = access_records(&server, "").await;
    assert_eq!(
        records
            .iter()
            .filter(|r| r["action"] == "issue_customer_link" && r["decision"] == "allow")
            .count(),
        2
    );
}
