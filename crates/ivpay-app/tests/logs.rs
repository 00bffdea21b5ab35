//! Logs written to a file or a pipe are plain text: colour codes belong on a terminal only.
//! The real binary runs with its output piped, as under systemd or `> ivpay.log`.

use std::process::{Command, Stdio};

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_ivpay-app"))
        .arg("migrate")
        .current_dir(dir.path())
        .env(
            "IVPAY_DATABASE__URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("ivpay.db").display()
            ),
        )
        .env("IVPAY_LOG__FILTER", "info")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("IVPAY_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    // The line whose level would be coloured on a terminal.
    assert!(stdout.contains("migrations applied"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "escape codes in piped output: {stdout:?} {stderr:?}"
    );
}
