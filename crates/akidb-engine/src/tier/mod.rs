//! Tiers. A collection is hot (in RAM), warm (local disk) or cold (object store only); see
//! [`crate::collection`] for how each tier answers. [`policy::plan`] decides moves from the
//! collections' usage; the engine's tiering task gathers the usage and carries the plan out
//! with [`crate::collection::Collection::move_to`], the same path as manual moves.

pub mod policy;

pub use policy::{Move, PolicyConfig, Reason, Tier, Usage};
