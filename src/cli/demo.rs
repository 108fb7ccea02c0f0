//! `lienthong demo`: fills a new data directory with a year of Hữu Lũng's
//! exchange through the real API, with a progress bar on stderr and a
//! summary on stdout.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::error::Result;
use super::output::{outln, print_json};
use crate::demo::{Progress, DEFAULT_DOCUMENTS};

#[derive(Args)]
pub struct DemoArgs {
    /// The data directory to fill: new or empty; then `serve --data DIR`.
    #[arg(long)]
    pub data: PathBuf,
    /// How many documents the year holds (sent, or recorded as going out on
    /// paper).
    #[arg(long, default_value_t = DEFAULT_DOCUMENTS)]
    pub documents: u64,
    /// The seed of the plan: the same seed gives the same year.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DemoArgs) -> Result {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {per_sec}, {eta} left")
    {
        bar.set_style(style);
    }
    let ticker = bar.clone();
    let progress = Arc::new(move |p: Progress| {
        ticker.set_length(p.total);
        ticker.set_position(p.done);
    });
    let report = crate::demo::demo(&args.data, args.documents, args.seed, progress).await;
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        print_json(&json!(report));
    } else {
        outln!(
            "{} documents from {} to {} ({} on paper, {} paper copies recorded by their recipients), {} status changes, {} revoked and replaced, in {:.1} s",
            report.documents,
            report.first_day,
            report.last_day,
            report.paper,
            report.paper_received,
            report.status_changes,
            report.revoked,
            report.seconds
        );
        outln!(
            "Now: lienthong serve --data {} --http 127.0.0.1:8080, and open http://127.0.0.1:8080/",
            args.data.display()
        );
    }
    Ok(())
}
