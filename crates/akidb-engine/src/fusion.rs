//! Hybrid search's fusion of a vector ranking and a text ranking: reciprocal rank fusion
//! (Cormack, Clarke and Büttcher, 2009), as Qdrant, Weaviate, Elasticsearch and Milvus offer.
//! Pure: rankings in, a ranking out.
//!
//! A document at rank `r` (1-based) of a ranking earns `weight / (RRF_K + r)` from it; its
//! fused score is the sum over the two rankings (nothing from a ranking it is not in). The
//! text ranking's weight is `text_weight` (0..=1, default [`DEFAULT_TEXT_WEIGHT`]) and the
//! vector ranking's `1 - text_weight`: 0 ranks by the vector alone, 1 by the text alone, and
//! 0.5 (the classic unweighted fusion, halved) gives both the same say. Scores only compare
//! within one answer. Each side ranks its [`window`] best before fusing.

/// The constant of reciprocal rank fusion (the paper's, and every engine's default).
pub const RRF_K: f32 = 60.0;

/// The text ranking's share when a search does not say.
pub const DEFAULT_TEXT_WEIGHT: f32 = 0.5;

/// How deep each ranking is read for a fused top `k`: `4k`, at least 40 (a document ranked
/// beyond that on one side needs a far better rank on the other than anything it competes
/// with, so a deeper window rarely changes the top k).
pub fn window(k: usize) -> usize {
    k.saturating_mul(4).max(40)
}

/// The `k` best of two rankings (best first, each distinct) by weighted reciprocal rank
/// fusion, with their fused scores. Ties (equal scores) go to the lower slot, so the answer is
/// deterministic.
pub fn rrf(vector: &[u32], text: &[u32], text_weight: f32, k: usize) -> Vec<(u32, f32)> {
    let mut scores: std::collections::HashMap<u32, f32> =
        std::collections::HashMap::with_capacity(vector.len() + text.len());
    for (ranking, weight) in [(vector, 1.0 - text_weight), (text, text_weight)] {
        for (i, &slot) in ranking.iter().enumerate() {
            *scores.entry(slot).or_default() += weight / (RRF_K + (i + 1) as f32);
        }
    }
    let mut fused: Vec<(u32, f32)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused.truncate(k);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_in_both_rankings_beats_one_in_a_single_ranking() {
        // 7 is second on both sides; 1 and 2 are first on one side only.
        let fused = rrf(&[1, 7, 3], &[2, 7, 4], 0.5, 3);
        assert_eq!(fused[0].0, 7);
        assert!((fused[0].1 - (0.5 / 62.0 + 0.5 / 62.0)).abs() < 1e-7);
        // 1 and 2 tie (rank 1 on one side each): the lower slot first.
        assert_eq!(fused[1].0, 1);
        assert_eq!(fused[2].0, 2);
        assert_eq!(fused[1].1, fused[2].1);
    }

    #[test]
    fn the_weight_moves_the_answer_from_one_ranking_to_the_other() {
        let vector = [10, 11, 12, 13];
        let text = [20, 21, 22, 23];
        let by = |w| {
            rrf(&vector, &text, w, 4)
                .into_iter()
                .map(|(s, _)| s)
                .collect::<Vec<_>>()
        };
        assert_eq!(by(0.0)[..4], vector);
        assert_eq!(by(1.0)[..4], text);
        assert_eq!(by(0.5), vec![10, 20, 11, 21]);
        // Mostly text: the text side's first three outrank the vector side's first.
        assert_eq!(by(0.9)[..3], [20, 21, 22]);
    }

    #[test]
    fn fewer_than_k_documents_give_them_all_and_empty_gives_nothing() {
        assert_eq!(rrf(&[], &[], 0.5, 10), vec![]);
        assert_eq!(rrf(&[5], &[], 0.5, 10).len(), 1);
        assert_eq!(rrf(&[5, 6], &[6, 5], 0.5, 10).len(), 2);
    }

    #[test]
    fn the_window_is_four_k_and_at_least_forty() {
        assert_eq!(window(1), 40);
        assert_eq!(window(10), 40);
        assert_eq!(window(25), 100);
        assert_eq!(window(usize::MAX), usize::MAX);
    }
}
