//! 8-bit scalar quantization (SQ8): one byte per coordinate instead of four, with an error
//! bound per vector, so a scan over codes can be exact.
//!
//! Trained per dimension from a sample: `lo[i]` and `hi[i]` (the sample's min and max), `step[i]
//! = (hi[i] - lo[i]) / 255`; coordinate `x[i]` is stored as `c[i] = round((x[i] - lo[i]) /
//! step[i])`, clamped to `0..=255`, and read back as `x̂[i] = lo[i] + step[i]·c[i]`.
//!
//! **Scores from codes.** For a query `q`, [`Sq8::query`] precomputes `w[i] = q[i]·step[i]` and
//! `bias = q·lo`, so `q·x̂ = bias + Σ w[i]·c[i]`: one dot per candidate over a quarter of the
//! memory traffic of the f32 vectors. `w` is held as 16-bit integers times one scale, so the
//! dot is integer (`vpmaddwd`, 16 codes per instruction) and exact; the rounding of `w` (at
//! most half a unit per coordinate, summed in `w_err`) joins the bound below. L2 uses `‖q − x‖² = ‖q‖² + ‖x‖² − 2 q·x` with `‖x‖²`
//! kept exactly per vector ([`Sq8Meta`]).
//!
//! **The bound.** Each vector also keeps `r = ‖x − x̂‖₂`, computed exactly at encoding (so it
//! covers rounding and clamping of values outside the trained range). By Cauchy–Schwarz
//! `|q·x − q·x̂| ≤ ‖q‖₂ · r`, so every estimated distance comes with a bound
//! ([`Sq8Query::distance`]) that the true distance never leaves: a candidate whose best possible
//! distance is worse than the k-th best exact one can be skipped without reading its full vector,
//! and the answers stay those of a brute-force scan.

use crate::metric::Metric;

/// A trained quantizer: per-dimension offset and step.
#[derive(Debug, Clone, PartialEq)]
pub struct Sq8 {
    lo: Vec<f32>,
    step: Vec<f32>,
}

/// What a vector keeps beside its code: its exact squared norm and its quantization error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sq8Meta {
    pub norm_sq: f32,
    pub residual: f32,
}

/// A query prepared for scoring codes.
#[derive(Debug, Clone)]
pub struct Sq8Query {
    metric: Metric,
    /// The code kernel for this CPU, chosen once per query.
    kernel: DotU8,
    /// `w[i] = q[i]·step[i]` as 16-bit integers times `w_scale` (an integer dot with the codes
    /// is twice as fast as widening them to f32), and what the rounding can change in a dot:
    /// `w_err = 255 · Σ|w[i] − w_scale·wi[i]|`.
    wi: Vec<i16>,
    w_scale: f64,
    w_err: f32,
    bias: f32,
    norm: f32,
    norm_sq: f32,
}

