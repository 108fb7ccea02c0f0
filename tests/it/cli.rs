//! The command line as a user runs it: the real binary serving, the real
//! binary as client, a SIGKILL right after a send returned, and a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

pub(crate) type Serve = crate::common::ServeProcess;

/// Starts `lienthong serve` on a free port and waits for its `listening` line.
fn serve(data: &Path) -> Serve {
    serve_with(data, &[])
}

fn serve_with(data: &Path, extra: &[&str]) -> Serve {
    crate::common::serve_process(data, extra)
}

pub(crate) fn cli(server: &Serve, data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("LIENTHONG_SERVER", &server.url)
        .env("LIENTHONG_PKI", data.join("pki"))
        .output()
        .expect("run lienthong")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

pub(crate) fn ok_json(output: Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("exactly one JSON document on stdout")
}

#[test]
fn send_kill_restart_read_and_save_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let original = tmp.path().join("Kế hoạch PCCC 2026.pdf");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&original, &content).expect("write attachment");

    let mut server = serve(&data);
    let sent = ok_json(cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "all-communes",
            "--type",
            "CT",
            "--number",
            "12",
            "--notation",
            "CT-PNV",
            "--date",
            "2026-11-20",
            "--subject",
            "Về việc tăng cường phòng cháy chữa cháy mùa hanh khô",
            "--signer-name",
            "Nguyễn Văn A",
            "--signer-position",
            "Chủ tịch",
            "--competence",
            "TM.",
            "--urgency",
            "hoa-toc",
            "--due",
            "2026-12-15",
            "--attach",
            original.to_str().expect("utf-8 path"),
            "--json",
        ],
    ));
    let id = sent["id"].as_str().expect("id").to_owned();
    assert_eq!(sent["deliveries"].as_array().map(Vec::len), Some(23));

    // The send returned: kill the server without any chance to flush.
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");

    let mut server = serve(&data);
    let inbox = ok_json(cli(
        &server,
        &data,
        &["inbox", "--as", "xa-van-nham", "--json"],
    ));
    let entries = inbox["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], id.as_str());
    assert_eq!(entries[0]["arrival_number"], 1);
    assert_eq!(entries[0]["urgency"], "hoa-toc");

    let saved_dir = tmp.path().join("saved");
    let shown = ok_json(cli(
        &server,
        &data,
        &[
            "show",
            "--as",
            "xa-van-nham",
            &id,
            "--save",
            saved_dir.to_str().expect("path"),
            "--json",
        ],
    ));
    assert_eq!(
        shown["subject"],
        "Về việc tăng cường phòng cháy chữa cháy mùa hanh khô"
    );
    let saved = std::fs::read(saved_dir.join("Kế hoạch PCCC 2026.pdf")).expect("saved attachment");
    assert!(
        saved == content,
        "the saved attachment is identical to the original"
    );

    // Offline: the saved proof verifies with no server, against the
    // registry and service key the user trusts...
    let keys = data.join("pki/signing-keys.toml");
    let service_key = data.join("service-key.pub.pem");
    let verify = |dir: &Path| {
        Command::new(BIN)
            .args([
                "verify",
                "--json",
                "--keys",
                keys.to_str().expect("path"),
                "--service-key",
            ])
            .arg(&service_key)
            .arg(dir)
            .output()
            .expect("run verify")
    };
    let report = ok_json(verify(&saved_dir));
    assert_eq!(report["ok"], true, "{report}");
    // ...and one flipped byte in any file fails, naming what it broke.
    for (n, (file, subject)) in [
        ("lienthong-proof/document.pb", "document"),
        ("lienthong-proof/document.sig", "signature"),
        ("lienthong-proof/receipt.pb", "receipt"),
        ("lienthong-proof/receipt.sig", "receipt"),
        (
            "Kế hoạch PCCC 2026.pdf",
            "attachment \"Kế hoạch PCCC 2026.pdf\"",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let copy = tmp.path().join(format!("flipped-{n}"));
        copy_dir(&saved_dir, &copy);
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[10] ^= 0x20;
        std::fs::write(&path, bytes).expect("write");
        let out = verify(&copy);
        assert!(!out.status.success(), "{file}: verify must fail");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let failed: Vec<&str> = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["ok"] == false)
            .filter_map(|c| c["subject"].as_str())
            .collect();
        assert!(failed.contains(&subject), "{file}: {failed:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(subject),
            "stderr names it"
        );
    }

    let outbox = ok_json(cli(
        &server,
        &data,
        &["outbox", "--as", "000.02.09.H37", "--json"],
    ));
    assert_eq!(outbox["entries"][0]["id"], id.as_str());

    // Errors: stderr, non-zero exit, the field named.
    let not_party = cli(&server, &data, &["show", "--as", "phong-tu-phap", &id]);
    assert!(!not_party.status.success());
    assert!(String::from_utf8_lossy(&not_party.stderr).contains("error: NOT_FOUND: "));
    let unknown = cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-khong-co",
            "--type",
            "cong-van",
            "--number",
            "13",
            "--notation",
            "PNV-VP",
            "--subject",
            "V/v thử",
        ],
    );
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("document.to[0]") && stderr.contains("xa-khong-co"),
        "{stderr}"
    );

    // SIGTERM: a clean stop with a zero exit status.
    let stopped = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let status = server.child.wait().expect("exit");
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
}

