//! The server's log as an operator collects it: with `--log-format json`,
//! every line one JSON object; each request's events in a span naming the
//! caller's organisation, the call and the document; and no document's
//! subject or content at the default level.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use lienthong::client;
use lienthong::pki::{self, PkiPaths};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

#[tokio::test]
async fn json_logs_name_the_request_and_never_the_subject() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data",
        ])
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("serve");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("the ready line");
    let ready: lienthong::process::Ready = serde_json::from_str(&ready).expect("ready");
    let url = format!("https://{}", ready.addr);

    // A subject and a content that must not reach the log.
    let secret = "XYZZY-7731 danh sách cán bộ diện quy hoạch";
    let pki = PkiPaths::new(data.join("pki"));
    let mut document = crate::common::directive("phong-noi-vu", &["xa-van-nham"], 1);
    document.subject = format!("Về việc {secret}");
    document.content = format!("Nội dung: {secret}");
    let signer = pki::find_signing_key(&pki, "phong-noi-vu").expect("signing key");
    let request = client::send_request(
        document,
        vec![crate::common::pdf("bí mật.pdf", secret.as_bytes())],
        None,
        &signer,
    )
    .expect("signed");
    let mut sender = client::connect_as(&url, &pki.dir, "phong-noi-vu")
        .await
        .expect("connect");
    let id = sender.send(request).await.expect("sent").into_inner().id;
    let mut reader = client::connect_as(&url, &pki.dir, "xa-van-nham")
        .await
        .expect("connect");
    reader
        .get_document(lienthong::pb::GetDocumentRequest {
            id: id.clone(),
            include_content: true,
        })
        .await
        .expect("read");

    // A clean stop, so that the log is complete. The wait runs off this
    // runtime, which must go on serving the clients' side of the
    // connections as the server closes them.
    drop((sender, reader));
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joined")
        .expect("exits");
    assert!(exited.success(), "{exited:?}");

    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        !text.contains("XYZZY"),
        "the subject or content is logged:\n{text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let message = |m: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == m)
            .unwrap_or_else(|| panic!("no {m:?} in the log:\n{text}"))
    };
    let accepted = message("document accepted");
    let span = &accepted["span"];
    assert_eq!(span["name"], "request", "{accepted}");
    assert_eq!(span["org"], "phong-noi-vu", "{accepted}");
    assert_eq!(span["rpc"], "Exchange/Send", "{accepted}");
    assert_eq!(span["document_id"], id.as_str(), "{accepted}");
    message("stopped");
}
