//! Distance kernels: dot product, squared Euclidean distance, norm, normalisation.
//!
//! # Design
//!
//! Three variants of each kernel, selected **once** at run time:
//!
//! | variant    | how it is built                                              | main loop                  |
//! |------------|--------------------------------------------------------------|----------------------------|
//! | `portable` | plain Rust, baseline target (SSE2 on x86_64), auto-vectorised | 8 × xmm `mulps`+`addps`    |
//! | `avx2`     | `std::arch` intrinsics in `#[target_feature(enable = "avx2,fma")]` | 4 × ymm `vfmadd231ps` (32 floats/iter) |
//! | `avx512`   | `std::arch` intrinsics in `#[target_feature(enable = "avx512f,avx2,fma")]` | 4 × zmm `vfmadd231ps` (64 floats/iter), masked-load tail |
//!
//! The portable body keeps 32 independent accumulator lanes (`[f32; 32]` over `as_chunks::<32>`)
//! so LLVM can vectorise it without float reassociation. The SIMD variants use explicit
//! intrinsics with four independent accumulator registers (hiding the 4-cycle FMA latency):
//! a first attempt compiled the same portable body inside `#[target_feature(enable =
//! "avx2,fma")]` with `f32::mul_add`, but LLVM's SLP vectoriser only produced 2-wide
//! (`vmovsd` + `vfmadd231ps xmm`) code for it, so the intrinsics are the reliable route.
//!
//! Selection: `is_x86_feature_detected!` once, cached in a `OnceLock<Kernels>` ([`kernels`]);
//! the index copies the metric's function pointer into itself, so the hot loop does one
//! indirect call per distance (as hnswlib does). No `-C target-cpu=native` is used. The
//! environment variable `AKIDB_KERNEL` (`portable` | `avx2` | `avx512`) can force a variant the
//! CPU supports (for benchmarking); by default the widest available one is used.
//!
//! # How the vectorisation was checked
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-core cargo rustc --release -p akidb-core --lib -- --emit asm
//! ```
//! then in `target-core/release/deps/akidb_core-*.s`: the main loops of `simd::dot_avx2` /
//! `simd::l2_avx2` are 4 × `vfmadd231ps (mem), %ymm, %ymm` (L2: after 4 × `vsubps ymm`), those of
//! `simd::dot_avx512` / `simd::l2_avx512` 4 × `vfmadd231ps …, %zmm`, and `dot_portable`'s
//! `mulps`/`addps` on xmm. The unit tests compare every variant the CPU supports
//! ([`available_kernels`]) with a scalar f64 reference over many lengths.

use std::sync::OnceLock;

use crate::metric::Metric;

/// Signature of a raw kernel. `unsafe` because the SIMD variants may only be called on a CPU
/// that has the corresponding features; [`Kernels`] guarantees that.
type RawKernel = unsafe fn(&[f32], &[f32]) -> f32;

const LANES: usize = 32;

/// Pairwise reduction of the 32 lanes.
#[inline(always)]
fn reduce(acc: [f32; LANES]) -> f32 {
    let mut v = [0.0f32; 8];
    for c in acc.as_chunks::<8>().0 {
        for (o, x) in v.iter_mut().zip(c) {
            *o += *x;
        }
    }
    let v4 = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    (v4[0] + v4[2]) + (v4[1] + v4[3])
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ac, ar) = a.as_chunks::<LANES>();
    let (bc, br) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ac.iter().zip(bc) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in ar.iter().zip(br) {
        tail += x * y;
    }
    reduce(acc) + tail
}

fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ac, ar) = a.as_chunks::<LANES>();
    let (bc, br) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ac.iter().zip(bc) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            let d = x - y;
            *s += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in ar.iter().zip(br) {
        let d = x - y;
        tail += d * d;
    }
    reduce(acc) + tail
}

fn cos_portable(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot_portable(a, b)
}

