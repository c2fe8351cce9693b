//! Reusable buffers for the partitions that warm and cold searches read. A fresh buffer of a
//! few MiB per partition costs a page fault per 4 KiB every time (at 1M vectors a query reads
//! 30 partitions of 1.5 MiB: the faults took more time than the scan), and letting the
//! allocator keep freed buffers instead grew RSS by 500 MiB over 200 queries. So buffers go
//! back to a small pool when the last `Bytes` over them drops, and the pool keeps at most
//! [`POOL_BYTES`] of them.

use bytes::Bytes;
use parking_lot::Mutex;

/// Bytes of idle buffers the pool keeps (about two queries' worth of partitions at 1M × 384).
pub const POOL_BYTES: usize = 96 << 20;

#[derive(Default)]
struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: std::sync::OnceLock<Mutex<Pool>> = std::sync::OnceLock::new();
    POOL.get_or_init(Mutex::default)
}

/// A buffer of `len` initialised bytes to read into (from the pool when one is large enough).
pub fn take(len: usize) -> Vec<u8> {
    let mut buf = {
        let mut p = pool().lock();
        match p.free.iter().position(|b| b.len() >= len) {
            Some(i) => {
                let b = p.free.swap_remove(i);
                p.bytes -= b.len();
                b
            }
            None => Vec::new(),
        }
    };
    if buf.len() < len {
        buf.resize(len, 0);
    }
    buf
}

/// The first `len` bytes of `buf` as `Bytes`; `buf` returns to the pool when they drop.
pub fn freeze(buf: Vec<u8>, len: usize) -> Bytes {
    Bytes::from_owner(Pooled(Some(buf))).slice(..len)
}

/// Returns an unused buffer to the pool.
pub fn give_back(buf: Vec<u8>) {
    drop(Pooled(Some(buf)));
}

struct Pooled(Option<Vec<u8>>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(buf) = self.0.take() else { return };
        let mut p = pool().lock();
        if p.bytes + buf.len() <= POOL_BYTES {
            p.bytes += buf.len();
            p.free.push(buf);
        }
    }
}

/// Bytes of idle buffers held now (tests).
#[cfg(test)]
fn pooled_bytes() -> usize {
    pool().lock().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_the_pool_stays_bounded() {
        let mut b = take(1000);
        b[..4].copy_from_slice(b"abcd");
        let bytes = freeze(b, 4);
        assert_eq!(&bytes[..], b"abcd");
        let before = pooled_bytes();
        drop(bytes);
        assert!(pooled_bytes() >= before + 1000 || pooled_bytes() > POOL_BYTES - 1000);
        let again = take(500);
        assert!(again.len() >= 500);
        give_back(again);
        for _ in 0..200 {
            give_back(vec![0; 1 << 20]);
        }
        assert!(pooled_bytes() <= POOL_BYTES);
    }
}