impl Sq8 {
    /// Trains on `sample` (vectors of `dim` coordinates); an empty sample gives a quantizer over
    /// `[0, 0]` whose codes are all zero and whose residuals carry the whole vector.
    pub fn train<'a>(dim: usize, sample: impl IntoIterator<Item = &'a [f32]>) -> Sq8 {
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for v in sample {
            assert_eq!(v.len(), dim, "sq8: training vector of the wrong dimension");
            for ((l, h), x) in lo.iter_mut().zip(hi.iter_mut()).zip(v) {
                *l = l.min(*x);
                *h = h.max(*x);
            }
        }
        let mut step = vec![0.0; dim];
        for ((l, h), s) in lo.iter_mut().zip(&hi).zip(step.iter_mut()) {
            if !l.is_finite() || !h.is_finite() {
                *l = 0.0;
                continue;
            }
            *s = (h - *l) / 255.0;
        }
        Sq8 { lo, step }
    }

    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// Writes `x`'s code into `code` (`dim` bytes) and returns its norm and residual.
    pub fn encode(&self, x: &[f32], code: &mut [u8]) -> Sq8Meta {
        assert_eq!(x.len(), self.dim(), "sq8: vector of the wrong dimension");
        assert_eq!(code.len(), self.dim(), "sq8: code of the wrong length");
        let (mut norm_sq, mut residual_sq) = (0.0f64, 0.0f64);
        for i in 0..x.len() {
            let c = if self.step[i] > 0.0 {
                ((x[i] - self.lo[i]) / self.step[i])
                    .round()
                    .clamp(0.0, 255.0) as u8
            } else {
                0
            };
            code[i] = c;
            let back = self.lo[i] + self.step[i] * c as f32;
            norm_sq += (x[i] as f64) * (x[i] as f64);
            residual_sq += ((x[i] - back) as f64).powi(2);
        }
        Sq8Meta {
            norm_sq: norm_sq as f32,
            // Rounded up so that the bound built on it never undercuts the exact error.
            residual: (residual_sq.sqrt() as f32).next_up(),
        }
    }

    /// The vector a code stands for.
    pub fn decode(&self, code: &[u8]) -> Vec<f32> {
        code.iter()
            .zip(self.lo.iter().zip(&self.step))
            .map(|(c, (lo, step))| lo + step * *c as f32)
            .collect()
    }

    /// Prepares `q` for [`Sq8Query::distance`] under `metric` (for cosine, `q` must be
    /// normalised, as the index stores vectors).
    pub fn query(&self, metric: Metric, q: &[f32]) -> Sq8Query {
        assert_eq!(q.len(), self.dim(), "sq8: query of the wrong dimension");
        let w: Vec<f64> = q
            .iter()
            .zip(&self.step)
            .map(|(q, s)| *q as f64 * *s as f64)
            .collect();
        let max = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let w_scale = if max > 0.0 {
            max / i16::MAX as f64
        } else {
            1.0
        };
        let wi: Vec<i16> = w.iter().map(|x| (x / w_scale).round() as i16).collect();
        let w_err = 255.0
            * w.iter()
                .zip(&wi)
                .map(|(x, i)| (x - w_scale * *i as f64).abs())
                .sum::<f64>();
        // In f64: summed in f32 over thousands of coordinates with a large common offset, the
        // rounding of these sums alone can exceed the bound's slack.
        let bias = q
            .iter()
            .zip(&self.lo)
            .map(|(q, l)| *q as f64 * *l as f64)
            .sum::<f64>() as f32;
        let norm_sq = q.iter().map(|x| *x as f64 * *x as f64).sum::<f64>() as f32;
        Sq8Query {
            metric,
            kernel: DotU8::detect(),
            wi,
            w_scale,
            w_err: w_err as f32,
            bias,
            norm: norm_sq.sqrt(),
            norm_sq,
        }
    }
}

impl Sq8Query {
    /// The estimated distance alone (what a graph walk compares; see [`Sq8Query::distance`]).
    #[inline]
    pub fn estimate(&self, code: &[u8], meta: Sq8Meta) -> f32 {
        let dot = self.dot(code);
        match self.metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::L2 => self.norm_sq + meta.norm_sq - 2.0 * dot,
        }
    }

    /// The estimated distance (the index's convention: cosine `1 − q·x`, dot `−q·x`, L2
    /// squared) and a bound `b` such that the true distance lies in `estimate ± b`.
    pub fn distance(&self, code: &[u8], meta: Sq8Meta) -> (f32, f32) {
        let dot = self.dot(code);
        // |q·x − q·x̂| ≤ ‖q‖·r, plus what rounding w to integers can change, widened by a
        // relative margin for the float sums themselves.
        let err = self.norm * meta.residual + self.w_err;
        let slack = 1e-5 * (self.norm * meta.norm_sq.sqrt() + self.bias.abs());
        match self.metric {
            Metric::Cosine => (1.0 - dot, err + slack),
            Metric::Dot => (-dot, err + slack),
            Metric::L2 => (
                self.norm_sq + meta.norm_sq - 2.0 * dot,
                2.0 * (err + slack) + 1e-5 * (self.norm_sq + meta.norm_sq),
            ),
        }
    }
}