/// A running `lienthong watch`, its stdout read line by line.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(server: &Serve, data: &Path, args: &[&str]) -> Watch {
        let mut child = Command::new(BIN)
            .arg("watch")
            .args(args)
            .env("LIENTHONG_SERVER", &server.url)
            .env("LIENTHONG_PKI", data.join("pki"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watch");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Watch { child, lines }
    }

    /// The next JSON line of the given kind.
    fn next(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) else {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("watch printed no {kind} line");
            };
            let value: serde_json::Value =
                serde_json::from_str(&line).expect("one JSON object per line");
            if value["kind"] == kind {
                return value;
            }
        }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_directive(server: &Serve, data: &Path, number: u32) -> String {
    let sent = ok_json(cli(
        server,
        data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "all-communes",
            "--type",
            "CT",
            "--number",
            &number.to_string(),
            "--notation",
            "CT-PNV",
            "--subject",
            &format!("Chỉ thị số {number}"),
            "--urgency",
            "hoa-toc",
            "--json",
        ],
    ));
    sent["id"].as_str().expect("id").to_owned()
}

#[test]
fn watch_prints_arrivals_and_resumes_exactly_after_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = serve_with(&data, &["--heartbeat-seconds", "0.2"]);

    // A heartbeat line says the watcher is subscribed; then the directive.
    let mut watch = Watch::start(
        &server,
        &data,
        &["--as", "xa-van-nham", "--json", "--heartbeats"],
    );
    watch.next("heartbeat");
    let id = send_directive(&server, &data, 1);
    let event = watch.next("document_arrived");
    assert_eq!(event["document_id"], id.as_str());
    assert_eq!(event["urgency"], "hoa-toc");
    let last_seen = event["seq"].as_u64().expect("seq");
    watch.stop();

    // Three documents while nobody watches, then a restart.
    let ids: Vec<String> = (2..=4).map(|n| send_directive(&server, &data, n)).collect();
    let mut server = server;
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(server.child.wait().expect("exit").success());
    let server = serve(&data);

    let mut watch = Watch::start(
        &server,
        &data,
        &[
            "--as",
            "xa-van-nham",
            "--json",
            "--after",
            &last_seen.to_string(),
        ],
    );
    for (n, id) in ids.iter().enumerate() {
        let event = watch.next("document_arrived");
        assert_eq!(event["seq"].as_u64(), Some(last_seen + 1 + n as u64));
        assert_eq!(event["document_id"], id.as_str());
    }
    // Exactly those three: the next line, if any, is not a fourth event.
    let extra = watch.lines.try_recv().ok();
    assert!(extra.is_none(), "nothing more: {extra:?}");
    watch.stop();
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[test]
fn archive_proofs_export_and_audit_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut server = serve_with(&data, &["--checkpoint-every", "2"]);
    let ids: Vec<String> = (1..=3).map(|n| send_directive(&server, &data, n)).collect();
    let path = |name: &str| tmp.path().join(name).to_str().expect("path").to_owned();
    let service_key = data
        .join("service-key.pub.pem")
        .to_str()
        .expect("path")
        .to_owned();
    let verify = |file: &str| {
        Command::new(BIN)
            .args(["verify", "--json", "--service-key", &service_key, file])
            .output()
            .expect("verify")
    };

    let proof = path("proof.json");
    ok_or_panic(cli(
        &server,
        &data,
        &[
            "archive",
            "prove",
            "--as",
            "xa-van-nham",
            &ids[2],
            "--out",
            &proof,
        ],
    ));
    assert_eq!(ok_json(verify(&proof))["ok"], true);
    // One hex digit of the audit path changed: the inclusion check fails.
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proof).expect("read")).expect("json");
    let first = file["audit_path"][0].as_str().expect("hash").to_owned();
    let mut digits: Vec<char> = first.chars().collect();
    digits[0] = if digits[0] == '0' { '1' } else { '0' };
    let flipped: String = digits.into_iter().collect();
    file["audit_path"][0] = serde_json::Value::String(flipped);
    let bad = path("bad.json");
    std::fs::write(&bad, file.to_string()).expect("write");
    let out = verify(&bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inclusion"));

    ok_or_panic(cli(
        &server,
        &data,
        &["archive", "checkpoint", "--as", "xa-van-nham", "--fresh"],
    ));
    let consistency = path("consistency.json");
    ok_or_panic(cli(
        &server,
        &data,
        &[
            "archive",
            "consistency",
            "--as",
            "xa-van-nham",
            "2",
            "3",
            "--out",
            &consistency,
        ],
    ));
    assert_eq!(ok_json(verify(&consistency))["ok"], true);

    let export = tmp.path().join("export");
    ok_or_panic(cli(
        &server,
        &data,
        &[
            "archive",
            "export",
            "--as",
            "xa-van-nham",
            "--out",
            export.to_str().expect("path"),
        ],
    ));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["documents"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        ok_json(verify(export.join(&ids[0]).to_str().expect("path")))["ok"],
        true
    );
    // The whole export in one go: every document and every proof in it.
    let report = ok_json(verify(export.to_str().expect("path")));
    assert_eq!(report["ok"], true, "{report}");
    let subjects: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["subject"].as_str())
        .collect();
    for id in &ids {
        assert!(
            subjects.contains(&format!("{id}: signature").as_str()),
            "{subjects:?}"
        );
        assert!(
            subjects.contains(&format!("{id}: inclusion").as_str()),
            "{subjects:?}"
        );
    }
    // One flipped byte in one document of the export fails the whole.
    let receipt = export.join(&ids[1]).join("lienthong-proof/receipt.sig");
    let mut bytes = std::fs::read(&receipt).expect("read");
    bytes[3] ^= 1;
    std::fs::write(&receipt, bytes).expect("write");
    let out = verify(export.to_str().expect("path"));
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains(&format!("{}: receipt", ids[1])));

    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(server.child.wait().expect("exit").success());
    let audit = Command::new(BIN)
        .args(["archive", "audit", "--data"])
        .arg(&data)
        .output()
        .expect("audit");
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(String::from_utf8_lossy(&audit.stdout).contains("3 leaves"));
}

