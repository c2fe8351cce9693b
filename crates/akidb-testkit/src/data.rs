//! Test data: texmex files (`.fvecs`, `.ivecs`, the format of `../shared/data/`), recall, and
//! seeded vectors. One implementation for every test suite and benchmark.

use std::collections::HashSet;
use std::path::Path;

/// One texmex row as raw little-endian words.
type Row = Vec<[u8; 4]>;

/// Reads a texmex file (`.fvecs` / `.ivecs`): rows of `[d: i32][d × 4 bytes]`. Returns the
/// dimension and the rows as raw little-endian words; any inconsistency is an error.
fn read_vecs(path: &Path) -> Result<(usize, Vec<Row>), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() < 4 {
        return Err(format!(
            "{}: malformed: {} bytes, too short for a texmex row",
            path.display(),
            data.len()
        ));
    }
    let d = i32::from_le_bytes(data[0..4].try_into().unwrap());
    if d <= 0 || d > 1 << 20 {
        return Err(format!(
            "{}: malformed: first row declares dimension {d}",
            path.display()
        ));
    }
    let d = d as usize;
    let row = 4 + 4 * d;
    if data.len() % row != 0 {
        return Err(format!(
            "{}: malformed: {} bytes is not a whole number of rows of {row} bytes (dimension {d})",
            path.display(),
            data.len()
        ));
    }
    let mut rows = Vec::with_capacity(data.len() / row);
    for (r, chunk) in data.chunks_exact(row).enumerate() {
        let dr = i32::from_le_bytes(chunk[0..4].try_into().unwrap());
        if dr as i64 != d as i64 {
            return Err(format!(
                "{}: malformed: row {r} declares dimension {dr}, the first row {d}",
                path.display()
            ));
        }
        rows.push(
            chunk[4..]
                .chunks_exact(4)
                .map(|c| c.try_into().unwrap())
                .collect(),
        );
    }
    Ok((d, rows))
}

pub fn read_fvecs(path: &Path) -> Result<(usize, Vec<Vec<f32>>), String> {
    let (d, rows) = read_vecs(path)?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, row) in rows.into_iter().enumerate() {
        let v: Vec<f32> = row.into_iter().map(f32::from_le_bytes).collect();
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "{}: malformed: row {r} has a non-finite value at column {j}",
                path.display()
            ));
        }
        out.push(v);
    }
    Ok((d, out))
}

pub fn read_ivecs(path: &Path) -> Result<(usize, Vec<Vec<i32>>), String> {
    let (d, rows) = read_vecs(path)?;
    Ok((
        d,
        rows.into_iter()
            .map(|row| row.into_iter().map(i32::from_le_bytes).collect())
            .collect(),
    ))
}

/// Mean over queries of |found[..k] ∩ truth[..k]| / k (`found` and `truth` row by row).
pub fn recall_at(k: usize, found: &[Vec<u32>], truth: &[Vec<u32>]) -> f64 {
    let mut sum = 0.0;
    for (got, exact) in found.iter().zip(truth) {
        let exact: HashSet<u32> = exact[..k.min(exact.len())].iter().copied().collect();
        let hit = got.iter().take(k).filter(|id| exact.contains(id)).count();
        sum += hit as f64 / k as f64;
    }
    sum / truth.len().max(1) as f64
}

/// A deterministic pseudo-random vector in [-0.5, 0.5)^dim (xorshift seeded by `seed`).
pub fn seeded_vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texmex_round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("akidb-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut bytes = Vec::new();
        for row in [[1.0f32, 2.0], [3.0, 4.0]] {
            bytes.extend(2i32.to_le_bytes());
            row.iter().for_each(|x| bytes.extend(x.to_le_bytes()));
        }
        let path = dir.join("v.fvecs");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_fvecs(&path).unwrap(),
            (2, vec![vec![1.0, 2.0], vec![3.0, 4.0]])
        );
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_fvecs(&path).unwrap_err().contains("malformed"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recall_counts_the_top_k_overlap() {
        let truth = vec![vec![1, 2, 3], vec![4, 5, 6]];
        assert_eq!(recall_at(2, &[vec![2, 1], vec![4, 9]], &truth), 0.75);
    }
}
