//! The full-precision vectors of a quantized hot collection, in a local file read back with
//! `pread` (re-ranking a search reads a few dozen vectors; the page cache keeps the hot ones,
//! and none of it counts in the process's RSS as a mapping would).
//!
//! The file is a cache of what the segments and the WAL hold: created when the collection is
//! quantized (`<collection dir>/hot-vectors/<uuid>.f32`), deleted when the state is dropped,
//! and every leftover deleted when the collection opens (after a crash).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use akidb_core::index::FullVectors;

const DIR: &str = "hot-vectors";

pub(crate) struct VectorFile {
    file: File,
    path: PathBuf,
    dim: usize,
    /// Bytes appended so far: the next append writes at this offset, so a failed one (a
    /// full disk) is overwritten by the retry, never left in front of it.
    len: u64,
}

impl VectorFile {
    /// A new, empty file in `collection_dir`.
    pub fn create(collection_dir: &Path, dim: usize) -> io::Result<VectorFile> {
        let dir = collection_dir.join(DIR);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.f32", uuid::Uuid::now_v7().simple()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(VectorFile {
            file,
            path,
            dim,
            len: 0,
        })
    }

    /// Deletes the files a crashed process left behind.
    pub fn remove_leftovers(collection_dir: &Path) {
        let _ = std::fs::remove_dir_all(collection_dir.join(DIR));
    }
}

impl FullVectors for VectorFile {
    fn append(&mut self, vectors: &[f32]) -> io::Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(vectors);
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn read(&self, slot: u32, out: &mut [f32]) -> io::Result<()> {
        let at = slot as u64 * self.dim as u64 * 4;
        self.file.read_exact_at(bytemuck::cast_slice_mut(out), at)
    }
}

impl Drop for VectorFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
