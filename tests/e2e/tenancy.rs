//! Tenancy over real HTTP: each client sees only its payments, keys carry scopes and may
//! be digests, redirect hosts are checked, several IVPAY accounts each confirm their own
//! payments, and no silent sandbox on a shared address.

use std::time::Duration;

use ivpay_app::{App, ClientSettings, KeySettings, Settings};
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{Backend, fresh_db, spawn_app_against, spawn_app_with};

on_both_backends!(
    another_clients_payment_is_not_found_anywhere,
    keys_carry_scopes_and_may_be_digests,
    redirect_hosts_outside_a_clients_list_are_refused,
    each_account_creates_and_confirms_its_own_payments,
    refreshes_over_the_budget_answer_the_stored_state,
);

const SHOP_KEY: &str = "shop-key-0123456789";
const OTHER_KEY: &str = "other-key-0123456789";
const ORDER: &str = r#"{"amount_fiat":"10.50","currency_fiat":"USD","foreign_id":"order-7","url_success":"https://shop.example/ok"}"#;

fn two_clients(s: &mut Settings) {
    s.clients
        .insert("shop".parse().expect("id"), ClientSettings::from(SHOP_KEY));
    s.clients.insert(
        "other".parse().expect("id"),
        ClientSettings::from(OTHER_KEY),
    );
}

fn sha256_key(key: &str) -> SecretString {
    SecretString::from(format!("sha256:{:x}", Sha256::digest(key.as_bytes())))
}