fn neg_portable(a: &[f32], b: &[f32]) -> f32 {
    -dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum256(v: __m256) -> f32 {
        // SAFETY: AVX is enabled by the caller.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }

    /// `SQ = false`: Σ a·b; `SQ = true`: Σ (a-b)².
    #[inline(always)]
    unsafe fn body_avx2<const SQ: bool>(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: all loads are at offsets < n; AVX2+FMA are enabled by the caller.
        unsafe {
            #[inline(always)]
            unsafe fn step<const SQ: bool>(pa: *const f32, pb: *const f32, acc: __m256) -> __m256 {
                unsafe {
                    let x = _mm256_loadu_ps(pa);
                    let y = _mm256_loadu_ps(pb);
                    if SQ {
                        let d = _mm256_sub_ps(x, y);
                        _mm256_fmadd_ps(d, d, acc)
                    } else {
                        _mm256_fmadd_ps(x, y, acc)
                    }
                }
            }
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            let mut acc2 = _mm256_setzero_ps();
            let mut acc3 = _mm256_setzero_ps();
            let mut i = 0;
            while i + 32 <= n {
                acc0 = step::<SQ>(pa.add(i), pb.add(i), acc0);
                acc1 = step::<SQ>(pa.add(i + 8), pb.add(i + 8), acc1);
                acc2 = step::<SQ>(pa.add(i + 16), pb.add(i + 16), acc2);
                acc3 = step::<SQ>(pa.add(i + 24), pb.add(i + 24), acc3);
                i += 32;
            }
            while i + 8 <= n {
                acc0 = step::<SQ>(pa.add(i), pb.add(i), acc0);
                i += 8;
            }
            let acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
            let mut sum = hsum256(acc);
            while i < n {
                let (x, y) = (*pa.add(i), *pb.add(i));
                sum += if SQ { (x - y) * (x - y) } else { x * y };
                i += 1;
            }
            sum
        }
    }

    #[inline(always)]
    unsafe fn body_avx512<const SQ: bool>(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: full loads are at offsets < n, the tail load is masked to the first n - i
        // lanes (masked-off lanes are not accessed); AVX-512F is enabled by the caller.
        unsafe {
            #[inline(always)]
            unsafe fn step<const SQ: bool>(x: __m512, y: __m512, acc: __m512) -> __m512 {
                unsafe {
                    if SQ {
                        let d = _mm512_sub_ps(x, y);
                        _mm512_fmadd_ps(d, d, acc)
                    } else {
                        _mm512_fmadd_ps(x, y, acc)
                    }
                }
            }
            let ld = |p: *const f32| _mm512_loadu_ps(p);
            let mut acc0 = _mm512_setzero_ps();
            let mut acc1 = _mm512_setzero_ps();
            let mut acc2 = _mm512_setzero_ps();
            let mut acc3 = _mm512_setzero_ps();
            let mut i = 0;
            while i + 64 <= n {
                acc0 = step::<SQ>(ld(pa.add(i)), ld(pb.add(i)), acc0);
                acc1 = step::<SQ>(ld(pa.add(i + 16)), ld(pb.add(i + 16)), acc1);
                acc2 = step::<SQ>(ld(pa.add(i + 32)), ld(pb.add(i + 32)), acc2);
                acc3 = step::<SQ>(ld(pa.add(i + 48)), ld(pb.add(i + 48)), acc3);
                i += 64;
            }
            while i + 16 <= n {
                acc0 = step::<SQ>(ld(pa.add(i)), ld(pb.add(i)), acc0);
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u16 << (n - i)) - 1;
                let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
                let y = _mm512_maskz_loadu_ps(mask, pb.add(i));
                acc1 = step::<SQ>(x, y, acc1);
            }
            let acc = _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3));
            _mm512_reduce_add_ps(acc)
        }
    }

    macro_rules! kernels {
        ($feat:literal, $body:ident, $dot:ident, $l2:ident, $cos:ident, $neg:ident) => {
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $dot(a: &[f32], b: &[f32]) -> f32 {
                unsafe { $body::<false>(a, b) }
            }
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $l2(a: &[f32], b: &[f32]) -> f32 {
                unsafe { $body::<true>(a, b) }
            }
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $cos(a: &[f32], b: &[f32]) -> f32 {
                1.0 - unsafe { $body::<false>(a, b) }
            }
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $neg(a: &[f32], b: &[f32]) -> f32 {
                -unsafe { $body::<false>(a, b) }
            }
        };
    }

    kernels!("avx2,fma", body_avx2, dot_avx2, l2_avx2, cos_avx2, neg_avx2);
    kernels!(
        "avx512f,avx2,fma",
        body_avx512,
        dot_avx512,
        l2_avx512,
        cos_avx512,
        neg_avx512
    );
}
#[cfg(target_arch = "x86_64")]
use simd::*;

