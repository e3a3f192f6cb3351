//! What the kernel's `fs/` shows of mm: the `/proc` files that report memory state.
pub mod proc;