async fn another_clients_payment_is_not_found_anywhere(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app_with(db.url(), two_clients).await;
    let (status, created) = app
        .send_as(SHOP_KEY, Method::POST, "/payment/create", Some(ORDER))
        .await;
    assert_eq!(status, 200, "{created}");
    let ours = created["data"]["id"].as_str().expect("id").to_owned();
    let theirs = created["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned();
    let missing = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d";

    for path in [
        format!("/payment/{ours}"),
        format!("/payment/{theirs}"),
        format!("/payment/{theirs}?refresh=true"),
        format!("/payment/{ours}/events"),
    ] {
        let (status, body) = app.send_as(OTHER_KEY, Method::GET, &path, None).await;
        let (missing_status, missing_body) = app
            .send_as(
                OTHER_KEY,
                Method::GET,
                &path.replace(&ours, missing).replace(&theirs, missing),
                None,
            )
            .await;
        assert_eq!(
            (status, &body["code"]),
            (404, &Value::from("not_found")),
            "{path}: {body}"
        );
        assert_eq!(
            (status, &body["code"]),
            (missing_status, &missing_body["code"]),
            "another client's payment answers as a missing one: {path}"
        );
        assert!(!body.to_string().contains("10.50"), "{body}");
        let (mine, body) = app.send_as(SHOP_KEY, Method::GET, &path, None).await;
        assert_eq!(mine, 200, "the owner reads it: {path} {body}");
    }
    let (_, listed) = app.send_as(OTHER_KEY, Method::GET, "/payments", None).await;
    assert_eq!(listed["data"]["items"], Value::Array(vec![]), "{listed}");
    let (_, listed) = app.send_as(SHOP_KEY, Method::GET, "/payments", None).await;
    assert_eq!(
        listed["data"]["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // One idempotency key, two clients: two payments, never the other's replayed.
    let keyed = |key: &'static str| {
        let http = app.http.clone();
        let url = format!("{}/payment/create", app.base);
        async move {
            let res = http
                .post(url)
                .header("X-API-KEY", key)
                .header("Idempotency-Key", "order-7-key")
                .header("Content-Type", "application/json")
                .body(ORDER)
                .send()
                .await
                .expect("answers");
            let replayed = res.headers().contains_key("idempotent-replayed");
            let body: Value = res.json().await.expect("JSON");
            (body["data"]["id"].as_str().map(str::to_owned), replayed)
        }
    };
    let (shop_id, _) = keyed(SHOP_KEY).await;
    let (other_id, replayed) = keyed(OTHER_KEY).await;
    assert!(shop_id.is_some() && other_id.is_some());
    assert_ne!(shop_id, other_id, "each client's key is its own");
    assert!(!replayed);
    app.stop().await;
}

async fn keys_carry_scopes_and_may_be_digests(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let scoped = |key: &str, scopes: &[&str]| KeySettings {
        key: sha256_key(key),
        scopes: scopes.iter().map(|s| s.parse().expect("scope")).collect(),
    };
    let app = spawn_app_with(db.url(), |s| {
        let mut shop = ClientSettings::from(SHOP_KEY);
        shop.keys = vec![
            scoped("writer-key", &["create"]),
            scoped("reader-key", &["read"]),
            scoped("ops-key", &["admin"]),
            // Rotation: the old and the new key both work until the old one is removed.
            scoped("old-key", &["create", "read"]),
            scoped("new-key", &["create", "read"]),
        ];
        s.clients.insert("shop".parse().expect("id"), shop);
    })
    .await;
    let (status, created) = app
        .send_as("writer-key", Method::POST, "/payment/create", Some(ORDER))
        .await;
    assert_eq!(status, 200, "a digest-configured key works: {created}");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    let read = format!("/payment/{id}");
    let link = format!("/admin/payments/{id}/link");
    for (key, method, path, body, expected) in [
        (
            "writer-key",
            Method::GET,
            read.as_str(),
            None,
            (403, "forbidden"),
        ),
        (
            "writer-key",
            Method::GET,
            "/payments",
            None,
            (403, "forbidden"),
        ),
        (
            "reader-key",
            Method::POST,
            "/payment/create",
            Some(ORDER),
            (403, "forbidden"),
        ),
        (
            "reader-key",
            Method::POST,
            link.as_str(),
            Some("{}"),
            (403, "forbidden"),
        ),
        (
            "ops-key",
            Method::GET,
            read.as_str(),
            None,
            (403, "forbidden"),
        ),
        (
            "ops-key",
            Method::POST,
            link.as_str(),
            Some(r#"{"payment_id":"x"}"#),
            (409, "outcome_settled"),
        ),
        ("reader-key", Method::GET, read.as_str(), None, (200, "")),
        ("old-key", Method::GET, read.as_str(), None, (200, "")),
        ("new-key", Method::GET, read.as_str(), None, (200, "")),
        // The digest itself is not a key.
        (
            &*format!("sha256:{:x}", Sha256::digest(b"reader-key")),
            Method::GET,
            read.as_str(),
            None,
            (401, "unauthorized"),
        ),
        (
            SHOP_KEY,
            Method::GET,
            read.as_str(),
            None,
            (401, "unauthorized"),
        ),
    ] {
        let (status, answer) = app.send_as(key, method.clone(), path, body).await;
        let code = answer["code"].as_str().unwrap_or_default();
        assert_eq!((status, code), expected, "{key} {method} {path}: {answer}");
        if status == 403 {
            assert_eq!(answer["success"], false, "403 in the envelope: {answer}");
            assert!(
                answer["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("scope")),
                "{answer}"
            );
        }
    }
    app.stop().await;
}

async fn redirect_hosts_outside_a_clients_list_are_refused(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app_with(db.url(), |s| {
        two_clients(s);
        let shop = s
            .clients
            .get_mut(&"shop".parse().expect("id"))
            .expect("shop");
        shop.redirect_hosts = vec![
            "shop.example".parse().expect("host"),
            "*.shop.example".parse().expect("host"),
        ];
    })
    .await;
    for (body, expected) in [
        (ORDER.to_owned(), (200, None)),
        (
            ORDER.replace("https://shop.example/ok", "https://eu.shop.example/ok"),
            (200, None),
        ),
        (
            ORDER.replace("https://shop.example/ok", "https://evil.example/ok"),
            (400, Some("url_success")),
        ),
        (
            r#"{"amount_fiat":"1","currency_fiat":"USD","url_failed":"https://shop.example.evil.example/"}"#.to_owned(),
            (400, Some("url_failed")),
        ),
    ] {
        let (status, answer) = app
            .send_as(SHOP_KEY, Method::POST, "/payment/create", Some(&body))
            .await;
        assert_eq!(
            (status, answer["field"].as_str()),
            expected,
            "{body}: {answer}"
        );
    }
    // A client without a list may send customers anywhere.
    let (status, answer) = app
        .send_as(
            OTHER_KEY,
            Method::POST,
            "/payment/create",
            Some(&ORDER.replace("https://shop.example/ok", "https://evil.example/ok")),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    app.stop().await;
}

async fn refreshes_over_the_budget_answer_the_stored_state(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app_with(db.url(), |s| {
        two_clients(s);
        s.ivpay.refresh_per_client_per_second = std::num::NonZeroU32::new(1);
        s.ivpay.refresh_per_client_burst = std::num::NonZeroU32::new(2).expect("not zero");
    })
    .await;
    let mut refresh_paths = Vec::new();
    for key in [SHOP_KEY, OTHER_KEY] {
        let (status, created) = app
            .send_as(key, Method::POST, "/payment/create", Some(ORDER))
            .await;
        assert_eq!(status, 200, "{created}");
        let id = created["data"]["id"].as_str().expect("id").to_owned();
        refresh_paths.push((key, format!("/payment/{id}?refresh=true")));
    }
    let (shop, shop_path) = &refresh_paths[0];
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, read) = app.send_as(shop, Method::GET, shop_path, None).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(
            read["data"]["status"], "CREATED",
            "the stored state: {read}"
        );
        seen.push(
            read["data"]["refresh"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(seen[..2], ["done", "done"], "{seen:?}");
    assert!(seen[2..].iter().all(|r| r == "skipped"), "{seen:?}");
    // Another client's budget is its own.
    let (other, other_path) = &refresh_paths[1];
    let (_, read) = app.send_as(other, Method::GET, other_path, None).await;
    assert_eq!(read["data"]["refresh"], "done", "{read}");
    // Without refresh, nothing is said about it.
    let (_, read) = app
        .send_as(
            shop,
            Method::GET,
            shop_path.trim_end_matches("?refresh=true"),
            None,
        )
        .await;
    assert!(read["data"].get("refresh").is_none(), "{read}");
    app.stop().await;
}

const MAIN_MERCHANT: &str = "main-merchant-key";
const POS2_MERCHANT: &str = "pos2-merchant-key";

async fn each_account_creates_and_confirms_its_own_payments(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let upstream = Sandbox::spawn(SandboxConfig {
        merchants: vec![
            MerchantConfig::new(MAIN_MERCHANT),
            MerchantConfig::new(POS2_MERCHANT),
        ],
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let app = spawn_app_against(db.url(), &upstream, |s| {
        s.ivpay.api_key = Some(MAIN_MERCHANT.into());
        s.ivpay.accounts.insert(
            "pos-2".parse().expect("account"),
            ivpay_app::AccountSettings {
                api_key: POS2_MERCHANT.into(),
            },
        );
        two_clients(s);
        s.clients
            .get_mut(&"other".parse().expect("id"))
            .expect("other")
            .account = "pos-2".parse().expect("account");
    })
    .await;
    // Webhooks of both merchants go to the service; each echoes its own key.
    for key in [MAIN_MERCHANT, POS2_MERCHANT] {
        upstream
            .sandbox()
            .set_merchant(
                MerchantConfig::new(key).with_webhook(format!("{}/webhooks/ivpay", app.base)),
            )
            .expect("webhook URL");
    }
    let (_, readyz) = app.send_as("", Method::GET, "/readyz", None).await;
    assert_eq!(readyz["data"]["mode"], "live", "{readyz}");

    let mut paid = Vec::new();
    for key in [SHOP_KEY, OTHER_KEY] {
        let (status, created) = app
            .send_as(key, Method::POST, "/payment/create", Some(ORDER))
            .await;
        assert_eq!(status, 200, "{created}");
        let payment_id = created["data"]["payment_id"]
            .as_str()
            .expect("id")
            .to_owned();
        upstream
            .sandbox()
            .set_status(&payment_id, ivpay_domain::PaymentStatus::Paid, false)
            .expect("paid at IVPAY");
        // Made through the client's own account: only that merchant's key sees it.
        let merchant = if key == SHOP_KEY {
            MAIN_MERCHANT
        } else {
            POS2_MERCHANT
        };
        for (asking, expected) in [(MAIN_MERCHANT, 404), (POS2_MERCHANT, 404), (merchant, 200)] {
            let expected = if asking == merchant { 200 } else { expected };
            let status = app
                .http
                .get(format!("{}/payment/{payment_id}", upstream.base_url()))
                .header("X-API-KEY", asking)
                .send()
                .await
                .expect("sandbox answers")
                .status()
                .as_u16();
            assert_eq!(status, expected, "{payment_id} asked with {asking}");
        }
        paid.push((key, payment_id));
    }
    // The sandbox answers a GET only for the merchant that created the payment: PAID
    // here means the webhook was confirmed with that payment's own account key.
    for (key, payment_id) in &paid {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, v) = app
                .send_as(key, Method::GET, &format!("/payment/{payment_id}"), None)
                .await;
            if v["data"]["status"] == "PAID" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{key}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, events) = app
            .send_as(
                key,
                Method::GET,
                &format!("/payment/{payment_id}/events"),
                None,
            )
            .await;
        let sources: Vec<_> = events["data"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["outcome"] == "applied")
            .map(|e| e["source"].clone())
            .collect();
        assert!(sources.contains(&Value::from("webhook")), "{events}");
    }
    app.stop().await;
    let _ = upstream.shutdown().await;
}

#[tokio::test]
async fn no_silent_sandbox_on_a_shared_address() {
    let db = ivpay_persistence::testing::TestDatabase::sqlite();
    let shared = |adjust: fn(&mut Settings)| {
        let mut s = Settings::default();
        s.server.bind = "0.0.0.0:0".parse().expect("address");
        s.database.url = db.url().parse().expect("url");
        adjust(&mut s);
        s
    };
    let refused = App::build(shared(|_| {})).await.err().expect("refused");
    let text = refused.to_string();
    for hint in [
        "ivpay.api_key",
        "127.0.0.1",
        "sandbox.allow_shared_address",
        "no money",
    ] {
        assert!(text.contains(hint), "{hint}: {text}");
    }
    // Opted in, still no public development key on a shared address.
    let refused = App::build(shared(|s| s.sandbox.allow_shared_address = true))
        .await
        .err()
        .expect("refused without clients");
    assert!(refused.to_string().contains("clients"), "{refused}");
    let app = App::build(shared(|s| {
        s.sandbox.allow_shared_address = true;
        s.clients
            .insert("shop".parse().expect("id"), ClientSettings::from(SHOP_KEY));
    }))
    .await
    .expect("opted in, with a client");
    assert_eq!(app.info().mode, "sandbox");
    assert_eq!(app.info().dev_client_key, None);

    // On loopback the zero-config development setup stays.
    let mut s = Settings::default();
    s.server.bind = "127.0.0.1:0".parse().expect("address");
    s.database.url = db.url().parse().expect("url");
    let local = App::build(s).await.expect("loopback sandbox");
    assert_eq!(local.info().mode, "sandbox");
    assert_eq!(local.info().dev_client_key, Some(ivpay_app::DEV_CLIENT_KEY));
}
