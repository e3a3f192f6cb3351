//! The simulation's clock-independent services: the event log and the deterministic RNG.

pub mod bitmap;
pub mod hint;
pub mod invariants;
pub mod log;
pub mod rng;
pub mod snapshot;
pub mod workload;
pub mod world;
