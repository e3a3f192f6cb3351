//! The s390 architecture layer: PTE and PGSTE values, swap entries, ESSA, the PTE exchange
//! primitives and DAT tables (arch/s390/include/asm/pgtable.h, arch/s390/mm/pgtable.c).

pub mod dat;
pub mod essa;
pub mod pgste;
pub mod pgtable;
pub mod pte;