fn ok_or_panic(output: Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Groups digits by three with a space, as the README writes numbers.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_readme_states_the_defaults_the_code_has() {
    use lienthong::defaults as d;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let stated = [
        format!("`--max-document-bytes` ({} MiB)", d::MAX_DOCUMENT_MIB),
        format!("`--max-recipients` ({})", d::MAX_RECIPIENTS),
        format!(
            "`--events-kept` ({} per organisation)",
            grouped(d::EVENTS_KEPT)
        ),
        format!("`--heartbeat-seconds` ({})", d::HEARTBEAT_SECONDS),
        format!("`--event-buffer` ({})", grouped(d::EVENT_BUFFER as u64)),
        format!("`--checkpoint-every` ({})", grouped(d::CHECKPOINT_EVERY)),
        format!("`--checkpoint-seconds` ({})", d::CHECKPOINT_SECONDS),
        format!("`--cache-mib` ({})", d::CACHE_MIB),
        format!(
            "`--max-attachment-mib` ({})",
            grouped(d::MAX_ATTACHMENT_MIB)
        ),
        format!(
            "`--org-upload-quota-mib` ({})",
            grouped(d::ORG_UPLOAD_QUOTA_MIB)
        ),
        format!(
            "`--upload-ttl-seconds` ({})",
            grouped(d::UPLOAD_TTL_SECONDS)
        ),
        format!("`serve` listens on `{}`", d::LISTEN),
        format!("keeps its data in `{}`", d::DATA_DIR),
        format!("`--server URL` (default `{}`)", d::SERVER_URL),
        format!("`--pki DIR` (default `{}`)", d::PKI_DIR),
    ];
    let missing: Vec<&String> = stated.iter().filter(|s| !readme.contains(*s)).collect();
    assert!(
        missing.is_empty(),
        "the README does not say (or says otherwise): {missing:?}"
    );
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    // `lienthong bench load --json | head -1`, with a reader gone before
    // anything is written: no panic, exit status 0.
    let mut child = Command::new(BIN)
        .args(["bench", "load", "--json", "--clients", "1", "--count", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("bench ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);

    // Read to the end, it is exactly one JSON document.
    let report = ok_json(
        Command::new(BIN)
            .args(["bench", "load", "--json", "--clients", "1", "--count", "3"])
            .output()
            .expect("bench"),
    );
    assert_eq!(report["documents"], 3, "{report}");

    // And `| head -1` as a shell runs it: the first line is the start of
    // the one JSON document.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{BIN}' bench load --json --clients 1 --count 3 | head -1"
        ))
        .output()
        .expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("{\n"), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// `lienthong ARGS` with no server or PKI settings from this test's
/// environment: only what is given here, from `dir`.
fn bare(dir: &Path, config_home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("LIENTHONG_SERVER")
        .env_remove("LIENTHONG_PKI")
        .env_remove("LIENTHONG_AS")
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .expect("run lienthong")
}

pub(crate) fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_clerk_works_from_any_folder_and_errors_name_their_cause() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let desk = tmp.path().join("desk");
    std::fs::create_dir_all(&desk).expect("mkdir");
    std::fs::write(desk.join("ke-hoach.pdf"), b"%PDF-1.4 plan").expect("pdf");
    let server = serve(&data);

    // A wrong PKI folder: the error names the folder and where it came from.
    let wrong = bare(
        &desk,
        &config,
        &["inbox", "--as", "xa-van-nham", "--server", &server.url],
    );
    assert!(!wrong.status.success());
    let err = stderr_of(&wrong);
    assert!(err.starts_with("error: NOT_FOUND: "), "{err}");
    assert!(
        err.contains("hint: the PKI folder used is ./data/pki (the built-in default)"),
        "{err}"
    );

    // Logged in once, commands work from the desk with no flags at all.
    let pki = data.join("pki");
    let login = bare(
        &desk,
        &config,
        &[
            "login",
            "--pki",
            pki.to_str().expect("path"),
            "--as",
            "phong-noi-vu",
            "--server",
            &server.url,
        ],
    );
    assert!(login.status.success(), "{}", stderr_of(&login));
    let who = ok_json(bare(&desk, &config, &["whoami", "--json"]));
    assert_eq!(who["as"]["value"], "phong-noi-vu");
    assert_eq!(who["server"]["value"], server.url.as_str());
    assert!(who["pki"]["source"]["config-file"].is_string(), "{who}");
    let sent = ok_json(bare(
        &desk,
        &config,
        &[
            "send",
            "--to",
            "xa-van-nham",
            "--type",
            "Kế hoạch",
            "--number",
            "3",
            "--notation",
            "KH-PNV",
            "--subject",
            "Kế hoạch phòng cháy",
            "--attach",
            "ke-hoach.pdf",
            "--json",
        ],
    ));
    assert_eq!(sent["deliveries"][0]["arrival_number"], 1);
    // The flag wins over the configuration.
    let inbox = ok_json(bare(
        &desk,
        &config,
        &["inbox", "--as", "xa-van-nham", "--json"],
    ));
    assert_eq!(inbox["entries"][0]["document_type"], "ke-hoach");

    // A type named without diacritics is found; an unknown one points at `types`.
    let unknown = bare(
        &desk,
        &config,
        &[
            "send",
            "--to",
            "xa-van-nham",
            "--type",
            "Quyet dinh nhe",
            "--number",
            "4",
            "--notation",
            "QĐ-UBND",
            "--subject",
            "x",
        ],
    );
    let err = stderr_of(&unknown);
    assert!(err.starts_with("error: INVALID_ARGUMENT: --type"), "{err}");
    assert!(err.contains("lienthong types"), "{err}");
    let types = ok_json(bare(&desk, &config, &["types", "--json"]));
    assert_eq!(types["types"].as_array().map(Vec::len), Some(29));

    // A second server on the same data: the store is in use, and it says by whom.
    let second = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .expect("second serve");
    assert!(!second.status.success());
    let err = stderr_of(&second);
    assert!(
        err.contains("error: FAILED_PRECONDITION: the store in"),
        "{err}"
    );
    assert!(
        err.contains("another `lienthong serve` is running"),
        "{err}"
    );

    // A stopped server: the error says nothing listens there.
    let url = server.url.clone();
    drop(server);
    let stopped = bare(&desk, &config, &["inbox", "--server", &url]);
    let err = stderr_of(&stopped);
    assert!(
        err.starts_with("error: UNAVAILABLE: cannot connect to"),
        "{err}"
    );
    assert!(err.contains("no server is listening there"), "{err}");
    assert!(err.contains("hint: is a server running at"), "{err}");
}

#[test]
fn saves_refuse_to_overwrite_without_force_and_every_json_is_one_document() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // A checkpoint per document, for a consistency proof from 1 to 2.
    let server = serve_with(&data, &["--checkpoint-every", "1"]);
    let first = send_directive(&server, &data, 1);
    let second = send_directive(&server, &data, 2);
    let dir = tmp.path().join("saved");
    let dir_s = dir.to_str().expect("path");
    let show = |id: &str, extra: &[&str]| {
        let mut args = vec!["show", "--as", "xa-van-nham", id, "--save", dir_s, "--json"];
        args.extend_from_slice(extra);
        cli(&server, &data, &args)
    };
    ok_json(show(&first, &[]));
    let refused = show(&second, &[]);
    assert!(!refused.status.success());
    let err = stderr_of(&refused);
    assert!(err.starts_with("error: ALREADY_EXISTS: "), "{err}");
    assert!(err.contains("--force"), "{err}");
    ok_json(show(&second, &["--force"]));

    // Every command that takes --json prints exactly one JSON document.
    let out = |name: &str| tmp.path().join(name).to_str().expect("path").to_owned();
    let (proof, consistency, export) = (out("p.json"), out("c.json"), out("export"));
    for args in [
        vec!["inbox", "--as", "xa-van-nham"],
        vec!["outbox", "--as", "phong-noi-vu"],
        vec!["show", "--as", "xa-van-nham", &first],
        vec!["directory", "--as", "xa-van-nham"],
        vec!["whoami"],
        vec!["types"],
        vec!["archive", "checkpoint", "--as", "xa-van-nham", "--fresh"],
        vec![
            "archive",
            "search",
            "--as",
            "xa-van-nham",
            "--type",
            "chi thi",
        ],
        vec![
            "archive",
            "prove",
            "--as",
            "xa-van-nham",
            &first,
            "--out",
            &proof,
        ],
        vec![
            "archive",
            "consistency",
            "--as",
            "xa-van-nham",
            "1",
            "2",
            "--out",
            &consistency,
        ],
        vec!["archive", "export", "--as", "xa-van-nham", "--out", &export],
    ] {
        let mut args = args.clone();
        args.push("--json");
        let value = ok_json(cli(&server, &data, &args));
        assert!(value.is_object(), "{args:?}: {value}");
    }
    // Written files are not overwritten either.
    let again = cli(
        &server,
        &data,
        &["archive", "export", "--as", "xa-van-nham", "--out", &export],
    );
    assert!(stderr_of(&again).starts_with("error: ALREADY_EXISTS: "));
    let again = cli(
        &server,
        &data,
        &[
            "archive",
            "prove",
            "--as",
            "xa-van-nham",
            &first,
            "--out",
            &proof,
        ],
    );
    assert!(stderr_of(&again).starts_with("error: ALREADY_EXISTS: "));
}

#[test]
fn text_output_names_recipients_secrecy_and_times_with_their_zone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = serve(&data);
    let send_as = |document_type: &str| {
        let args = [
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--number",
            "5",
            "--notation",
            "PNV-VP",
            "--subject",
            "V/v công văn mật",
            "--secrecy",
            "tuyet-mat",
            "--type",
            document_type,
        ];
        cli(&server, &data, &args)
    };
    // "CV" is no type: công văn has no abbreviation; the code is cong-van.
    assert!(!send_as("CV").status.success());
    let sent = send_as("cong-van");
    let text = String::from_utf8_lossy(&sent.stdout).into_owned();
    assert!(sent.status.success(), "{}", stderr_of(&sent));
    assert!(text.contains("1 recipient:\n"), "{text}");
    assert!(text.contains(" UTC+7"), "{text}");
    let outbox = cli(&server, &data, &["outbox", "--as", "phong-noi-vu"]);
    let text = String::from_utf8_lossy(&outbox.stdout).into_owned();
    assert!(
        text.contains("to xa-van-nham") && text.contains("arrival no. 1/"),
        "{text}"
    );
    assert!(text.contains("tuyet-mat"), "{text}");
    let inbox = cli(&server, &data, &["inbox", "--as", "xa-van-nham"]);
    let text = String::from_utf8_lossy(&inbox.stdout).into_owned();
    assert!(
        text.contains("SECRECY") && text.contains("tuyet-mat"),
        "{text}"
    );
}

