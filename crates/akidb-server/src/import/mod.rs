//! `akidb import`: loads Parquet, `.npy`, fvecs and JSONL files into a collection of a running
//! server, as Arrow IPC upsert bodies sent in parallel. Rows without an id get their row number
//! over all the files in order (`"0"`, `"1"`, ...), so every row has an id and sending one
//! twice is harmless: an interrupted import resumes (`--resume`) from its checkpoint file and
//! ends with exactly the source's documents. A row that cannot be read or that the server
//! refuses stops the import with its file and row number, or with `--skip-bad` goes to a
//! reject file (JSONL) instead.

mod checkpoint;
mod progress;
mod source;
mod upload;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tokio::task::JoinSet;

use crate::remote::Remote;

use self::checkpoint::{Acks, Checkpoint};
use self::progress::Progress;
use self::source::{Columns, Row};
use self::upload::{Batch, Refused, Uploader};

/// `akidb import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// The collection to load into.
    #[arg(long)]
    pub collection: String,
    /// Create the collection when it does not exist (its dimension is the first row's).
    #[arg(long)]
    pub create: bool,
    /// The metric of a collection made by --create: cosine, l2 or dot.
    #[arg(long, default_value = "cosine")]
    pub metric: String,
    /// Rows per request (at most 10,000).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Parquet: the id column (absent from a file: row numbers).
    #[arg(long, default_value = "id")]
    pub id_column: String,
    /// Parquet: the vector column (a list of float32 or float64).
    #[arg(long, default_value = "vector")]
    pub vector_column: String,
    /// Parquet: the metadata column (JSON text; may be absent).
    #[arg(long, default_value = "metadata")]
    pub metadata_column: String,
    /// For .npy and .fvecs files: a JSONL file of `{"id"?, "metadata"?}`, one line per row.
    #[arg(long, value_name = "FILE.jsonl")]
    pub ids: Option<PathBuf>,
    /// Continue an interrupted import from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// The checkpoint file; default `akidb-import-<collection>.json` in the current directory.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write bad rows to the reject file and go on, instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// Where --skip-bad writes bad rows; default `akidb-import-<collection>.rejects.jsonl`.
    #[arg(long)]
    pub reject_file: Option<PathBuf>,
    /// After loading, wait until the collection is fully indexed and report how long it took.
    #[arg(long)]
    pub wait_indexed: bool,
    /// The files, read in order: .parquet, .npy, .fvecs, .jsonl / .ndjson.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What an import did.
#[derive(Debug, Default)]
struct Summary {
    read: u64,
    written: u64,
    rejected: u64,
    resumed_from: u64,
}

/// Bad rows, with `--skip-bad`: one JSON line each.
struct Rejects {
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl Rejects {
    fn write(&mut self, file: &str, row: u64, error: &str) -> anyhow::Result<()> {
        if self.out.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("opening the reject file {}", self.path.display()))?;
            self.out = Some(std::io::BufWriter::new(f));
        }
        let line = serde_json::json!({"file": file, "row": row, "error": error});
        let out = self.out.as_mut().expect("opened above");
        writeln!(out, "{line}")?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(out) = &mut self.out {
            out.flush()?;
        }
        Ok(())
    }
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(import(args))
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    if !(1..=10_000).contains(&args.batch_size) {
        bail!("--batch-size must be 1 to 10000, got {}", args.batch_size);
    }
    if args.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let columns = Columns {
        id: args.id_column.clone(),
        vector: args.vector_column.clone(),
        metadata: args.metadata_column.clone(),
    };
    let files: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let checkpoint_path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("akidb-import-{}.json", args.collection)));
    let rejects = Rejects {
        path: args.reject_file.clone().unwrap_or_else(|| {
            PathBuf::from(format!("akidb-import-{}.rejects.jsonl", args.collection))
        }),
        out: None,
    };
    let skip = if args.resume {
        match Checkpoint::load(&checkpoint_path).map_err(anyhow::Error::msg)? {
            Some(c) if c.collection != args.collection || c.files != files => bail!(
                "{} is the checkpoint of another import ({} from {}): give --checkpoint",
                checkpoint_path.display(),
                c.collection,
                c.files.join(" ")
            ),
            Some(c) => c.rows_done,
            None => bail!(
                "--resume: no checkpoint at {} (an import writes it as it goes)",
                checkpoint_path.display()
            ),
        }
    } else {
        0
    };

    // Every file opens (and a Parquet file has its vector column) before anything is sent.
    for f in &args.files {
        drop(source::open(f, &columns, args.ids.as_deref()).map_err(anyhow::Error::msg)?);
    }
    let uploader = Uploader::new(
        &args.remote.url,
        args.remote.api_key.as_deref(),
        &args.collection,
    )?;
    let dimension = match uploader.dimension().await? {
        Some(d) => d,
        None if args.create => {
            let first = args
                .files
                .iter()
                .find_map(|f| {
                    source::open(f, &columns, args.ids.as_deref())
                        .ok()
                        .and_then(|mut rows| rows.find_map(Result::ok))
                })
                .context("--create: no readable row gives the dimension")?;
            uploader.create(first.vector.len(), &args.metric).await?;
            first.vector.len()
        }
        None => bail!(
            "collection {} does not exist on {}: create it, or pass --create (with --metric)",
            args.collection,
            args.remote.url
        ),
    };

    let total = args
        .files
        .iter()
        .map(|f| source::count(f))
        .sum::<Option<u64>>();
    let mut run = Pipeline {
        parallel: args.parallel,
        skip_bad: args.skip_bad,
        uploader,
        in_flight: JoinSet::new(),
        acks: Acks::starting_at(skip),
        progress: Progress::new(total, skip),
        summary: Summary {
            resumed_from: skip,
            ..Summary::default()
        },
        rejects,
        checkpoint: Checkpoint {
            collection: args.collection.clone(),
            files: files.clone(),
            rows_done: skip,
        },
        checkpoint_path,
    };
    let started = Instant::now();
    let mut global = 0u64;
    let mut batch = Batch::new(global, dimension);
    for (path, name) in args.files.iter().zip(&files) {
        let rows = source::open(path, &columns, args.ids.as_deref()).map_err(anyhow::Error::msg)?;
        for (file_row, row) in (0u64..).zip(rows) {
            let at = global;
            global += 1;
            if at < skip {
                continue;
            }
            run.summary.read += 1;
            let row: Row = match row.and_then(|r| check(r, file_row, dimension)) {
                Ok(r) => r,
                Err(e) if e.fatal => bail!("{name}: {}", e.message),
                Err(e) if args.skip_bad => {
                    run.reject(name, e.row, &e.message)?;
                    batch.skip_row();
                    continue;
                }
                Err(e) => bail!(
                    "{name} row {}: {} (--skip-bad sets bad rows aside in a reject file)",
                    e.row,
                    e.message
                ),
            };
            let id = row.id.clone().unwrap_or_else(|| at.to_string());
            batch.push(id, &row.vector, row.metadata, (name.clone(), file_row));
            if batch.span() as usize >= args.batch_size {
                let full = std::mem::replace(&mut batch, Batch::new(global, dimension));
                run.send(full).await?;
            }
        }
    }
    if batch.span() > 0 {
        run.send(batch).await?;
    }
    run.drain().await?;
    let Pipeline {
        progress,
        mut rejects,
        summary,
        uploader,
        ..
    } = run;
    progress.finish();
    rejects.flush()?;
    let elapsed = started.elapsed();
    let rate = summary.written as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "imported {} documents into {} in {:.1} s ({rate:.0} documents/s acknowledged): {} rows read, {} rejected{}{}",
        summary.written,
        args.collection,
        elapsed.as_secs_f64(),
        summary.read,
        summary.rejected,
        if summary.rejected > 0 {
            format!(" (in {})", rejects.path.display())
        } else {
            String::new()
        },
        if summary.resumed_from > 0 {
            format!(", resumed after row {}", summary.resumed_from)
        } else {
            String::new()
        },
    );
    if args.wait_indexed {
        let indexed = uploader.wait_indexed(Duration::from_millis(200)).await?;
        println!(
            "fully indexed {:.1} s after the import started",
            (indexed - started).as_secs_f64()
        );
    }
    Ok(())
}

