//! The hostile-input suite of tests/hostile/ (the attacks from outside), written in Python from
//! `proto/` alone, run against a real server: a regression is caught from
//! outside the Rust code, by a client that shares none of it.

use std::path::PathBuf;
use std::process::Command;

use crate::common::TestServer;

/// The Python of the virtual environment `bash tests/run` installs.
pub(crate) fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/test-python/bin/python");
    assert!(
        python.is_file(),
        "this test needs the Python environment at {}: run `bash tests/run` \
         (it installs grpcio, grpcio-tools, cryptography and prometheus_client there, then runs cargo test)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_hostile_suite_passes_against_a_real_server() {
    let python = python();
    let server = TestServer::start().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/hostile.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg("--server")
        .arg(server.addr().to_string())
        .arg("--pki")
        .arg(server.pki().dir);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    // unittest reports on stderr; shown with `--nocapture`, and on failure.
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the hostile-input suite failed ({}); its report is above",
        output.status
    );
}