#[test]
fn every_option_has_a_help_line() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let path = format!("{path} {}", command.get_name());
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(format!("{path} {} (no description)", sub.get_name()));
            }
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&lienthong::cli::command(), "", &mut missing);
    assert!(missing.is_empty(), "without help: {missing:#?}");

    // The same tree gives the completions and the man page.
    for (args, expected) in [
        (&["completions", "bash"][..], "_lienthong()"),
        (&["completions", "zsh"][..], "#compdef lienthong"),
        (&["completions", "fish"][..], "complete -c lienthong"),
        (&["man"][..], ".TH lienthong 1"),
    ] {
        let out = Command::new(BIN).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(expected),
            "{args:?}: {}",
            &text[..text.len().min(200)]
        );
    }
}

#[test]
fn fill_is_resumable_and_adds_only_what_is_missing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let fill = |count: &str| {
        ok_json(
            Command::new(BIN)
                .args([
                    "fill",
                    "--json",
                    "--in-flight",
                    "8",
                    "--count",
                    count,
                    "--data",
                ])
                .arg(&data)
                .output()
                .expect("fill"),
        )
    };
    let first = fill("30");
    assert_eq!(
        (first["added"].as_u64(), first["already_there"].as_u64()),
        (Some(30), Some(0))
    );
    let again = fill("30");
    assert_eq!(
        (again["added"].as_u64(), again["already_there"].as_u64()),
        (Some(0), Some(30))
    );
    let more = fill("40");
    assert_eq!(
        (more["added"].as_u64(), more["already_there"].as_u64()),
        (Some(10), Some(30))
    );
    let audit = Command::new(BIN)
        .args(["archive", "audit", "--data"])
        .arg(&data)
        .output()
        .expect("audit");
    assert!(String::from_utf8_lossy(&audit.stdout).contains("40 leaves"));
}