impl Sq8Query {
    /// `q·x̂` from the integer kernel.
    #[inline(always)]
    fn dot(&self, code: &[u8]) -> f32 {
        self.bias + (self.kernel.dot_i16(&self.wi, code) as f64 * self.w_scale) as f32
    }
}

/// `Σ w[i]·c[i]`, the one kernel of code scoring: portable, or AVX2 where the CPU has it
/// (2.1× faster than the portable loop at 384 dimensions, BENCHMARKS.md "8-bit codes").
#[derive(Debug, Clone, Copy)]
pub struct DotU8 {
    name: &'static str,
    avx2: bool,
}

impl DotU8 {
    /// The widest variant this CPU supports.
    pub fn detect() -> DotU8 {
        DotU8::avx2().unwrap_or_else(DotU8::portable)
    }

    pub fn portable() -> DotU8 {
        DotU8 {
            name: "portable",
            avx2: false,
        }
    }

    /// The AVX2+FMA variant, if the CPU supports it.
    pub fn avx2() -> Option<DotU8> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Some(DotU8 {
                name: "avx2",
                avx2: true,
            });
        }
        None
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `Σ w[i]·c[i]` in integers, exact for any length.
    #[inline]
    pub fn dot_i16(&self, w: &[i16], c: &[u8]) -> i64 {
        assert_eq!(w.len(), c.len(), "dot_i16: length mismatch");
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only set when the CPU has AVX2.
            return unsafe { dot_i16_avx2(w, c) };
        }
        dot_i16_portable(w, c)
    }

    #[inline]
    pub fn dot(&self, w: &[f32], c: &[u8]) -> f32 {
        assert_eq!(w.len(), c.len(), "dot_u8: length mismatch");
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only set when the CPU has AVX2 and FMA.
            return unsafe { dot_u8_avx2(w, c) };
        }
        dot_u8_portable(w, c)
    }
}

/// 16 independent sums, so the loop vectorises (u8 → f32 widening, then multiply-add) without
/// reassociating floats.
fn dot_u8_portable(w: &[f32], c: &[u8]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (wc, wt) = w.as_chunks::<16>();
    let (cc, ct) = c.as_chunks::<16>();
    for (w, c) in wc.iter().zip(cc) {
        for l in 0..16 {
            acc[l] += w[l] * c[l] as f32;
        }
    }
    let tail: f32 = wt.iter().zip(ct).map(|(w, c)| w * *c as f32).sum();
    acc.iter().sum::<f32>() + tail
}

/// In i32 blocks of 256 (|w·c| ≤ 32,768 · 255 per product, 256 of them < 2³¹), summed in i64.
fn dot_i16_portable(w: &[i16], c: &[u8]) -> i64 {
    w.chunks(256)
        .zip(c.chunks(256))
        .map(|(w, c)| {
            w.iter()
                .zip(c)
                .map(|(w, c)| *w as i32 * *c as i32)
                .sum::<i32>() as i64
        })
        .sum()
}

