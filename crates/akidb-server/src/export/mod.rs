//! `akidb export`: writes every live document of a collection to a Parquet file in the import
//! schema (`id`, `vector` as a fixed-size list of float32, `metadata` as JSON text), readable
//! by pyarrow, DuckDB and `akidb import`. It reads the server's export stream (Arrow IPC) to a
//! temporary file beside the output, then rewrites it as Parquet and renames it into place, so
//! an interrupted export never leaves a partial file under the output's name.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use arrow_ipc::reader::StreamReader;
use clap::Args;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::remote::Remote;

/// `akidb export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// The collection to export.
    #[arg(long)]
    pub collection: String,
    /// The Parquet file to write (replaced if it exists).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let stream_path = PathBuf::from(format!("{}.arrows.tmp", args.out.display()));
    runtime.block_on(download(&args, &stream_path))?;
    let written = to_parquet(&stream_path, &args.out);
    let _ = std::fs::remove_file(&stream_path);
    let rows = written?;
    println!(
        "exported {rows} documents of {} to {} in {:.1} s",
        args.collection,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn download(args: &ExportArgs, to: &PathBuf) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/v1/collections/{}/export",
        args.remote.url.trim_end_matches('/'),
        args.collection
    );
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut req = http.get(&url);
    if let Some(key) = &args.remote.api_key {
        req = req.bearer_auth(key);
    }
    let mut resp = req
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    if !resp.status().is_success() {
        bail!(
            "{url}: HTTP {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?,
    );
    while let Some(chunk) = resp
        .chunk()
        .await
        .with_context(|| format!("{url}: the export stream broke off"))?
    {
        file.write_all(&chunk)?;
    }
    file.flush()?;
    Ok(())
}

/// Rewrites the Arrow IPC stream at `from` as Parquet at `out`; returns the rows written.
fn to_parquet(from: &PathBuf, out: &PathBuf) -> anyhow::Result<u64> {
    let reader = StreamReader::try_new(std::io::BufReader::new(std::fs::File::open(from)?), None)
        .context("the export stream is not Arrow IPC")?;
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
        reader.schema(),
        Some(props),
    )?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.context("the export stream is damaged or incomplete")?;
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    writer.close()?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming into {}", out.display()))?;
    Ok(rows)
}
