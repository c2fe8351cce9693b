//! Where a resumed import starts: the rows acknowledged without a gap before them. Batches are
//! sent in parallel and acknowledged in any order, so [`Acks`] (pure) keeps the finished
//! batches past the first gap; the checkpoint file holds the gapless count, rewritten
//! atomically as it grows. Rows past it may have been written already; their ids make sending
//! them again harmless.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Finished batches, by first row; `done` rows have been acknowledged with no gap.
#[derive(Debug, Default)]
pub struct Acks {
    done: u64,
    ahead: BTreeMap<u64, u64>,
}

impl Acks {
    pub fn starting_at(done: u64) -> Acks {
        Acks {
            done,
            ahead: BTreeMap::new(),
        }
    }

    /// Rows acknowledged with none missing before them.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Records the batch of `rows` rows from `first`; returns whether `done` grew.
    pub fn finish(&mut self, first: u64, rows: u64) -> bool {
        self.ahead.insert(first, rows);
        let before = self.done;
        while let Some(rows) = self.ahead.remove(&self.done) {
            self.done += rows;
        }
        self.done > before
    }
}

/// The checkpoint file: which import it belongs to and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub collection: String,
    pub files: Vec<String>,
    /// Rows (over all files, in order) acknowledged with no gap.
    pub rows_done: u64,
}

impl Checkpoint {
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: not a checkpoint: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Written to a temporary file and renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let bytes = serde_json::to_vec_pretty(self).expect("a checkpoint serializes");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_counts_only_rows_without_a_gap_before_them() {
        let mut acks = Acks::starting_at(0);
        assert!(!acks.finish(100, 100));
        assert!(!acks.finish(300, 50));
        assert_eq!(acks.done(), 0);
        assert!(acks.finish(0, 100));
        assert_eq!(acks.done(), 200);
        assert!(acks.finish(200, 100));
        assert_eq!(acks.done(), 350);
        let mut resumed = Acks::starting_at(350);
        assert!(resumed.finish(350, 10));
        assert_eq!(resumed.done(), 360);
    }

    #[test]
    fn a_checkpoint_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let c = Checkpoint {
            collection: "docs".into(),
            files: vec!["a.npy".into()],
            rows_done: 1234,
        };
        c.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(c));
        std::fs::write(&path, b"{").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }
}
