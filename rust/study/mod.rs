//! Studies: whole scenarios run from configuration to result. [`world`] is the run with several
//! actors (two hosts, a guest, QEMU on each, the link) and its scheduler; [`postcopy`] the
//! postcopy migration study built on it.

pub mod postcopy;
pub mod stall;
pub mod world;
