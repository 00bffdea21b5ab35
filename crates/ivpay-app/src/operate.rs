//! The operator's commands for what needs a person: `unknown list|link|abandon` (payments
//! whose create outcome is open) and `webhooks inbox|replay`, over a running service's
//! admin API (a key with the admin scope).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::remote::{Remote, RemoteArgs, enc, fail, show};
use crate::settings::Settings;
use crate::startup::StartupError;

/// `unknown` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum UnknownCommand {
    /// Payments whose create outcome is open (*unknown*, or *initiated* with no answer),
    /// every client's, newest first.
    List {
        /// Only this client's.
        #[arg(long)]
        client: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Link one to the IVPAY payment it made, once IVPAY's `GET` confirms that payment
    /// exists and carries its foreign id.
    Link {
        /// Our id of the payment.
        id: String,
        /// IVPAY's id of the payment it made.
        payment_id: String,
    },
    /// State that IVPAY holds no payment for it: it ends, and its idempotency key is
    /// released so the client may send the request again.
    Abandon {
        /// Our id of the payment.
        id: String,
    },
}

const UNKNOWN_COLUMNS: &[&str] = &[
    "id",
    "client",
    "foreign_id",
    "amount_fiat",
    "currency_fiat",
    "outcome",
    "outcome_reason",
    "created_at",
];

/// Runs an `unknown` command.
///
/// # Errors
///
/// [`StartupError::Config`] with the service's answer when it refuses.
pub(crate) async fn unknown(
    settings: &Settings,
    remote: &RemoteArgs,
    action: UnknownCommand,
) -> Result<(), StartupError> {
    let service = Remote::new(settings, remote)?;
    match action {
        UnknownCommand::List { client, limit } => {
            let mut path = format!("/admin/payments?unresolved=true&limit={limit}");
            if let Some(c) = client {
                path.push_str(&format!("&client={}", enc(&c)));
            }
            let data = service.get(&path).await?;
            if remote.json {
                show(&data, &[], true);
            } else {
                show(&data["items"], UNKNOWN_COLUMNS, false);
            }
        }
        UnknownCommand::Link { id, payment_id } => {
            let data = service
                .post(
                    &format!("/admin/payments/{}/link", enc(&id)),
                    &json!({ "payment_id": payment_id }),
                    None,
                )
                .await?;
            show(&data, LINKED_COLUMNS, remote.json);
        }
        UnknownCommand::Abandon { id } => {
            let data = service
                .post(
                    &format!("/admin/payments/{}/abandon", enc(&id)),
                    &json!({}),
                    None,
                )
                .await?;
            show(&data, LINKED_COLUMNS, remote.json);
        }
    }
    Ok(())
}

const LINKED_COLUMNS: &[&str] = &["id", "payment_id", "status", "outcome", "outcome_reason"];

/// `webhooks` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum WebhooksCommand {
    /// IVPAY's webhooks waiting for IVPAY's confirmation, oldest first.
    Inbox {
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Replay webhooks through the service's own webhook handling (each is confirmed with
    /// IVPAY's `GET` before anything is applied, so a replay is always safe): raw bodies
    /// from files (`-` for standard input; a file holds one JSON body, or one per line),
    /// or, with `--payment`, the bodies stored with a payment's history.
    Replay {
        /// Files of raw webhook bodies, as IVPAY posted them.
        #[arg(required_unless_present = "payment", conflicts_with = "payment")]
        files: Vec<PathBuf>,
        /// Replay the webhooks stored with this payment's history (our id).
        #[arg(long)]
        payment: Option<String>,
        /// The IVPAY account the raw webhooks came to (needed when there are several).
        #[arg(long, conflicts_with = "payment")]
        account: Option<String>,
    },
}

const INBOX_COLUMNS: &[&str] = &[
    "id",
    "account",
    "payment_id",
    "claimed_status",
    "received_at",
    "attempts",
    "next_attempt_at",
];

