//! `/proc` readers (fs/proc/): what a tool reads of the model's state without changing it.
//! Each returns plain values; the Python binding only converts them.
//!
//! - `/proc/PID/pagemap`, `/proc/PID/maps` and the rss counters: [`task_mmu`] (fs/proc/task_mmu.c)
//! - `/proc/meminfo`: [`meminfo`] (fs/proc/meminfo.c)
//! - `/proc/kpageflags` and `/proc/kpagecount` of a frame: [`page`] (fs/proc/page.c)
//! - `/proc/vmstat`: [`vmstat`] (its `vmstat_start` is in mm/vmstat.c)
pub mod meminfo;
pub mod page;
pub mod task_mmu;
pub mod vmstat;
