//! Studies: whole scenarios run from configuration to result.

pub mod postcopy;
pub mod stall;
