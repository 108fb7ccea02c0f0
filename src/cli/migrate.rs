//! `lienthong migrate`: a stopped server's embedded store into PostgreSQL,
//! verified (see `crate::migrate`); a progress line on stderr, what was
//! verified on stdout.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use tonic::Code;

use super::error::{CliError, Result};
use super::output::{self, outln, print_json};
use crate::migrate::{MigrateError, Migrated, Step};
use crate::store::postgres::PostgresUrl;

#[derive(Args)]
#[command(after_help = "\
Attachment files are not in the database: they stay under DATA_DIR/attachments. \
Afterwards every front end runs `lienthong serve --data DATA_DIR --store URL` with the \
same DATA_DIR (pki/, the service key and attachments/ shared by all). The sled store \
under DATA_DIR/store is left as it was, as the fallback until you remove it.")]
pub struct MigrateArgs {
    /// The data directory of a stopped server on the embedded store; its
    /// store (DATA_DIR/store) is read, never changed.
    #[arg(long, value_name = "DATA_DIR")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into (postgres://… or
    /// postgresql://…): empty, or holding an earlier migrate of the same
    /// deployment, which is completed.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Print what was copied and verified as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: MigrateArgs) -> Result {
    let url = PostgresUrl::parse(&args.to)
        .map_err(|reason| CliError::new(Code::InvalidArgument, format!("--to: {reason}")))?;
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    let ticker = bar.clone();
    let from = args.from.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        crate::migrate::migrate(&from, &url, &|step| show(&ticker, step))
    })
    .await;
    bar.finish_and_clear();
    let migrated = outcome
        .map_err(|e| CliError::new(Code::Internal, format!("the migration stopped: {e}")))?
        .map_err(cli_error)?;
    let target = PostgresUrl::redacted(&args.to);
    let data = args.from.display().to_string();
    if args.json {
        print_json(&summary(&migrated, &data, &target));
    } else {
        print_text(&migrated, &data, &target);
    }
    Ok(())
}

fn show(bar: &indicatif::ProgressBar, step: Step) {
    match step {
        Step::OpeningSource => bar.set_message("opening the source store"),
        Step::CheckingTarget => bar.set_message("checking what the target database holds"),
        Step::Copying { entries } => {
            // Every entry would redraw for nothing: indicatif draws at its
            // own rate, but formatting the message is ours.
            if entries % 1024 == 0 {
                bar.set_message(format!("copying: {entries} entries"));
            }
        }
        Step::Pruning(space) => bar.set_message(format!(
            "removing what the source does not hold: {}",
            space.name()
        )),
        Step::Verifying(space) => bar.set_message(format!("verifying {}", space.name())),
        Step::Auditing { target } => bar.set_message(format!(
            "auditing the {}'s archive",
            if target { "target" } else { "source" }
        )),
    }
    bar.tick();
}

fn cli_error(e: MigrateError) -> CliError {
    let code = match &e {
        MigrateError::NoSource { .. } | MigrateError::ServiceKey(_) => Code::NotFound,
        MigrateError::SourceInUse { .. }
        | MigrateError::SourceSchema { .. }
        | MigrateError::Different(_) => Code::FailedPrecondition,
        MigrateError::Mismatch(_) => Code::DataLoss,
        MigrateError::Source(_) | MigrateError::Target(_) => Code::Unavailable,
    };
    let error = CliError::new(code, e.to_string());
    match e {
        MigrateError::Mismatch(_) | MigrateError::Target(_) => {
            error.with_hint("a migrate may be run again: it copies everything again and verifies")
        }
        _ => error,
    }
}

/// What every front end needs afterwards, said at the end of the output.
fn next_steps(data: &str, target: &str) -> [String; 2] {
    [
        format!(
            "attachment files are not in the database: they stay in {data}/attachments. Run every \
             front end with this same data directory (pki/, the service key and attachments/ \
             shared by all): lienthong serve --data {data} --store {target}"
        ),
        format!(
            "the sled store in {data}/store is left as it was: it is the fallback until you \
             remove it (do not serve from both)"
        ),
    ]
}

fn print_text(m: &Migrated, data: &str, target: &str) {
    outln!(
        "copied {} from {data}/store into {target} (it held {} of the {} archive leaves before); removed {} the source does not hold",
        output::plural(m.copied, "entry", "entries"),
        m.target_leaves_before,
        m.archive.leaves,
        output::plural(m.removed, "entry", "entries"),
    );
    outln!("verified, equal on both sides:");
    for (space, count) in &m.entries {
        outln!("  {:<18} {count:>10} entries", space.name());
    }
    outln!(
        "  {} with the same receipt, each signed by service key {}",
        output::plural(m.documents, "document", "documents"),
        m.service_key_id
    );
    outln!(
        "  archive: {} and {} audited on each side, root {}",
        output::plural(m.archive.leaves, "leaf", "leaves"),
        output::plural(m.archive.checkpoints, "checkpoint", "checkpoints"),
        m.archive
            .root
            .map(hex::encode)
            .unwrap_or_else(|| "none (empty)".into())
    );
    for line in next_steps(data, target) {
        outln!("{line}");
    }
}

fn summary(m: &Migrated, data: &str, target: &str) -> serde_json::Value {
    json!({
        "copied": m.copied,
        "removed": m.removed,
        "target_leaves_before": m.target_leaves_before,
        "entries": m.entries.iter().map(|(space, n)| (space.name().to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "documents": m.documents,
        "service_key_id": m.service_key_id,
        "archive": {
            "leaves": m.archive.leaves,
            "checkpoints": m.archive.checkpoints,
            "root": m.archive.root.map(hex::encode),
        },
        "next": next_steps(data, target),
    })
}