/// A row whose vector does not have the collection's dimension is a bad row.
fn check(row: Row, file_row: u64, dimension: usize) -> Result<Row, source::ReadError> {
    if row.vector.len() == dimension {
        return Ok(row);
    }
    Err(source::ReadError {
        row: file_row,
        message: format!(
            "the vector has dimension {}, the collection's is {dimension}",
            row.vector.len()
        ),
        fatal: false,
    })
}

/// Batches in flight and what their answers advance: the checkpoint, progress, the summary.
struct Pipeline {
    parallel: usize,
    skip_bad: bool,
    uploader: Uploader,
    in_flight: JoinSet<Result<Batch, Refused>>,
    acks: Acks,
    progress: Progress,
    summary: Summary,
    rejects: Rejects,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
}

impl Pipeline {
    /// Sends a batch once fewer than `parallel` are in flight.
    async fn send(&mut self, batch: Batch) -> anyhow::Result<()> {
        while self.in_flight.len() >= self.parallel {
            let done = self.in_flight.join_next().await.expect("not empty")?;
            self.settle(done)?;
        }
        let up = self.uploader.clone();
        self.in_flight.spawn(async move { up.send(batch).await });
        Ok(())
    }

    /// Waits for every batch in flight (and those sent again after a refused row).
    async fn drain(&mut self) -> anyhow::Result<()> {
        while let Some(done) = self.in_flight.join_next().await {
            self.settle(done?)?;
        }
        Ok(())
    }

    fn reject(&mut self, file: &str, row: u64, error: &str) -> anyhow::Result<()> {
        self.summary.rejected += 1;
        self.rejects.write(file, row, error)
    }

    /// Rows `first..first + span` are done: the checkpoint advances when no gap is left
    /// before them.
    fn done(&mut self, first: u64, span: u64, written: usize) -> anyhow::Result<()> {
        self.summary.written += written as u64;
        self.progress.inc(span);
        if self.acks.finish(first, span) {
            self.checkpoint.rows_done = self.acks.done();
            self.checkpoint
                .save(&self.checkpoint_path)
                .map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// A finished request: acknowledged rows are done; a row the server refused stops the
    /// import, or with `--skip-bad` is rejected and the rest of its batch sent again.
    fn settle(&mut self, done: Result<Batch, Refused>) -> anyhow::Result<()> {
        match done {
            Ok(batch) => self.done(batch.first(), batch.span(), batch.len()),
            Err(Refused::Row {
                batch,
                index,
                message,
            }) if self.skip_bad => {
                let (file, row) = batch.origin(index).clone();
                self.reject(&file, row, &message)?;
                let rest = batch.without(index);
                if rest.len() == 0 {
                    return self.done(rest.first(), rest.span(), 0);
                }
                let up = self.uploader.clone();
                self.in_flight.spawn(async move { up.send(rest).await });
                Ok(())
            }
            Err(Refused::Row {
                batch,
                index,
                message,
            }) => {
                let (file, row) = batch.origin(index);
                bail!(
                    "{file} row {row}: the server refused it: {message} (--skip-bad sets bad rows aside)"
                )
            }
            Err(Refused::Failed(e)) => Err(e),
        }
    }
}
