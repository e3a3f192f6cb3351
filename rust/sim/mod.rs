//! Services the model's subsystems and studies share, none of which knows the [`Kernel`]:
//! the event log ([`log`]), the one deterministic RNG ([`rng`]), a per-page bitmap (QEMU's
//! dirty, sent and received bitmaps, [`bitmap`]), the explorer's fixed state hash and table
//! fingerprints ([`fingerprint`]), a lookup memo that equality ignores
//! ([`hint`]), cache prefetch hints ([`prefetch`]), seeded access-pattern generators
//! ([`workload`]) and a `Clone` whose `clone_from` reuses storage ([`clone_fields`]).
//!
//! The invariant checks are in [`crate::invariants`], snapshots in [`crate::snapshot`], the
//! multi-actor run of a postcopy study in [`crate::study::world`].
//!
//! [`Kernel`]: crate::kernel::Kernel

pub mod bitmap;
pub mod clone_fields;
pub mod fingerprint;
pub mod hint;
pub mod log;
pub mod prefetch;
pub mod rng;
pub mod workload;
