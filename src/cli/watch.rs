//! `lienthong watch`: mailbox events as they happen, one line each (one
//! JSON object per line with `--json`: a stream, not one document).

use std::collections::HashMap;

use clap::Args;
use serde_json::json;
use tonic::transport::Channel;

use super::connection::{connect, Connection};
use super::error::Result;
use super::output::{self, outln};
use crate::clock;
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;

#[derive(Args)]
#[command(mut_arg("json", |a| a.help(
    "Print one JSON object per line, as events come (a stream: each line is a document of its own)"
)))]
pub struct WatchArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Start after this event sequence (replaying what is stored); default:
    /// only events from now on.
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// Print heartbeats too.
    #[arg(long)]
    pub heartbeats: bool,
}

/// Follows the mailbox: on UNAVAILABLE (server restarting) or
/// RESOURCE_EXHAUSTED (we read too slowly) it resumes after the last event
/// printed, so nothing is printed twice or skipped; OUT_OF_RANGE ends it.
pub async fn run(args: WatchArgs) -> Result {
    let mut last = args.after;
    let mut client: Option<ExchangeClient<Channel>> = None;
    // Senders by alias, as `inbox` names them; events carry the code.
    let mut aliases: HashMap<String, String> = HashMap::new();
    loop {
        let mut c = match client.take() {
            Some(c) => c,
            None => match connect(&args.conn).await {
                Ok(c) => c,
                Err(e) if last.is_some() => {
                    output::note(&format!("watch: {e}; retrying"));
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        if aliases.is_empty() {
            if let Ok(directory) = c.get_directory(pb::GetDirectoryRequest {}).await {
                aliases = directory
                    .into_inner()
                    .organizations
                    .into_iter()
                    .filter(|o| !o.alias.is_empty())
                    .map(|o| (o.code, o.alias))
                    .collect();
            }
        }
        let request = pb::SubscribeRequest {
            after_seq: last.unwrap_or(0),
            from_now: last.is_none(),
        };
        let outcome: std::result::Result<(), tonic::Status> = match c.subscribe(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(item)) => match item.item {
                            Some(pb::subscribe_response::Item::Event(event)) => {
                                last = Some(event.seq);
                                print_event(&event, &aliases, args.conn.json);
                            }
                            Some(pb::subscribe_response::Item::Heartbeat(beat)) => {
                                if last.is_none() {
                                    last = Some(beat.latest_seq);
                                }
                                if args.heartbeats {
                                    print_heartbeat(&beat, args.conn.json);
                                }
                            }
                            None => {}
                        },
                        Ok(None) => break Err(tonic::Status::unavailable("the stream ended")),
                        Err(status) => break Err(status),
                    }
                }
            }
            Err(status) => Err(status),
        };
        // The channel reconnects by itself; keep it.
        client = Some(c);
        let Err(status) = outcome else { continue };
        match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::Unknown
            | tonic::Code::Cancelled => {
                output::note(&format!(
                    "watch: {}; resuming after {}",
                    status.message(),
                    last.unwrap_or(0)
                ));
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            _ => return Err(status.into()),
        }
    }
}

fn event_kind(kind: i32) -> &'static str {
    match pb::EventKind::try_from(kind) {
        Ok(pb::EventKind::DocumentArrived) => "document_arrived",
        Ok(pb::EventKind::StatusChanged) => "status_changed",
        Ok(pb::EventKind::DocumentRevoked) => "document_revoked",
        Ok(pb::EventKind::DocumentUpdated) => "document_updated",
        Ok(pb::EventKind::DocumentReplaced) => "document_replaced",
        _ => "unknown",
    }
}

/// One line per event: a JSON object with --json.
fn print_event(e: &pb::MailboxEvent, aliases: &HashMap<String, String>, as_json: bool) {
    let sender = aliases.get(&e.sender).unwrap_or(&e.sender);
    if as_json {
        let line = json!({
            "seq": e.seq,
            "kind": event_kind(e.kind),
            "document_id": e.document_id,
            "at": output::at(e.at_ms),
            "at_ms": e.at_ms,
            "sender": e.sender,
            "sender_alias": sender,
            "arrival_year": e.arrival_year,
            "arrival_number": e.arrival_number,
            "subject": e.subject,
            "urgency": output::urgency(e.urgency),
        });
        output::print_json_line(&line);
        return;
    }
    outln!(
        "{:>6}  {}  {:<16} {}  from {}  no. {}/{}  {:<10} {}",
        e.seq,
        clock::format_vietnam(e.at_ms),
        event_kind(e.kind),
        e.document_id,
        sender,
        e.arrival_number,
        e.arrival_year,
        output::urgency(e.urgency),
        output::cut(&e.subject, 60)
    );
}

fn print_heartbeat(h: &pb::Heartbeat, as_json: bool) {
    if as_json {
        output::print_json_line(
            &json!({"kind": "heartbeat", "latest_seq": h.latest_seq, "at": output::at(h.at_ms), "at_ms": h.at_ms}),
        );
    } else {
        outln!(
            "        {}  heartbeat, latest event {}",
            clock::format_vietnam(h.at_ms),
            h.latest_seq
        );
    }
}
