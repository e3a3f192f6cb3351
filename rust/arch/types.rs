//! The architecture a profile runs on; its behaviour (PTE layout, page-table geometry) is in
//! [`crate::arch`]. A leaf module, so that the page-table code can name an arch.

use serde::{Deserialize, Serialize};

/// The architecture of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    S390x,
    X86_64,
}