/// Sixteen codes at a time: widened to i16 (`vpmovzxbw`) and multiplied into pairs summed as
/// i32 (`vpmaddwd`), two accumulators; each lane takes at most 32 products of pairs per block
/// of 1,024 codes (2 · 32,767 · 255 · 32 < 2³¹), then the block is summed into an i64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i16_avx2(w: &[i16], c: &[u8]) -> i64 {
    use std::arch::x86_64::*;
    let n = w.len().min(c.len());
    let (pw, pc) = (w.as_ptr(), c.as_ptr());
    let mut total = 0i64;
    let mut i = 0;
    // SAFETY: every load reads 16 i16 or 16 bytes at offsets below n (the loops stop 16
    // short); the caller guarantees AVX2.
    unsafe {
        let step = |i: usize, acc: __m256i| {
            let codes = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i) as *const __m128i));
            let ws = _mm256_loadu_si256(pw.add(i) as *const __m256i);
            _mm256_add_epi32(acc, _mm256_madd_epi16(codes, ws))
        };
        while i + 16 <= n {
            let end = (i + 1024).min(n);
            let (mut a, mut b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            while i + 32 <= end {
                a = step(i, a);
                b = step(i + 16, b);
                i += 32;
            }
            if i + 16 <= end {
                a = step(i, a);
                i += 16;
            }
            let sum = _mm256_add_epi32(a, b);
            let half = _mm_add_epi32(
                _mm256_castsi256_si128(sum),
                _mm256_extracti128_si256::<1>(sum),
            );
            let mut lanes = [0i32; 4];
            _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, half);
            total += lanes.iter().map(|&l| l as i64).sum::<i64>();
        }
        while i < n {
            total += *pw.add(i) as i64 * *pc.add(i) as i64;
            i += 1;
        }
    }
    total
}

