//! Mailbox events: replay then live, each exactly once and in order, across
//! concurrent sends, reconnects, restarts, slow readers and shutdowns.

use std::time::Duration;

use crate::common::*;
use lienthong::pb;
use tokio::time::timeout;
use tonic::{Code, Streaming};

/// A guard against a hang, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(60);

async fn subscribe(
    client: &mut Client,
    after_seq: u64,
    from_now: bool,
) -> Result<Streaming<pb::SubscribeResponse>, tonic::Status> {
    client
        .subscribe(pb::SubscribeRequest {
            after_seq,
            from_now,
        })
        .await
        .map(|r| r.into_inner())
}

/// The next event, skipping heartbeats (which do not extend the patience).
async fn next_event(
    stream: &mut Streaming<pb::SubscribeResponse>,
) -> Result<pb::MailboxEvent, tonic::Status> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let item = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("an event or an end within the patience limit")?;
        match item.and_then(|i| i.item) {
            Some(pb::subscribe_response::Item::Event(e)) => return Ok(e),
            Some(pb::subscribe_response::Item::Heartbeat(_)) => continue,
            None => return Err(tonic::Status::unavailable("stream ended")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_has_no_gap_and_no_duplicate_under_concurrent_sends() {
    const SENDERS: u64 = 4;
    const EACH: u64 = 40;
    const TOTAL: u64 = SENDERS * EACH;
    let server = std::sync::Arc::new(TestServer::start().await);
    let communes = ["xa-van-nham", "xa-yen-vuong", "tt-huu-lung", "xa-dong-tan"];

    // Senders start first; subscribers join while they are sending.
    let (started_tx, started_rx) = tokio::sync::watch::channel(0u64);
    let mut senders = Vec::new();
    for (i, dept) in [
        "phong-noi-vu",
        "phong-tu-phap",
        "phong-tc-kh",
        "phong-tn-mt",
    ]
    .into_iter()
    .enumerate()
    {
        let server = server.clone();
        let started_tx = started_tx.clone();
        senders.push(tokio::spawn(async move {
            let mut client = server.client(dept).await;
            for n in 1..=EACH {
                let mut d = directive(dept, &["all-communes"], n);
                d.subject = format!("Chỉ thị {i}-{n}");
                server.send(&mut client, d).await;
                started_tx.send_modify(|count| *count += 1);
            }
        }));
    }

    // Three ways in for each commune: replay everything, join mid-way from
    // what was seen, and only from now.
    let mut subscribers = Vec::new();
    for commune in communes {
        for mode in 0..3 {
            let server = server.clone();
            let mut started = started_rx.clone();
            subscribers.push(tokio::spawn(async move {
                // Join once some sends are acknowledged, while others are in flight.
                started
                    .wait_for(|n| *n >= 10 + 5 * mode)
                    .await
                    .expect("senders running");
                let mut client = server.client(commune).await;
                let (after, from_now) = match mode {
                    0 => (0, false),
                    1 => (3, false),
                    _ => (0, true),
                };
                let mut stream = subscribe(&mut client, after, from_now)
                    .await
                    .expect("subscribe");
                let mut seen = Vec::new();
                while seen.last().copied().unwrap_or(0) < TOTAL {
                    seen.push(next_event(&mut stream).await.expect("event").seq);
                }
                (commune, mode, seen)
            }));
        }
    }
    for s in senders {
        s.await.expect("sender");
    }
    for s in subscribers {
        let (commune, mode, seen) = s.await.expect("subscriber");
        let first = seen[0];
        let expected: Vec<u64> = (first..=TOTAL).collect();
        assert_eq!(
            seen, expected,
            "{commune} mode {mode}: every sequence exactly once, in order"
        );
        match mode {
            0 => assert_eq!(first, 1),
            1 => assert_eq!(first, 4),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_no_longer_kept_or_not_yet_reached_is_out_of_range() {
    let server = TestServer::with_config(|c| c.store.events_kept = 5).await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    for n in 1..=10 {
        server
            .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], n))
            .await;
    }
    let mut van_nham = server.client("xa-van-nham").await;
    let err = subscribe(&mut van_nham, 2, false)
        .await
        .expect_err("trimmed");
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(
        err.message().contains("the oldest kept is 6"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("after_seq=10"),
        "says where to resume: {}",
        err.message()
    );
    let err = subscribe(&mut van_nham, 11, false)
        .await
        .expect_err("ahead");
    assert_eq!(err.code(), Code::OutOfRange);

    // Right at the edge: everything after 5 is kept.
    let mut stream = subscribe(&mut van_nham, 5, false).await.expect("kept");
    for seq in 6..=10 {
        assert_eq!(next_event(&mut stream).await.expect("event").seq, seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_gets_heartbeats_with_the_latest_sequence() {
    let server = TestServer::with_config(|c| c.notify.heartbeat = Duration::from_millis(50)).await;
    let mut van_nham = server.client("xa-van-nham").await;
    let mut stream = subscribe(&mut van_nham, 0, true).await.expect("subscribe");
    let beat = |item: Option<pb::SubscribeResponse>| match item.and_then(|i| i.item) {
        Some(pb::subscribe_response::Item::Heartbeat(h)) => Some(h.latest_seq),
        _ => None,
    };
    let first = stream.message().await.expect("stream");
    assert_eq!(beat(first), Some(0), "a heartbeat with no event yet");

    let mut noi_vu = server.client("phong-noi-vu").await;
    server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    assert_eq!(next_event(&mut stream).await.expect("event").seq, 1);
    loop {
        let item = timeout(PATIENCE, stream.message())
            .await
            .expect("heartbeat")
            .expect("stream");
        if let Some(latest) = beat(item) {
            assert_eq!(latest, 1);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_cut_off_and_resumes_while_senders_go_on() {
    const TOTAL: u64 = 1500;
    let server = std::sync::Arc::new(TestServer::with_config(|c| c.notify.buffer = 64).await);
    // A client that reads nothing and whose connection buffers little, as on
    // a slow line: otherwise HTTP/2's default 2 MiB window would hold every
    // event for it and the server would never see it fall behind.
    let mut stalled_client = server.client_with_window("xa-van-nham", 8 * 1024).await;
    let mut stalled = subscribe(&mut stalled_client, 0, false)
        .await
        .expect("subscribe");
    let mut reader_client = server.client("xa-van-nham").await;
    let mut reader = subscribe(&mut reader_client, 0, false)
        .await
        .expect("subscribe");
    let reading = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < TOTAL as usize {
            seen.push(next_event(&mut reader).await.expect("event").seq);
        }
        seen
    });

    // Senders finish although one subscriber reads nothing at all: were they
    // held back by it, this would never complete.
    let mut senders = Vec::new();
    for (i, dept) in ["phong-noi-vu", "phong-tu-phap", "phong-tc-kh"]
        .into_iter()
        .enumerate()
    {
        let server = server.clone();
        senders.push(tokio::spawn(async move {
            let mut client = server.client(dept).await;
            for n in 0..TOTAL / 3 {
                let mut d = directive(dept, &["xa-van-nham"], n + 1);
                d.subject = format!("{i}-{n}");
                server.send(&mut client, d).await;
            }
        }));
    }
    for s in senders {
        timeout(PATIENCE, s)
            .await
            .expect("senders are not held back")
            .expect("sender");
    }
    assert_eq!(
        timeout(PATIENCE, reading)
            .await
            .expect("reader")
            .expect("reader"),
        (1..=TOTAL).collect::<Vec<_>>()
    );

    // The stalled one gets what was buffered, then a clear status.
    let mut last = 0;
    let status = loop {
        match next_event(&mut stalled).await {
            Ok(e) => {
                assert_eq!(e.seq, last + 1);
                last = e.seq;
            }
            Err(status) => break status,
        }
    };
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    assert!(last < TOTAL, "cut off before the end");
    assert!(
        status.message().contains(&format!("after_seq={last}")),
        "{}",
        status.message()
    );

    // And it resumes where it was, missing nothing.
    let mut resumed = subscribe(&mut stalled_client, last, false)
        .await
        .expect("resume");
    for seq in last + 1..=TOTAL {
        assert_eq!(next_event(&mut resumed).await.expect("event").seq, seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_streams_with_unavailable_and_a_restart_resumes_exactly() {
    let mut server = TestServer::start().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    server
        .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
    let mut van_nham = server.client("xa-van-nham").await;
    let mut stream = subscribe(&mut van_nham, 0, false).await.expect("subscribe");
    assert_eq!(next_event(&mut stream).await.expect("event").seq, 1);

    let stopping = tokio::spawn(async move {
        server.stop().await;
        server
    });
    let status = next_event(&mut stream)
        .await
        .expect_err("ended by the shutdown");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("after_seq=1"),
        "{}",
        status.message()
    );
    let mut server = timeout(PATIENCE, stopping)
        .await
        .expect("shutdown completes")
        .expect("stop");

    // Three documents while nobody watches, across a restart.
    server.restart().await;
    let mut noi_vu = server.client("phong-noi-vu").await;
    let mut ids = Vec::new();
    for n in 2..=4 {
        ids.push(
            server
                .send(&mut noi_vu, directive("phong-noi-vu", &["xa-van-nham"], n))
                .await
                .id,
        );
    }
    server.restart().await;
    let mut van_nham = server.client("xa-van-nham").await;
    let mut stream = subscribe(&mut van_nham, 1, false).await.expect("resume");
    for (seq, id) in (2..=4).zip(ids) {
        let event = next_event(&mut stream).await.expect("event");
        assert_eq!((event.seq, event.document_id), (seq, id));
        assert_eq!(event.kind, pb::EventKind::DocumentArrived as i32);
    }
}
