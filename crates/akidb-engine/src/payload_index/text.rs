//! `text` payload indexes: BM25 full-text search over a metadata field, through tantivy.
//!
//! One tantivy index per `text` index, in a RAM directory, with two fields: `slot` (a u64
//! fast field, also indexed so a dying slot can be deleted by term) and `text` (the strings at
//! the index's path: a string, or each string of an array; English stemming, lower-cased,
//! tokens over 40 bytes dropped). A slot without a string there has no tantivy document.
//!
//! **Built lazily.** Loading a collection or writing to it costs nothing here: the index
//! catches up with the state's slots at the first text search after them (it adds the live
//! slots it has not seen, then commits, as Elasticsearch's refresh), under its writer's lock, so
//! a search never reads an index older than the writes applied before it. A dying slot that
//! the index already holds is deleted by term. The tantivy writer (one indexing and one
//! merging thread, tantivy's smallest memory budget: 15 MB, a limit, not an allocation) starts
//! at that first search, so a loaded collection that is never searched by text runs no thread
//! for it. Measured on minilm (BENCHMARKS.md): building over 20,000 descriptions took 1.15 s,
//! which a load would otherwise pay whether or not text is ever searched.
//!
//! A query is tokenized with the field's own analyzer and searched as the OR of its terms,
//! ranked by BM25 (tantivy's: k1 1.2, b 0.75): the match query of Elasticsearch or Qdrant, with
//! no query syntax to get wrong.

use std::io;

use parking_lot::Mutex;
use tantivy::collector::TopDocs;
use tantivy::directory::RamDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::field_values;
use crate::doc::Metadata;
use serde_json::Value;

/// Most distinct terms a text query may hold (longer queries keep the first ones).
pub const MAX_QUERY_TERMS: usize = 64;

pub(crate) struct TextIndex {
    path: Vec<String>,
    path_str: String,
    directory: RamDirectory,
    index: Index,
    slot: Field,
    text: Field,
    writer: Mutex<Writer>,
    reader: IndexReader,
}

struct Writer {
    /// Started at the first catch-up.
    writer: Option<IndexWriter>,
    /// Slots below this have been added (or had no text).
    indexed: u32,
    /// Documents added or deleted since the last commit.
    dirty: bool,
    /// Set when tantivy failed a write: the index no longer matches the state, so searches fail
    /// until the state is rebuilt (the next load or compaction).
    failed: Option<String>,
}

fn tantivy_error(e: tantivy::TantivyError) -> io::Error {
    io::Error::other(format!("text index: {e}"))
}

