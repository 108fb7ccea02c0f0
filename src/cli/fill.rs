//! `lienthong fill`: fills a stopped server's data directory with signed
//! documents, for measuring at scale.

use std::path::PathBuf;

use clap::Args;

use super::connection::Result;
use super::output::{self, outln};

#[derive(Args)]
pub struct FillArgs {
    #[arg(long, default_value = crate::defaults::DATA_DIR)]
    pub data: PathBuf,
    #[arg(long)]
    pub count: u64,
    #[arg(long, value_delimiter = ',', default_value = "xa-van-nham")]
    pub to: Vec<String>,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
}

pub async fn run(args: FillArgs) -> Result {
    let progress = std::sync::Arc::new(|n: u64| output::note(&format!("fill: {n} documents")));
    let seconds =
        crate::bench::fill(&args.data, args.count, &args.to, args.in_flight, progress).await?;
    outln!(
        "filled {} documents in {seconds:.1} s ({:.0}/s)",
        args.count,
        args.count as f64 / seconds
    );
    Ok(())
}
