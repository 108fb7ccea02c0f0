//! The metrics endpoint (`serve --metrics`): the counters move by exactly
//! what was sent, accepted, refused and delivered; the gauges read the
//! store, the notifier and the certificates; both text formats parse with
//! the Prometheus project's own Python parser (strict for OpenMetrics);
//! sends refused by the admission layer count too, by the limit that bit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::common::*;
use lienthong::directory::Directory;
use lienthong::pb;

/// Every sample of a Prometheus text exposition, by series
/// (`name{labels}` as written), for reading values; the format itself is
/// checked by [`assert_parses`].
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample line is `series value`: {line:?}"));
            let value = value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("not a number in {line:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// The value of `series`, 0 if it is not there yet (a counter with those
/// labels appears at its first increment).
fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn scrape(addr: SocketAddr, accept: &str) -> String {
    let response = http_request(
        addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    http_body(&response).to_owned()
}

/// The Prometheus text format, as Prometheus asks for it by default.
async fn scrape_text(addr: SocketAddr) -> String {
    scrape(addr, "text/plain;version=0.0.4;q=0.5,*/*;q=0.1").await
}

/// Parses `text` with the `prometheus_client` Python package of the test
/// environment (`bash tests/run` installs it), as `format` (`text` or
/// `openmetrics`), and checks that it found every metric the text declares.
fn assert_parses(text: &str, format: &str) {
    const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as text
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
parse = openmetrics if sys.argv[1] == "openmetrics" else text
families = list(parse(sys.stdin.read()))
print(len(families))
"#;
    let python = crate::outside::python();
    let mut child = Command::new(&python)
        .args(["-c", PARSE, format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to the parser");
    let output = child.wait_with_output().expect("the parser ends");
    assert!(
        output.status.success(),
        "the {format} exposition does not parse:\n{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let declared = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let parsed: usize = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert_eq!(parsed, declared, "every declared metric is parsed");
}

fn code(org: &str) -> String {
    Directory::builtin()
        .expect("built-in directory")
        .org(org)
        .expect("an organisation of the built-in directory")
        .code
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_the_sends_and_both_formats_parse() {
    let server =
        TestServer::with_config(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = server.metrics_addr();
    let (noi_vu, van_nham, tan_thanh) = (
        code("phong-noi-vu"),
        code("xa-van-nham"),
        code("xa-tan-thanh"),
    );
    let accepted =
        format!(r#"lienthong_documents_accepted_total{{org="{noi_vu}",grpc_method="Send"}}"#);
    let refused = format!(
        r#"lienthong_documents_refused_total{{org="{noi_vu}",grpc_method="Send",grpc_code="InvalidArgument"}}"#
    );
    let delivered_van_nham = format!(r#"lienthong_deliveries_total{{org="{van_nham}"}}"#);
    let delivered_tan_thanh = format!(r#"lienthong_deliveries_total{{org="{tan_thanh}"}}"#);
    let handled_ok = r#"grpc_server_handled_total{grpc_service="lienthong.v1.Exchange",grpc_method="Send",grpc_code="OK"}"#;
    let timed = r#"grpc_server_handling_seconds_count{grpc_service="lienthong.v1.Exchange",grpc_method="Send"}"#;

    let before = samples(&scrape_text(addr).await);
    let mut client = server.client("phong-noi-vu").await;
    for number in 1..=3 {
        server
            .send(
                &mut client,
                directive("phong-noi-vu", &["xa-van-nham"], number),
            )
            .await;
    }
    server
        .send(
            &mut client,
            directive("phong-noi-vu", &["xa-van-nham", "xa-tan-thanh"], 4),
        )
        .await;
    let mut no_subject = directive("phong-noi-vu", &["xa-van-nham"], 5);
    no_subject.subject.clear();
    let status = client
        .send(server.request(no_subject))
        .await
        .expect_err("a document without a subject is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let mut inbox = server.client("xa-van-nham").await;
    let _stream = inbox
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            from_now: true,
        })
        .await
        .expect("subscribe");

    let text = scrape_text(addr).await;
    let after = samples(&text);
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved(&accepted), 4.0, "{text}");
    assert_eq!(moved(&refused), 1.0, "{text}");
    assert_eq!(moved(&delivered_van_nham), 4.0, "{text}");
    assert_eq!(moved(&delivered_tan_thanh), 1.0, "{text}");
    assert_eq!(moved(handled_ok), 4.0, "{text}");
    assert_eq!(moved(timed), 5.0, "each call is timed, refused or not");
    // Each send is one write of the group commit; a timed checkpoint may
    // add one more.
    assert!(moved("lienthong_commit_batch_writes_sum") >= 4.0, "{text}");
    assert!(
        moved("lienthong_commit_sync_seconds_count") >= 1.0,
        "{text}"
    );
    assert_eq!(value(&after, "lienthong_archive_leaves"), 4.0, "{text}");
    assert_eq!(
        value(&after, "lienthong_notification_streams_open"),
        1.0,
        "{text}"
    );
    assert!(value(&after, "lienthong_store_bytes") > 0.0, "{text}");
    assert!(
        value(&after, "lienthong_data_filesystem_available_bytes") > 0.0,
        "{text}"
    );
    // The development PKI: a server certificate of 825 days, a CA of 3650.
    let server_days = value(
        &after,
        r#"lienthong_certificate_expiry_days{certificate="server"}"#,
    );
    let ca_days = value(
        &after,
        r#"lienthong_certificate_expiry_days{certificate="client_ca"}"#,
    );
    assert!((824.0..=825.0).contains(&server_days), "{server_days}");
    assert!((3649.0..=3650.0).contains(&ca_days), "{ca_days}");
    assert!(
        !text.contains("Về việc") && !text.contains("CT-"),
        "no subject or notation in the metrics"
    );

    assert_parses(&text, "text");
    let openmetrics = scrape(addr, "application/openmetrics-text;version=1.0.0").await;
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert_parses(&openmetrics, "openmetrics");

    let elsewhere = http_get(addr, "/").await;
    assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");
    let posted = http_request(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(posted.starts_with("HTTP/1.1 405"), "{posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_over_the_rate_counts_as_refused_and_names_its_limit() {
    let server = TestServer::with_config(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.network.org_sends_per_minute = 1;
        c.network.org_send_burst = 1;
    })
    .await;
    let mut client = server.client("phong-noi-vu").await;
    server
        .send(&mut client, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    let status = client
        .send(server.request(directive("phong-noi-vu", &["xa-van-nham"], 2)))
        .await
        .expect_err("the second send is over the rate");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);

    let text = scrape_text(server.metrics_addr()).await;
    let after = samples(&text);
    let noi_vu = code("phong-noi-vu");
    for (series, expected) in [
        (
            format!(r#"lienthong_documents_accepted_total{{org="{noi_vu}",grpc_method="Send"}}"#),
            1.0,
        ),
        (
            format!(
                r#"lienthong_documents_refused_total{{org="{noi_vu}",grpc_method="Send",grpc_code="ResourceExhausted"}}"#
            ),
            1.0,
        ),
        (
            r#"lienthong_admission_refusals_total{limit="--org-sends-per-minute"}"#.to_owned(),
            1.0,
        ),
    ] {
        assert_eq!(value(&after, &series), expected, "{series}\n{text}");
    }
}