/// One set of kernels for one instruction-set variant. Can only be obtained for variants the
/// running CPU supports, which is what makes calling the `unsafe` function pointers sound.
#[derive(Clone, Copy)]
pub struct Kernels {
    name: &'static str,
    dot: RawKernel,
    l2_squared: RawKernel,
    cosine_distance: RawKernel,
    neg_dot: RawKernel,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").field("name", &self.name).finish()
    }
}

impl Kernels {
    /// The baseline variant (always available).
    pub fn portable() -> Self {
        Kernels {
            name: "portable",
            dot: dot_portable,
            l2_squared: l2_portable,
            cosine_distance: cos_portable,
            neg_dot: neg_portable,
        }
    }

    /// The AVX2+FMA variant, if the CPU supports it.
    pub fn avx2() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Some(Kernels {
                name: "avx2",
                dot: dot_avx2,
                l2_squared: l2_avx2,
                cosine_distance: cos_avx2,
                neg_dot: neg_avx2,
            });
        }
        None
    }

    /// The AVX-512F variant, if the CPU supports it.
    pub fn avx512() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            return Some(Kernels {
                name: "avx512",
                dot: dot_avx512,
                l2_squared: l2_avx512,
                cosine_distance: cos_avx512,
                neg_dot: neg_avx512,
            });
        }
        None
    }

    /// The variant named `name` (`portable`, `avx2`, `avx512`), if supported.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "portable" => Some(Self::portable()),
            "avx2" => Self::avx2(),
            "avx512" => Self::avx512(),
            _ => None,
        }
    }

    /// The best supported variant, unless `AKIDB_KERNEL` names another supported one.
    fn detect() -> Self {
        if let Some(k) = std::env::var("AKIDB_KERNEL")
            .ok()
            .and_then(|n| Self::by_name(n.trim()))
        {
            return k;
        }
        Self::avx512()
            .or_else(Self::avx2)
            .unwrap_or_else(Self::portable)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    #[inline(always)]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: a `Kernels` value only exists for variants the CPU supports.
        unsafe { (self.dot)(a, b) }
    }

    #[inline(always)]
    pub fn l2_squared(&self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { (self.l2_squared)(a, b) }
    }

    /// The internal-distance function of `metric` in this variant.
    pub fn distance_fn(&self, metric: Metric) -> DistanceFn {
        DistanceFn(match metric {
            Metric::Cosine => self.cosine_distance,
            Metric::Dot => self.neg_dot,
            Metric::L2 => self.l2_squared,
        })
    }
}

/// A metric's internal distance (lower is better) bound to one supported kernel variant.
/// Copy it into hot loops: calling it is one indirect call.
#[derive(Clone, Copy)]
pub struct DistanceFn(RawKernel);

impl DistanceFn {
    #[inline(always)]
    pub fn eval(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: built only by `Kernels::distance_fn`, i.e. for a supported variant.
        unsafe { (self.0)(a, b) }
    }
}

impl std::fmt::Debug for DistanceFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DistanceFn")
    }
}

/// The kernels selected for this process (detected once, then cached).
pub fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(Kernels::detect)
}

/// Every variant the running CPU supports (for tests and benchmarks).
pub fn available_kernels() -> Vec<Kernels> {
    let mut v = vec![Kernels::portable()];
    v.extend(Kernels::avx2());
    v.extend(Kernels::avx512());
    v
}

/// Inner product. Panics if the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    kernels().dot(a, b)
}

/// Squared Euclidean distance. Panics if the lengths differ.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_squared: length mismatch");
    kernels().l2_squared(a, b)
}

/// Euclidean norm.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    kernels().dot(a, a).sqrt()
}