#[test]
fn what_does_not_fit_in_a_send_is_uploaded_and_the_limit_is_spoken_in_mib() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let big = tmp.path().join("big.pdf");
    std::fs::write(&big, vec![7u8; 300 * 1024]).expect("write");
    let server = serve_with(&data, &["--max-document-bytes", "200000"]);
    let send = |number: &str, extra: &[&str]| {
        let mut args = vec![
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--type",
            "cong-van",
            "--number",
            number,
            "--notation",
            "PNV-VP",
            "--subject",
            "V/v gửi tài liệu",
            "--attach",
            big.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        cli(&server, &data, &args)
    };
    // Told the server's limit, the command uploads what does not fit.
    let sent = ok_json(send("1", &["--max-document-mib", "0.19", "--json"]));
    assert_eq!(sent["number"], 1);
    // Not told, it carries the attachment, and the server's refusal is
    // said in MiB, with what to do.
    let refused = send("2", &[]);
    let err = stderr_of(&refused);
    assert!(err.starts_with("error: RESOURCE_EXHAUSTED: max_document_bytes: the document and its attachments are 0.3 MiB; the limit is 0.2 MiB"), "{err}");
    assert!(err.contains("hint: give --max-document-mib 0.2"), "{err}");
}

/// The README's command table and the command line's own tree agree: every
/// command in the table exists with every option the row names, and every
/// command exists in the table.
#[test]
fn the_readme_command_table_matches_the_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "| command | what |")
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(table.len() > 10, "the README has its command table");
    let root = lienthong::cli::command();
    let mut listed = Vec::new();
    for row in &table {
        let first = row
            .split(" | ")
            .next()
            .unwrap_or_default()
            .trim_start_matches("| ");
        // The row's commands: `name`, `name sub\|sub…`, `name ARG`.
        let mut commands: Vec<&clap::Command> = Vec::new();
        for group in first.split(", ") {
            let words: Vec<&str> = group.trim_matches('`').split(' ').collect();
            let top = root
                .find_subcommand(words[0])
                .unwrap_or_else(|| panic!("README names `{}`, which is no command", words[0]));
            listed.push(words[0].to_owned());
            let subs: Vec<&str> = words
                .get(1)
                .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .map(|w| w.split("\\|").collect())
                .unwrap_or_default();
            if subs.is_empty() || top.get_subcommands().next().is_none() {
                commands.push(top);
            }
            for sub in subs
                .iter()
                .filter(|_| top.get_subcommands().next().is_some())
            {
                match top.find_subcommand(sub) {
                    Some(c) => commands.push(c),
                    None if *sub == "compare-jetstream" && cfg!(not(feature = "jetstream")) => {}
                    None => panic!("README names `{} {sub}`, which is no command", words[0]),
                }
            }
        }
        // Every --option the row names belongs to one of its commands.
        for flag in row.split("`--").skip(1) {
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            let known = commands.iter().any(|c| {
                c.get_arguments()
                    .any(|a| a.get_long() == Some(name.as_str()))
                    || c.get_subcommands().any(|s| {
                        s.get_arguments()
                            .any(|a| a.get_long() == Some(name.as_str()))
                    })
            });
            assert!(known, "README row {first}: --{name} is no option of it");
        }
    }
    for command in root.get_subcommands().map(|c| c.get_name()) {
        assert!(
            command == "help" || listed.iter().any(|l| l == command),
            "`{command}` is missing from the README's command table"
        );
    }
}

/// No two files of `src/cli/` depend on each other, directly or round a
/// cycle: each command's file uses the shared ones, never the reverse.
#[test]
fn the_command_line_files_import_without_cycles() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli"));
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("src/cli").flatten() {
        let path = entry.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        sources.insert(name, std::fs::read_to_string(&path).expect("read"));
    }
    let modules: BTreeSet<String> = sources.keys().filter(|n| *n != "mod").cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &sources {
        let uses = edges.entry(name.clone()).or_default();
        if name == "mod" {
            uses.extend(modules.iter().cloned());
            continue;
        }
        for rest in text.split("super::").skip(1) {
            let item: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            match item.as_str() {
                "" => {} // `use super::*` in a file's own tests
                m if modules.contains(m) => {
                    if m != name {
                        uses.insert(m.to_owned());
                    }
                }
                _ => {
                    uses.insert("mod".to_owned());
                }
            }
        }
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            panic!("a cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done);
    }
}