/// Eight codes at a time: 8 bytes widened to eight i32 (`vpmovzxbd`), converted to f32, and
/// multiplied into one of four accumulators (`vfmadd231ps`), 32 codes per iteration.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_u8_avx2(w: &[f32], c: &[u8]) -> f32 {
    use std::arch::x86_64::*;
    let n = w.len().min(c.len());
    let (pw, pc) = (w.as_ptr(), c.as_ptr());
    // SAFETY: every load reads 8 floats or 8 bytes at offsets below n (the loops stop 8 short);
    // the caller guarantees AVX2 and FMA.
    unsafe {
        let step = |i: usize, acc: __m256| {
            let bytes = _mm_loadl_epi64(pc.add(i) as *const __m128i);
            let codes = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
            _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), codes, acc)
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = step(i + 8 * k, *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = step(i, acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
        let half = _mm_add_ps(half, _mm_movehl_ps(half, half));
        let mut total = _mm_cvtss_f32(_mm_add_ss(half, _mm_movehdup_ps(half)));
        while i < n {
            total += *pw.add(i) * *pc.add(i) as f32;
            i += 1;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance;

    /// Seeded unit vectors; `stretch` scales them (codes of non-unit vectors too).
    fn vectors(n: usize, dim: usize, seed: u64, stretch: f32) -> Vec<Vec<f32>> {
        let mut v = crate::index::tests::rand_vecs(n, dim, seed);
        v.iter_mut().flatten().for_each(|x| *x *= stretch);
        v
    }

    #[test]
    fn codes_round_trip_within_half_a_step() {
        let data = vectors(500, 37, 1, 3.0);
        let q = Sq8::train(37, data.iter().map(Vec::as_slice));
        let mut code = vec![0u8; 37];
        for v in &data {
            let meta = q.encode(v, &mut code);
            let back = q.decode(&code);
            for i in 0..37 {
                assert!((v[i] - back[i]).abs() <= q.step[i] / 2.0 + 1e-6);
            }
            let exact: f64 = v
                .iter()
                .zip(&back)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            assert!(meta.residual as f64 >= exact.sqrt());
        }
    }

    /// The true distance lies within the bound for every metric, for vectors inside and
    /// outside the trained range (clamped), and the estimate is close.
    #[test]
    fn the_bound_holds_on_every_metric() {
        let train = vectors(300, 64, 2, 1.0);
        let q8 = Sq8::train(64, train.iter().map(Vec::as_slice));
        let mut others = vectors(300, 64, 3, 1.0);
        others.iter_mut().for_each(|v| v[0] *= 3.0); // beyond the trained range
        let queries = vectors(20, 64, 4, 1.0);
        let mut code = vec![0u8; 64];
        let mut worst = 0.0f32;
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            for q in &queries {
                let prepared = q8.query(metric, q);
                for (n, x) in train.iter().chain(&others).enumerate() {
                    let meta = q8.encode(x, &mut code);
                    let (est, bound) = prepared.distance(&code, meta);
                    let exact = distance::distance(metric, q, x);
                    assert!(
                        (exact - est).abs() <= bound,
                        "{metric}: exact {exact}, estimate {est} ± {bound}"
                    );
                    if n < train.len() {
                        worst = worst.max((exact - est).abs());
                    }
                }
            }
        }
        assert!(
            worst < 0.05,
            "estimates of in-range vectors far off: {worst}"
        );
    }

    #[test]
    fn every_code_kernel_agrees_with_an_f64_reference() {
        let kernels: Vec<DotU8> = [Some(DotU8::portable()), DotU8::avx2()]
            .into_iter()
            .flatten()
            .collect();
        for n in [0, 1, 7, 8, 9, 31, 32, 33, 100, 384, 1536] {
            let w: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
                .collect();
            let c: Vec<u8> = (0..n).map(|i| (i * 89 % 256) as u8).collect();
            let exact: f64 = w.iter().zip(&c).map(|(w, c)| *w as f64 * *c as f64).sum();
            for k in &kernels {
                let got = k.dot(&w, &c) as f64;
                assert!(
                    (got - exact).abs() <= 1e-4 * (1.0 + exact.abs()),
                    "{} n={n}: {got} vs {exact}",
                    k.name()
                );
            }
        }
    }

    /// A large offset shared by every coordinate, at a high dimension: the query's sums must
    /// not lose more than the bound allows (they did when summed in f32).
    #[test]
    fn the_bound_holds_with_a_large_common_offset() {
        let dim = 4096;
        let mut s = 7u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            1000.0 + ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.01
        };
        let data: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..dim).map(|_| next()).collect())
            .collect();
        let q8 = Sq8::train(dim, data.iter().map(Vec::as_slice));
        let mut code = vec![0u8; dim];
        for metric in [Metric::Dot, Metric::L2] {
            let prepared = q8.query(metric, &data[0]);
            for x in &data[1..] {
                let meta = q8.encode(x, &mut code);
                let (est, bound) = prepared.distance(&code, meta);
                let exact = distance::distance(metric, &data[0], x);
                assert!(
                    (exact - est).abs() <= bound,
                    "{metric}: exact {exact}, estimate {est} ± {bound}"
                );
            }
        }
    }

    /// The integer kernels are exact, at the extremes too (no lane overflows).
    #[test]
    fn every_integer_code_kernel_is_exact() {
        let kernels: Vec<DotU8> = [Some(DotU8::portable()), DotU8::avx2()]
            .into_iter()
            .flatten()
            .collect();
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 100, 384, 1024, 1040, 4096] {
            let cases: [(Vec<i16>, Vec<u8>); 3] = [
                (
                    (0..n)
                        .map(|i| (i as i32 * 7919 % 65_536 - 32_768) as i16)
                        .collect(),
                    (0..n).map(|i| (i * 89 % 256) as u8).collect(),
                ),
                (vec![i16::MAX; n], vec![255; n]),
                (vec![i16::MIN + 1; n], vec![255; n]),
            ];
            for (w, c) in cases {
                let exact: i64 = w.iter().zip(&c).map(|(w, c)| *w as i64 * *c as i64).sum();
                for k in &kernels {
                    assert_eq!(k.dot_i16(&w, &c), exact, "{} n={n}", k.name());
                }
            }
        }
    }

    #[test]
    fn an_untrained_dimension_keeps_the_vector_in_the_residual() {
        let q8 = Sq8::train(3, std::iter::empty());
        let mut code = [9u8; 3];
        let meta = q8.encode(&[3.0, 0.0, 4.0], &mut code);
        assert_eq!(code, [0, 0, 0]);
        assert!((meta.residual - 5.0).abs() < 1e-5);
        let (est, bound) = q8
            .query(Metric::Dot, &[1.0, 0.0, 0.0])
            .distance(&code, meta);
        assert!((-3.0 - est).abs() <= bound);
    }
}
