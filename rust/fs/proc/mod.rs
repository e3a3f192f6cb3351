//! `/proc` readers (fs/proc/): what a tool reads of the model's state without changing it.
//! Each returns plain values; the Python binding only converts them.
//!
//! - [`task_mmu`] — `/proc/PID/pagemap`, `/proc/PID/maps` and the rss counters (fs/proc/task_mmu.c)
//! - [`meminfo`] — `/proc/meminfo` (fs/proc/meminfo.c)
//! - [`page`] — `/proc/kpageflags` and `/proc/kpagecount` of a frame (fs/proc/page.c)
//! - [`vmstat`] — `/proc/vmstat` (its `vmstat_start` is in mm/vmstat.c)
pub mod meminfo;
pub mod page;
pub mod task_mmu;
pub mod vmstat;
