//! The dashboard (`serve --http`) as people meet it: the page opened in a
//! real headless Chromium on a loopback address — one bar per
//! organisation, the target line, the overdue list whose links open each
//! document — with a screenshot saved; HTTPS on any other address, where a
//! client certificate is required and says whose row shows; a refusal to
//! start on a non-loopback address without configured TLS; and `report
//! --svg`.
//!
//! Chromium is Debian's `chromium`, which `bash tests/run` installs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::common::*;
use crate::lifecycle::{change, message};
use crate::numbering::server_at_with;
use crate::report::{MONDAY_2_NOVEMBER, THURSDAY_5_NOVEMBER};
use lienthong::directory::Directory;
use lienthong::lifecycle::Code;
use lienthong::pki::{self, PkiPaths};
use lienthong::server::TlsFiles;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A subject that would be markup if the page did not escape it.
const HOSTILE_SUBJECT: &str = r#"V/v <script>alert("x")</script> & "ngoặc" 'đơn'"#;

/// Where the test leaves its screenshot: `target/dashboard.png`.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("dashboard.png")
}

/// Runs headless Chromium with a fresh profile, `args` after the usual
/// ones, and returns its stdout. Bounded by `timeout`, so a browser that
/// hangs fails the test instead of holding it.
fn chromium(args: &[&str]) -> String {
    if Command::new("chromium").arg("--version").output().is_err() {
        panic!(
            "chromium is not installed: the dashboard test opens the page in Debian's headless chromium; run `bash tests/run`, which installs it"
        );
    }
    let profile = tempfile::tempdir().expect("a profile folder");
    let output = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium {args:?} failed ({:?}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The page at `url` as the browser built it (off the async workers: the
/// server answers on them meanwhile).
async fn dump_dom(url: String) -> String {
    tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url]))
        .await
        .expect("chromium ran")
}

