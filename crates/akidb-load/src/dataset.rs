//! texmex data sets: `base.fvecs`, `queries.fvecs`, `groundtruth.ivecs` (little-endian; each
//! row is an int32 length followed by that many float32 / int32 values).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Rows of equal length, stored flat.
#[derive(Debug, Clone)]
pub struct Rows<T> {
    pub dim: usize,
    pub data: Vec<T>,
}

impl<T> Rows<T> {
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Parses a `.fvecs` / `.ivecs` byte buffer; `what` names the file in errors.
pub fn parse_vecs<T>(bytes: &[u8], what: &str, conv: fn([u8; 4]) -> T) -> Result<Rows<T>> {
    if bytes.is_empty() {
        bail!("{what} is empty");
    }
    let mut data = Vec::new();
    let mut dim = None;
    let mut pos = 0usize;
    let mut row = 0usize;
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 4) else {
            bail!("{what} is malformed: row {row} has a truncated length field at byte {pos}");
        };
        let d = i32::from_le_bytes(head.try_into().expect("4 bytes"));
        if d <= 0 || d > 1 << 20 {
            bail!("{what} is malformed: row {row} declares length {d}");
        }
        let d = d as usize;
        match dim {
            None => dim = Some(d),
            Some(first) if first != d => {
                bail!("{what} is malformed: row {row} has length {d}, row 0 has {first}")
            }
            _ => {}
        }
        pos += 4;
        let Some(body) = bytes.get(pos..pos + 4 * d) else {
            bail!(
                "{what} is malformed: row {row} needs {} bytes, {} remain (truncated file?)",
                4 * d,
                bytes.len() - pos
            );
        };
        data.extend(
            body.chunks_exact(4)
                .map(|c| conv(c.try_into().expect("4 bytes"))),
        );
        pos += 4 * d;
        row += 1;
    }
    Ok(Rows {
        dim: dim.expect("at least one row"),
        data,
    })
}

fn read_vecs<T>(path: &Path, conv: fn([u8; 4]) -> T) -> Result<Rows<T>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_vecs(&bytes, &path.display().to_string(), conv)
}

/// A texmex folder: base vectors (id = row index), queries, exact neighbours per query.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub base: Rows<f32>,
    pub queries: Rows<f32>,
    /// Exact nearest base ids per query, best first.
    pub groundtruth: Rows<i32>,
}

impl Dataset {
    pub fn load(dir: &Path) -> Result<Dataset> {
        if !dir.is_dir() {
            bail!(
                "--dataset {}: no such directory (expected a texmex folder with base.fvecs, \
                 queries.fvecs, groundtruth.ivecs)",
                dir.display()
            );
        }
        let base = read_vecs(&dir.join("base.fvecs"), f32::from_le_bytes)?;
        let queries = read_vecs(&dir.join("queries.fvecs"), f32::from_le_bytes)?;
        let groundtruth = read_vecs(&dir.join("groundtruth.ivecs"), i32::from_le_bytes)?;
        Dataset::check(dir, base, queries, groundtruth)
    }

    pub fn check(
        dir: &Path,
        base: Rows<f32>,
        queries: Rows<f32>,
        groundtruth: Rows<i32>,
    ) -> Result<Dataset> {
        if queries.dim != base.dim {
            bail!(
                "dataset {}: queries.fvecs has dimension {}, base.fvecs {}",
                dir.display(),
                queries.dim,
                base.dim
            );
        }
        if groundtruth.len() != queries.len() {
            bail!(
                "dataset {}: groundtruth.ivecs has {} rows for {} queries",
                dir.display(),
                groundtruth.len(),
                queries.len()
            );
        }
        if let Some(bad) = groundtruth
            .data
            .iter()
            .find(|&&id| id < 0 || id as usize >= base.len())
        {
            bail!(
                "dataset {}: groundtruth.ivecs names base id {bad}, but base.fvecs has {} rows",
                dir.display(),
                base.len()
            );
        }
        if base
            .data
            .iter()
            .chain(&queries.data)
            .any(|x| !x.is_finite())
        {
            bail!("dataset {}: a vector holds NaN or infinity", dir.display());
        }
        Ok(Dataset {
            path: dir.to_path_buf(),
            base,
            queries,
            groundtruth,
        })
    }

    pub fn dim(&self) -> usize {
        self.base.dim
    }

    /// For each query, the exact top-`k` ids among the first `loaded` base rows, when the
    /// ground truth (top-`groundtruth.dim` over the full base set) determines them: restricting
    /// an exact ranking to a subset keeps its order, so the first `k` ground-truth ids below
    /// `loaded` are the subset's exact top-k, provided at least `k` of them are listed.
    pub fn truth_for(&self, loaded: usize, k: usize) -> Vec<Option<Vec<u32>>> {
        (0..self.groundtruth.len())
            .map(|q| {
                let ids: Vec<u32> = self
                    .groundtruth
                    .row(q)
                    .iter()
                    .filter(|&&id| (id as usize) < loaded)
                    .take(k)
                    .map(|&id| id as u32)
                    .collect();
                (ids.len() == k).then_some(ids)
            })
            .collect()
    }
}

/// |found ∩ truth| / |truth|; ids that are not base row numbers count as misses.
pub fn recall(found: &[String], truth: &[u32]) -> f64 {
    let hits = found
        .iter()
        .take(truth.len())
        .filter_map(|id| id.parse::<u32>().ok())
        .filter(|id| truth.contains(id))
        .count();
    hits as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fvecs(rows: &[&[f32]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in rows {
            out.extend((r.len() as i32).to_le_bytes());
            for x in *r {
                out.extend(x.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn parses_and_rejects_malformed_files() {
        let rows =
            parse_vecs(&fvecs(&[&[1.0, 2.0], &[3.0, 4.0]]), "t", f32::from_le_bytes).unwrap();
        assert_eq!((rows.dim, rows.len()), (2, 2));
        assert_eq!(rows.row(1), &[3.0, 4.0]);
        let mixed = fvecs(&[&[1.0, 2.0], &[3.0]]);
        let e = parse_vecs(&mixed, "t", f32::from_le_bytes).unwrap_err();
        assert!(e.to_string().contains("row 1 has length 1"), "{e}");
        let mut truncated = fvecs(&[&[1.0, 2.0]]);
        truncated.pop();
        let e = parse_vecs(&truncated, "t", f32::from_le_bytes).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(parse_vecs(&[], "t", f32::from_le_bytes).is_err());
        assert!(parse_vecs(b"garbage text", "t", f32::from_le_bytes).is_err());
    }

    #[test]
    fn truth_restricted_to_a_prefix_and_recall() {
        let base = Rows {
            dim: 1,
            data: vec![0.0f32; 10],
        };
        let queries = Rows {
            dim: 1,
            data: vec![0.0f32; 2],
        };
        let gt = Rows {
            dim: 4,
            data: vec![7, 1, 3, 0, 9, 8, 2, 6],
        };
        let d = Dataset::check(Path::new("x"), base, queries, gt).unwrap();
        assert_eq!(d.truth_for(10, 2), vec![Some(vec![7, 1]), Some(vec![9, 8])]);
        // Only ids < 4 loaded: query 0 keeps 1, 3; query 1 has only one id below 4.
        assert_eq!(d.truth_for(4, 2), vec![Some(vec![1, 3]), None]);
        let found = ["1".to_string(), "5".to_string(), "x".to_string()];
        assert_eq!(recall(&found, &[1, 3]), 0.5);
        assert_eq!(recall(&["3".into(), "1".into()], &[1, 3]), 1.0);
    }
}