impl TextIndex {
    /// An empty index on the dotted `path`.
    pub fn new(path: &str) -> io::Result<TextIndex> {
        let mut schema = Schema::builder();
        let slot = schema.add_u64_field("slot", FAST | INDEXED);
        let text = schema.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("en_stem")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        );
        let directory = RamDirectory::create();
        let index = Index::create(directory.clone(), schema.build(), Default::default())
            .map_err(tantivy_error)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_error)?;
        Ok(TextIndex {
            path: path.split('.').map(str::to_string).collect(),
            path_str: path.to_string(),
            directory,
            index,
            slot,
            text,
            writer: Mutex::new(Writer {
                writer: None,
                indexed: 0,
                dirty: false,
                failed: None,
            }),
            reader,
        })
    }

    pub fn path_str(&self) -> &str {
        &self.path_str
    }

    /// The tantivy document of a slot's metadata; None without text at the path.
    fn document(&self, slot: u32, metadata: &Metadata) -> Option<TantivyDocument> {
        let mut found = Vec::new();
        field_values(metadata, &self.path, &mut found);
        let mut doc = TantivyDocument::default();
        let mut any = false;
        let mut add = |v: &Value| {
            if let Value::String(s) = v {
                doc.add_text(self.text, s);
                any = true;
            }
        };
        for v in found {
            match v {
                Value::Array(items) => items.iter().for_each(&mut add),
                v => add(v),
            }
        }
        doc.add_u64(self.slot, u64::from(slot));
        any.then_some(doc)
    }

    /// A slot died: forgotten, if the index holds it (a slot it has not reached has no
    /// metadata any more, so it is never added).
    pub fn kill(&self, slot: u32) {
        let mut w = self.writer.lock();
        if slot < w.indexed
            && let Some(writer) = &w.writer
        {
            writer.delete_term(Term::from_field_u64(self.slot, u64::from(slot)));
            w.dirty = true;
        }
    }

    /// Adds slots `indexed..slots` (`metadata` gives a slot's, None when dead) and commits, so
    /// that every change so far is searchable.
    fn catch_up<'a>(
        &self,
        slots: u32,
        metadata: impl Fn(u32) -> Option<&'a Metadata>,
    ) -> io::Result<()> {
        let mut w = self.writer.lock();
        if let Some(e) = &w.failed {
            return Err(io::Error::other(format!(
                "text index on {:?} failed ({e}); it is rebuilt at the next load or compaction",
                self.path_str
            )));
        }
        let w = &mut *w;
        if w.indexed < slots {
            let writer = match &mut w.writer {
                Some(writer) => writer,
                empty => empty.insert(
                    self.index
                        .writer_with_options(
                            IndexWriterOptions::builder()
                                .num_worker_threads(1)
                                .num_merge_threads(1)
                                .build(),
                        )
                        .map_err(tantivy_error)?,
                ),
            };
            for slot in w.indexed..slots {
                let Some(doc) = metadata(slot).and_then(|m| self.document(slot, m)) else {
                    continue;
                };
                if let Err(e) = writer.add_document(doc) {
                    w.failed = Some(e.to_string());
                    return Err(tantivy_error(e));
                }
                w.dirty = true;
            }
            w.indexed = slots;
        }
        if w.dirty
            && let Some(writer) = &mut w.writer
        {
            if let Err(e) = writer.commit() {
                w.failed = Some(e.to_string());
                return Err(tantivy_error(e));
            }
            self.reader.reload().map_err(tantivy_error)?;
            w.dirty = false;
        }
        Ok(())
    }

    /// The `k` best slots for `query` by BM25 among those `keep` accepts, best first (ties by
    /// slot). Reads more of the ranking while `keep` refuses hits, until `k` are kept or the
    /// ranking ends.
    /// `slots` and `metadata` are the state's, to catch up with first.
    pub fn search<'a>(
        &self,
        query: &str,
        k: usize,
        slots: u32,
        metadata: impl Fn(u32) -> Option<&'a Metadata>,
        mut keep: impl FnMut(u32) -> bool,
    ) -> io::Result<Vec<(u32, f32)>> {
        self.catch_up(slots, metadata)?;
        let Some(query) = self.query(query)? else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let mut limit = k.max(16);
        loop {
            let top = searcher
                .search(&query, &TopDocs::with_limit(limit).order_by_score())
                .map_err(tantivy_error)?;
            let mut columns = vec![None; searcher.segment_readers().len()];
            let mut hits = Vec::with_capacity(k);
            for &(score, address) in &top {
                let column = match &mut columns[address.segment_ord as usize] {
                    Some(c) => c,
                    empty => empty.insert(
                        searcher
                            .segment_reader(address.segment_ord)
                            .fast_fields()
                            .u64("slot")
                            .map_err(tantivy_error)?,
                    ),
                };
                let Some(slot) = column.first(address.doc_id) else {
                    continue;
                };
                let slot = slot as u32;
                if keep(slot) {
                    hits.push((slot, score));
                }
            }
            hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            hits.truncate(k);
            if hits.len() == k || top.len() < limit {
                return Ok(hits);
            }
            limit = limit.saturating_mul(4);
        }
    }

    /// The OR of the query's distinct terms; None when it has none.
    fn query(&self, text: &str) -> io::Result<Option<Box<dyn Query>>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.text)
            .map_err(tantivy_error)?;
        let mut stream = analyzer.token_stream(text);
        let mut terms: Vec<Term> = Vec::new();
        while stream.advance() {
            let term = Term::from_field_text(self.text, &stream.token().text);
            if !terms.contains(&term) {
                terms.push(term);
                if terms.len() == MAX_QUERY_TERMS {
                    break;
                }
            }
        }
        if terms.is_empty() {
            return Ok(None);
        }
        let clauses = terms
            .into_iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        Ok(Some(Box::new(BooleanQuery::new(clauses))))
    }

    /// Bytes of the committed index (the RAM directory's files).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<TextIndex>() + self.directory.total_mem_usage()
    }
}

impl std::fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextIndex")
            .field("path", &self.path_str)
            .finish_non_exhaustive()
    }
}