/// The `<a class="doc-link">` targets of the overdue list.
fn overdue_links(html: &str) -> Vec<String> {
    html.split(r#"<a class="doc-link" href=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Monday 2 November: Phòng Nội vụ sends two directives, one to two
/// communes and one (with a subject full of markup) to a third. The first
/// commune registers at once; the others do not, so by Thursday their
/// registrations are overdue. Returns the ids of the two documents.
async fn monday_then_thursday(server: &TestServer, clock: &lienthong::clock::Clock) -> [String; 2] {
    let communes = communes();
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut first = directive(
        "phong-noi-vu",
        &[communes[0].as_str(), communes[1].as_str()],
        0,
    );
    first.promulgation_date = "2026-11-02".into();
    let first = server.send(&mut noi_vu, first).await.id;
    let mut second = directive("phong-noi-vu", &[communes[2].as_str()], 0);
    second.promulgation_date = "2026-11-02".into();
    second.subject = HOSTILE_SUBJECT.into();
    let second = server.send(&mut noi_vu, second).await.id;
    change(
        server,
        &communes[0],
        message(&communes[0], &first, Code::Registered),
    )
    .await
    .expect("registered on time");
    clock.set(THURSDAY_5_NOVEMBER);
    [first, second]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_one_bar_per_organisation_the_target_and_overdue_links_that_open() {
    let (server, clock) = server_at_with(MONDAY_2_NOVEMBER, |c| {
        c.http = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    let [first, second] = monday_then_thursday(&server, &clock).await;
    let base = format!("http://{}", server.http_addr());

    let dom = dump_dom(format!("{base}/?period=2026-11")).await;
    let directory = Directory::builtin().expect("directory");
    // Loopback: the district as its committee sees it, every organisation.
    let organisations = directory.organizations().len();
    assert_eq!(
        dom.matches(r#"<g class="bar""#).count(),
        organisations,
        "one bar per organisation"
    );
    for org in directory.organizations() {
        assert!(
            dom.contains(&format!(r#"<g class="bar" data-org="{}""#, org.code)),
            "no bar for {}",
            org.alias
        );
    }
    assert!(
        dom.contains(r#"<line class="target-line" data-percent="90""#),
        "the 90% line"
    );
    assert!(dom.contains("Mục tiêu 90%"));
    assert!(dom.contains(r#"<html lang="vi">"#));
    // Phòng Nội vụ sent two electronic documents: 100%, not flagged.
    let noi_vu = directory.org("phong-noi-vu").expect("phong-noi-vu").code;
    assert!(dom.contains(&format!(
        r#"data-org="{noi_vu}" data-percent="100.0" data-below="false""#
    )));

    // Two registrations overdue (the second commune's and the third's),
    // each a link to its document.
    let links = overdue_links(&dom);
    let mut expected = vec![format!("/document/{first}"), format!("/document/{second}")];
    let mut listed = links.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the overdue list");
    assert!(
        !dom.contains("<script>alert"),
        "the subject was escaped, not made markup"
    );
    assert!(dom.contains("&lt;script&gt;alert"));
    for (link, id) in links.iter().zip([&first, &second]) {
        let page = dump_dom(format!("{base}{link}")).await;
        assert!(
            page.contains(&format!(r#"<article class="document" data-id="{id}">"#)),
            "{link} shows its document: {page}"
        );
        assert!(page.contains("Phòng Nội vụ"), "{link} names its sender");
    }
    let page = dump_dom(format!("{base}/document/{second}")).await;
    assert!(page.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; \"ngoặc\""));

    // The screenshot, as the README says.
    let png = screenshot_path();
    let _ = std::fs::remove_file(&png);
    let url = format!("{base}/?period=2026-11");
    let shot = format!("--screenshot={}", png.display());
    tokio::task::spawn_blocking(move || chromium(&[&shot, "--window-size=1280,900", &url]))
        .await
        .expect("chromium ran");
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    println!("dashboard screenshot: {}", png.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_other_peoples_documents_look_the_same() {
    let (server, clock) = server_at_with(MONDAY_2_NOVEMBER, |c| {
        c.http = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    monday_then_thursday(&server, &clock).await;
    let addr = server.http_addr();
    let unknown = http_get(addr, "/document/0123456789abcdef0123456789abcdef").await;
    let no_id = http_get(addr, "/document/nope").await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert_eq!(http_body(&unknown), http_body(&no_id));
    let bad = http_get(addr, "/?period=2026-13").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert!(bad.contains("period"), "the error names the field: {bad}");
    let posted = http_request(
        addr,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(posted.starts_with("HTTP/1.1 405"), "{posted}");
    assert!(posted.to_ascii_lowercase().contains("allow: get, head"));
}

/// The TLS files of a development PKI made in the server's data folder
/// before it starts, given by path as a production deployment gives its
/// own.
fn configured_tls(config: &mut lienthong::server::ServerConfig) {
    let paths = PkiPaths::new(config.data_dir.join("pki"));
    pki::ensure_dev_pki(&paths, &Directory::builtin().expect("directory")).expect("PKI");
    config.tls = Some(TlsFiles {
        cert: paths.server_cert(),
        key: paths.server_key(),
        client_ca: paths.ca_cert(),
    });
    config.signing_keys = Some(paths.signing_keys());
}

/// An HTTPS GET of `path` on `addr`, trusting the PKI's CA, with `org`'s
/// client certificate or none. `Err` when the server refuses.
async fn https_get(
    pki: &PkiPaths,
    addr: SocketAddr,
    org: Option<&str>,
    path: &str,
) -> std::io::Result<String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let read = |p: PathBuf| std::fs::read(p).expect("read");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read(pki.ca_cert())) {
        roots.add(ca.expect("CA")).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match org {
        Some(org) => {
            let (cert, key) = pki::find_client(pki, org).expect("client certificate");
            let chain = CertificateDer::pem_slice_iter(&read(cert))
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate");
            let key = PrivateKeyDer::from_pem_slice(&read(key)).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", addr.port())).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await?;
    Ok(String::from_utf8(out).expect("UTF-8"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elsewhere_https_requires_a_client_certificate_which_says_whose_row_shows() {
    let server = TestServer::with_config(|c| {
        configured_tls(c);
        // Not loopback: every interface, reached here through 127.0.0.1.
        c.http = Some("0.0.0.0:0".parse().expect("address"));
    })
    .await;
    let pki = server.pki();
    let addr = server.http_addr();
    let communes = communes();
    let mut noi_vu = server.client("phong-noi-vu").await;
    let to_first = server
        .send(
            &mut noi_vu,
            directive("phong-noi-vu", &[communes[0].as_str()], 0),
        )
        .await
        .id;
    let to_second = server
        .send(
            &mut noi_vu,
            directive("phong-noi-vu", &[communes[1].as_str()], 0),
        )
        .await
        .id;

    // No certificate: no page, not even an error page.
    if let Ok(text) = https_get(&pki, addr, None, "/").await {
        assert!(
            !text.contains("HTTP/1.1"),
            "a request without a certificate got an answer: {text}"
        );
    }
    // Plain HTTP on the HTTPS port gets nothing either.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", addr.port()))
        .await
        .expect("connect");
    let _ = plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).contains("HTTP/1.1 200"));

    // A commune's certificate: its own row only.
    let directory = Directory::builtin().expect("directory");
    let commune = directory.org(&communes[0]).expect("commune");
    let page = https_get(&pki, addr, Some(&communes[0]), "/")
        .await
        .expect("the commune's page");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert_eq!(page.matches(r#"<g class="bar""#).count(), 1, "{page}");
    assert!(page.contains(&format!(r#"<g class="bar" data-org="{}""#, commune.code)));
    assert!(!page.contains("(toàn huyện)"));
    // Its own document opens; another commune's looks like an unknown one.
    let mut answers = Vec::new();
    for id in [
        to_first.as_str(),
        &to_second,
        "0123456789abcdef0123456789abcdef",
    ] {
        let path = format!("/document/{id}");
        let answer = https_get(&pki, addr, Some(&communes[0]), &path).await;
        answers.push(answer.expect("an answer"));
    }
    let [own, other, unknown] = &answers[..] else {
        unreachable!()
    };
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    assert_eq!(http_body(other), http_body(unknown));

    // The committee's certificate: every organisation.
    let page = https_get(&pki, addr, Some("ubnd-huyen"), "/")
        .await
        .expect("the committee's page");
    assert_eq!(
        page.matches(r#"<g class="bar""#).count(),
        directory.organizations().len()
    );
}

#[test]
fn a_non_loopback_dashboard_without_configured_tls_refuses_to_start() {
    let data = tempfile::tempdir().expect("data");
    let refused = match lienthong::process::ServeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_lienthong")),
        data.path(),
        &["--http", "0.0.0.0:0"],
    ) {
        Ok(_) => panic!("serve --http 0.0.0.0:0 started with the development PKI"),
        Err(e) => e,
    };
    assert!(
        refused.contains("not a loopback address") && refused.contains("--tls-cert"),
        "{refused}"
    );
    assert!(
        std::fs::read_dir(data.path())
            .expect("data")
            .next()
            .is_none(),
        "nothing was created before refusing"
    );
}

#[test]
fn report_svg_writes_the_dashboards_chart_and_keeps_an_earlier_one() {
    let data = tempfile::tempdir().expect("data");
    let server = serve_process(data.path(), &[]);
    let svg = data.path().join("rates.svg");
    let run = |extra: &[&str]| {
        let mut args = vec!["report", "--as", "ubnd-huyen", "--period", "2026", "--svg"];
        args.push(svg.to_str().expect("path"));
        args.extend_from_slice(extra);
        crate::cli::cli(&server, data.path(), &args)
    };
    let output = run(&[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&svg).expect("the chart");
    assert!(text.starts_with("<?xml"));
    let organisations = Directory::builtin()
        .expect("directory")
        .organizations()
        .len();
    assert_eq!(text.matches(r#"<g class="bar""#).count(), organisations);
    assert!(text.contains(r#"class="target-line" data-percent="90""#));
    // The table still goes to stdout.
    assert!(String::from_utf8_lossy(&output.stdout).contains("ORGANISATION"));

    let again = run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("ALREADY_EXISTS"));
    assert!(run(&["--force"]).status.success());
}
