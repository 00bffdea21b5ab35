//! The operator's commands that talk to a running service over its API (the way the
//! Stripe CLI talks to Stripe): `payments`, `notifications list|get|redeliver`. A table on
//! a terminal, `--json` (the answer's `data`) for scripts.

use std::io::IsTerminal;
use std::net::SocketAddr;

use secrecy::ExposeSecret;
use serde_json::Value;

use crate::settings::Settings;
use crate::startup::{DEV_CLIENT_KEY, StartupError};

/// Where the service is and which key to use: what every remote command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// The running service; default: `server.bind` of the settings.
    #[arg(long, global = true)]
    pub service: Option<reqwest::Url>,
    /// The key to call it with (`X-API-KEY`): a client's key for payments, one with the
    /// admin scope for `unknown`, `webhooks` and `notifications`. Default: `admin.key` of the settings, or the
    /// development key in development.
    #[arg(long, env = "IVPAY_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// Print the answer's data as JSON (for scripts) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

pub(crate) fn fail(what: impl std::fmt::Display) -> StartupError {
    StartupError::Config(what.to_string())
}

/// The service's URL from where it binds (a wildcard address is reached on loopback).
pub(crate) fn service_url(bind: SocketAddr) -> String {
    let host = match bind {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_owned(),
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!("http://{host}:{}", bind.port())
}

/// A running service, called with one key.
pub(crate) struct Remote {
    http: reqwest::Client,
    service: String,
    key: String,
}

impl Remote {
    /// From the command line, falling back on the settings.
    pub(crate) fn new(settings: &Settings, args: &RemoteArgs) -> Result<Self, StartupError> {
        let service = args
            .service
            .as_ref()
            .map_or_else(|| service_url(settings.server.bind), ToString::to_string);
        let key = match (&args.key, &settings.admin.key) {
            (Some(k), _) => k.clone(),
            (None, Some(k)) if !k.expose_secret().starts_with("sha256:") => {
                k.expose_secret().to_owned()
            }
            (None, _) if settings.clients.is_empty() => DEV_CLIENT_KEY.to_owned(),
            (None, _) => return Err(fail("give a key: --key or IVPAY_KEY")),
        };
        // reqwest is built without a crypto provider (crates.md): ring, as the adapter's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(fail)?;
        Ok(Self {
            http,
            service: service.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// `GET path`: the answer's `data`.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, StartupError> {
        self.call(self.http.get(format!("{}{path}", self.service)), path)
            .await
    }

    /// `POST path` with `body` sent as it is, as JSON: the answer's `data`.
    pub(crate) async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<Value, StartupError> {
        let request = self
            .http
            .post(format!("{}{path}", self.service))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.call(request, path).await
    }

    /// `POST path` with a JSON body (and an `Idempotency-Key`, if given): the answer's
    /// `data`.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, StartupError> {
        let mut request = self.http.post(format!("{}{path}", self.service)).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.call(request, path).await
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Value, StartupError> {
        let service = &self.service;
        let answer = request
            .header("X-API-KEY", &self.key)
            .send()
            .await
            .map_err(|e| fail(format!("{service}{path}: is the service running? {e}")))?;
        let status = answer.status();
        let envelope: Value = answer
            .json()
            .await
            .map_err(|e| fail(format!("{service}{path}: {status}: {e}")))?;
        if !status.is_success() {
            let field = envelope["field"]
                .as_str()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            return Err(fail(format!(
                "{path}: {status}: {}{field}",
                envelope["error"].as_str().unwrap_or("no message")
            )));
        }
        Ok(envelope["data"].clone())
    }
}

/// `text` as one URL path segment or query value: unreserved characters as they are, every
/// other byte percent-encoded.
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the `payments` and `notifications` commands do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PaymentsCommand {
    /// Create a payment (as `POST /payment/create`).
    Create {
        /// The amount, e.g. `10.50`.
        #[arg(long)]
        amount: String,
        /// The ISO 4217 currency, e.g. `USD`.
        #[arg(long)]
        currency: String,
        /// Your reference.
        #[arg(long)]
        foreign_id: Option<String>,
        /// Makes a repeat of this command create nothing more.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// One payment, by IVPAY's id or ours.
    Get {
        /// IVPAY's id or ours.
        id: String,
        /// Ask IVPAY first.
        #[arg(long)]
        refresh: bool,
    },
    /// Payments, newest first.
    List {
        /// Only this status (CREATED, PENDING, PAID, TIMEOUT).
        #[arg(long)]
        status: Option<String>,
        /// Only this reference.
        #[arg(long)]
        foreign_id: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Every status report received for a payment, applied or not.
    Events {
        /// IVPAY's id or ours.
        id: String,
    },
}

const PAYMENT_COLUMNS: &[&str] = &[
    "id",
    "payment_id",
    "foreign_id",
    "amount_fiat",
    "currency_fiat",
    "status",
    "outcome",
    "created_at",
];

/// Runs a `payments` command.
///
/// # Errors
///
/// [`StartupError::Config`] with the service's answer when it refuses.
pub(crate) async fn payments(
    settings: &Settings,
    remote: &RemoteArgs,
    action: PaymentsCommand,
) -> Result<(), StartupError> {
    let service = Remote::new(settings, remote)?;
    match action {
        PaymentsCommand::Create {
            amount,
            currency,
            foreign_id,
            idempotency_key,
        } => {
            let body = serde_json::json!({
                "amount_fiat": amount,
                "currency_fiat": currency,
                "foreign_id": foreign_id,
            });
            let data = service
                .post("/payment/create", &body, idempotency_key.as_deref())
                .await?;
            show(
                &data,
                &["id", "payment_id", "payment_url", "status"],
                remote.json,
            );
        }
        PaymentsCommand::Get { id, refresh } => {
            let path = format!(
                "/payment/{}{}",
                enc(&id),
                if refresh { "?refresh=true" } else { "" }
            );
            show(&service.get(&path).await?, PAYMENT_COLUMNS, remote.json);
        }
        PaymentsCommand::List {
            status,
            foreign_id,
            limit,
        } => {
            let mut path = format!("/payments?limit={limit}");
            if let Some(s) = status {
                path.push_str(&format!("&status={}", enc(&s)));
            }
            if let Some(f) = foreign_id {
                path.push_str(&format!("&foreign_id={}", enc(&f)));
            }
            let data = service.get(&path).await?;
            if remote.json {
                show(&data, &[], true);
            } else {
                show(&data["items"], PAYMENT_COLUMNS, false);
            }
        }
        PaymentsCommand::Events { id } => {
            let data = service
                .get(&format!("/payment/{}/events", enc(&id)))
                .await?;
            show(
                &data,
                &["received_at", "source", "from", "to", "outcome"],
                remote.json,
            );
        }
    }
    Ok(())
}

/// `notifications list|get|redeliver`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LogCommand {
    /// The delivery log, newest first.
    List {
        /// To this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
        /// About this payment (our id).
        #[arg(long)]
        payment: Option<String>,
        /// In this state: pending, delivered, failed, skipped.
        #[arg(long)]
        state: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One notification with every attempt.
    Get {
        /// The notification's id.
        id: String,
    },
    /// Send a notification again, now.
    Redeliver {
        /// The notification's id.
        id: String,
    },
}

const NOTIFICATION_COLUMNS: &[&str] = &[
    "id",
    "type",
    "payment",
    "endpoint",
    "state",
    "attempts",
    "last_status",
    "created_at",
];

/// Runs a delivery-log command.
///
/// # Errors
///
/// [`StartupError::Config`] with the service's answer when it refuses.
pub(crate) async fn log(
    settings: &Settings,
    remote: &RemoteArgs,
    action: LogCommand,
) -> Result<(), StartupError> {
    let service = Remote::new(settings, remote)?;
    match action {
        LogCommand::List {
            endpoint,
            payment,
            state,
            limit,
        } => {
            let mut path = format!("/admin/notifications?limit={limit}");
            for (name, value) in [
                ("endpoint", endpoint),
                ("payment", payment),
                ("state", state),
            ] {
                if let Some(v) = value {
                    path.push_str(&format!("&{name}={}", enc(&v)));
                }
            }
            let data = service.get(&path).await?;
            if remote.json {
                show(&data, &[], true);
            } else {
                show(&data["items"], NOTIFICATION_COLUMNS, false);
            }
        }
        LogCommand::Get { id } => {
            let data = service
                .get(&format!("/admin/notifications/{}", enc(&id)))
                .await?;
            if remote.json {
                show(&data, &[], true);
            } else {
                show(&data, NOTIFICATION_COLUMNS, false);
                show(
                    &data["attempt_log"],
                    &["number", "at", "status", "latency_ms", "error", "excerpt"],
                    false,
                );
            }
        }
        LogCommand::Redeliver { id } => {
            let data = service
                .post(
                    &format!("/admin/notifications/{}/redeliver", enc(&id)),
                    &serde_json::json!({}),
                    None,
                )
                .await?;
            show(&data, NOTIFICATION_COLUMNS, remote.json);
        }
    }
    Ok(())
}

/// Prints `data` as JSON, or as a table of `columns` (one row per item of an array, or
/// one for an object).
#[allow(clippy::print_stdout, reason = "the operator reads the answer")]
pub(crate) fn show(data: &Value, columns: &[&str], json: bool) {
    if json || !std::io::stdout().is_terminal() && std::env::var_os("IVPAY_TABLES").is_none() {
        println!(
            "{}",
            serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string())
        );
        return;
    }
    print!("{}", table(data, columns));
}

/// The text of a table: a header row, then one row per item, columns padded.
pub(crate) fn table(data: &Value, columns: &[&str]) -> String {
    let items: Vec<&Value> = match data {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let cell = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(&item[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_values_are_percent_encoded_byte_by_byte() {
        assert_eq!(enc("order 7/№"), "order%207%2F%E2%84%96");
        assert_eq!(enc("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn a_table_pads_columns_and_shows_nulls_as_dashes() {
        let data = serde_json::json!([
            {"id": "a", "status": "PAID", "amount_fiat": "10.50"},
            {"id": "bbbb", "status": null, "amount_fiat": "1.00"},
        ]);
        assert_eq!(
            table(&data, &["id", "status", "amount_fiat"]),
            "ID    STATUS  AMOUNT_FIAT\na     PAID    10.50\nbbbb  -       1.00\n"
        );
        assert_eq!(
            table(&serde_json::json!([]), &["id", "status"]),
            "ID  STATUS\n(none)\n",
            "an empty list says so"
        );
    }
}