/// Scales `v` to unit length in place; returns false (and leaves v unchanged) if its norm is 0
/// or not finite (including when any component is NaN or infinite).
///
/// The fast path computes the norm in f32 with the SIMD kernel; if that over- or underflows
/// (components beyond ~1e19 or below ~1e-19) the norm is recomputed in f64, so every finite,
/// non-zero vector is normalised.
pub fn normalize(v: &mut [f32]) -> bool {
    let sq = kernels().dot(v, v);
    if sq.is_finite() && sq >= f32::MIN_POSITIVE {
        let inv = 1.0 / sq.sqrt();
        for x in v.iter_mut() {
            *x *= inv;
        }
        return true;
    }
    if v.iter().any(|x| !x.is_finite()) {
        return false;
    }
    let n = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !(n > 0.0 && n.is_finite()) {
        return false;
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / n) as f32;
    }
    true
}

/// The internal distance of `metric` (lower is better), see [`crate::metric`].
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "distance: length mismatch");
    kernels().distance_fn(metric).eval(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn dot_ref(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    fn l2_ref(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum()
    }

    #[test]
    fn all_variants_match_scalar_reference() {
        let lens: Vec<usize> = (0..=70).chain([127, 128, 129, 384, 1536, 4096]).collect();
        let kernels = available_kernels();
        assert!(!kernels.is_empty());
        for &n in &lens {
            let a = data(n, 1 + n as u64);
            let b = data(n, 1000 + n as u64);
            let (d, l) = (dot_ref(&a, &b), l2_ref(&a, &b));
            let scale = a.iter().chain(&b).map(|x| (*x as f64).powi(2)).sum::<f64>();
            let tol = 1e-5 * scale.max(1.0);
            for k in &kernels {
                let kd = k.dot(&a, &b) as f64;
                let kl = k.l2_squared(&a, &b) as f64;
                assert!((kd - d).abs() <= tol, "{} dot n={n}: {kd} vs {d}", k.name());
                assert!((kl - l).abs() <= tol, "{} l2 n={n}: {kl} vs {l}", k.name());
                let cos = k.distance_fn(Metric::Cosine).eval(&a, &b) as f64;
                let neg = k.distance_fn(Metric::Dot).eval(&a, &b) as f64;
                let l2m = k.distance_fn(Metric::L2).eval(&a, &b) as f64;
                assert!((cos - (1.0 - d)).abs() <= tol, "{} cos n={n}", k.name());
                assert!((neg + d).abs() <= tol, "{} neg n={n}", k.name());
                assert!((l2m - l).abs() <= tol, "{} l2 metric n={n}", k.name());
            }
        }
    }

    #[test]
    fn public_functions() {
        let a = [3.0f32, 4.0];
        assert_eq!(norm(&a), 5.0);
        assert_eq!(dot(&a, &a), 25.0);
        assert_eq!(l2_squared(&a, &[0.0, 0.0]), 25.0);
        let mut v = a;
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!((distance(Metric::Cosine, &v, &v)).abs() < 1e-6);
        assert_eq!(distance(Metric::Dot, &a, &a), -25.0);
        assert_eq!(distance(Metric::L2, &a, &[3.0, 0.0]), 16.0);
    }

    #[test]
    fn normalize_edge_cases() {
        let mut z = [0.0f32; 5];
        assert!(!normalize(&mut z));
        assert_eq!(z, [0.0; 5]);
        let mut nan = [1.0, f32::NAN];
        assert!(!normalize(&mut nan));
        assert_eq!(nan[0], 1.0);
        let mut inf = [1.0, f32::INFINITY];
        assert!(!normalize(&mut inf));
        assert_eq!(inf, [1.0, f32::INFINITY]);
        // Overflows f32 when squared, still normalisable.
        let mut big = [3e30f32, 4e30];
        assert!(normalize(&mut big));
        assert!((big[0] - 0.6).abs() < 1e-6 && (big[1] - 0.8).abs() < 1e-6);
        // Underflows f32 when squared.
        let mut tiny = [3e-30f32, 4e-30];
        assert!(normalize(&mut tiny));
        assert!((tiny[0] - 0.6).abs() < 1e-6 && (tiny[1] - 0.8).abs() < 1e-6);
        let mut odd = data(37, 9);
        assert!(normalize(&mut odd));
        assert!((norm(&odd) - 1.0).abs() < 1e-5);
    }
}