/// Runs a `webhooks` command.
///
/// # Errors
///
/// [`StartupError::Config`] with the service's answer when it refuses, or when any of
/// several replays failed (after trying them all).
pub(crate) async fn webhooks(
    settings: &Settings,
    remote: &RemoteArgs,
    action: WebhooksCommand,
) -> Result<(), StartupError> {
    let service = Remote::new(settings, remote)?;
    match action {
        WebhooksCommand::Inbox { limit } => {
            let data = service
                .get(&format!("/admin/webhooks/inbox?limit={limit}"))
                .await?;
            show(&data, INBOX_COLUMNS, remote.json);
        }
        WebhooksCommand::Replay {
            payment: Some(id), ..
        } => {
            let data = service
                .post(
                    &format!("/admin/payments/{}/replay", enc(&id)),
                    &json!({}),
                    None,
                )
                .await?;
            show(&data, &["id", "replayed", "outcomes"], remote.json);
        }
        WebhooksCommand::Replay { files, account, .. } => {
            let bodies = read_bodies(&files)?;
            let path = match account {
                Some(a) => format!("/admin/webhooks/replay?account={}", enc(&a)),
                None => "/admin/webhooks/replay".to_owned(),
            };
            let mut progress = Progress::new(bodies.len());
            let mut results = Vec::with_capacity(bodies.len());
            for (source, body) in bodies {
                let result = service.post_raw(&path, body).await;
                progress.step(result.is_ok());
                results.push(match result {
                    Ok(data) => json!({ "source": source, "outcome": data["outcome"] }),
                    Err(e) => json!({ "source": source, "error": e.to_string() }),
                });
            }
            progress.finish();
            show(
                &Value::Array(results),
                &["source", "outcome", "error"],
                remote.json,
            );
            if progress.failed > 0 {
                return Err(fail(format!(
                    "{} of {} webhook(s) could not be replayed (see above)",
                    progress.failed, progress.total
                )));
            }
        }
    }
    Ok(())
}

/// Whether `bytes` is one JSON document in IVPAY's dialect (trailing commas allowed).
fn is_one_document(bytes: &[u8]) -> bool {
    ivpay_json::from_slice::<Value>(bytes).is_ok()
}

/// The bodies to replay, each named by where it came from (`file` or `file:line`): a file
/// that is one JSON document (IVPAY's trailing commas allowed) is one body, sent byte for
/// byte; else each non-blank line is one.
fn read_bodies(files: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, StartupError> {
    let mut bodies = Vec::new();
    for file in files {
        let (name, bytes) = if file.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| fail(format!("standard input: {e}")))?;
            ("stdin".to_owned(), bytes)
        } else {
            let bytes =
                std::fs::read(file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
            (file.display().to_string(), bytes)
        };
        if is_one_document(&bytes) {
            bodies.push((name, bytes));
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let before = bodies.len();
        for (n, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                bodies.push((format!("{name}:{}", n + 1), line.as_bytes().to_vec()));
            }
        }
        if bodies.len() == before {
            return Err(fail(format!("{name}: no webhook body in it")));
        }
    }
    Ok(bodies)
}

/// A count of replays, shown as one line rewritten in place when standard error is a
/// terminal (and not at all otherwise, so scripts read only the result).
struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            failed: 0,
            shown: std::io::stderr().is_terminal() && total > 1,
        }
    }

    #[allow(clippy::print_stderr, reason = "the operator watches a long replay")]
    fn step(&mut self, ok: bool) {
        self.done += 1;
        if !ok {
            self.failed += 1;
        }
        if self.shown {
            eprint!(
                "\rreplaying webhooks: {}/{} ({} failed)",
                self.done, self.total, self.failed
            );
            let _ = std::io::stderr().flush();
        }
    }

    #[allow(clippy::print_stderr, reason = "ends the progress line")]
    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_one_body_or_one_per_line() {
        let dir = std::env::temp_dir().join(format!("ivpay-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let one = dir.join("one.json");
        std::fs::write(
            &one,
            "{\n  \"payment_id\": \"a\",\n  \"status\": \"PAID\",\n}\n",
        )
        .expect("write");
        let lines = dir.join("many.jsonl");
        std::fs::write(
            &lines,
            "{\"payment_id\":\"b\"}\n\n{\"payment_id\":\"c\",}\n",
        )
        .expect("write");
        let empty = dir.join("empty.txt");
        std::fs::write(&empty, "\n  \n").expect("write");

        let bodies = read_bodies(&[one.clone(), lines.clone()]).expect("read");
        let names: Vec<&str> = bodies.iter().map(|(n, _)| n.as_str()).collect();
        let many = lines.display().to_string();
        assert_eq!(
            names,
            [
                one.display().to_string(),
                format!("{many}:1"),
                format!("{many}:3")
            ]
        );
        assert_eq!(
            bodies[0].1,
            std::fs::read(&one).expect("read"),
            "byte for byte"
        );
        assert_eq!(
            bodies[2].1, b"{\"payment_id\":\"c\",}",
            "trailing comma kept"
        );
        let err = read_bodies(&[empty]).expect_err("nothing to replay");
        assert!(err.to_string().contains("no webhook body"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
