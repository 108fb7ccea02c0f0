//! `lienthong fill`: fills a stopped server's data directory with signed
//! documents, for measuring at scale; re-runnable, with a progress bar on
//! stderr (when it is a terminal) and a summary on stdout.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::error::Result;
use super::output::{self, outln, print_json};
use crate::fill::Filled;

#[derive(Args)]
pub struct FillArgs {
    /// The data directory of a stopped server (its development PKI signs).
    #[arg(long, default_value = crate::defaults::DATA_DIR)]
    pub data: PathBuf,
    /// How many documents of the fill the store should hold when done; a
    /// second run adds only those missing.
    #[arg(long)]
    pub count: u64,
    /// Recipients of every document.
    #[arg(long, value_delimiter = ',', default_value = "xa-van-nham")]
    pub to: Vec<String>,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: FillArgs) -> Result {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(args.count),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} documents, {per_sec}, {eta} left {msg}",
    ) {
        bar.set_style(style);
    }
    let ticker = bar.clone();
    let progress = Arc::new(move |filled: Filled| {
        ticker.inc(1);
        if let Filled::AlreadyThere = filled {
            ticker.set_message("(skipping those already there)");
        }
    });
    let report =
        crate::fill::fill(&args.data, args.count, &args.to, args.in_flight, progress).await;
    bar.finish_and_clear();
    let report = report?;
    let rate = report.added as f64 / report.seconds.max(1e-9);
    if args.json {
        print_json(&json!({
            "added": report.added,
            "already_there": report.already_there,
            "seconds": report.seconds,
            "added_per_second": rate,
        }));
    } else {
        outln!(
            "{} added and {} already there, in {:.1} s ({rate:.0}/s)",
            output::plural(report.added, "document", "documents"),
            report.already_there,
            report.seconds
        );
    }
    Ok(())
}
