//! A trace described in kernel and QEMU terms.

use super::apply::not_enabled;
use super::scenario::{Scenario, Step};
use super::state::{Msg, State};
use crate::error::Result;
use crate::profile::fixes::CmmaApply;
use crate::sim::log::{Ev, ttu_result};

/// Describe each step of a trace in kernel and QEMU terms from what replaying it logged.
/// A step that is not enabled where it stands is refused as [`replay`](super::replay) refuses it.
pub fn explain(sc: &Scenario, steps: &[Step]) -> Result<Vec<String>> {
    let mut st = State::new(sc)?;
    let mut out = Vec::new();
    let mut en = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        st.enabled(&mut en);
        if !en.contains(s) {
            return Err(not_enabled(i, *s));
        }
        let before = st.k.events_len();
        let stream_head = st.stream.front().copied();
        st.apply(*s, &[]);
        let evs = &st.k.events()[before..];
        let mut d = match s {
            Step::Deliver => match stream_head {
                Some(Msg::CmmaDone) if st.k.profile.fixes.cmma_apply == CmmaApply::AfterListen => {
                    "migration stream: STATTR_FLAG_DONE (the storage attributes wait for LISTEN)".to_string()
                }
                Some(Msg::CmmaDone) => {
                    "migration stream: STATTR_FLAG_DONE → KVM_S390_SET_CMMA_BITS (free guest pages UNUSED)".to_string()
                }
                Some(Msg::Discard(g)) => {
                    format!("migration stream: discard guest page {g} (received bit cleared, MADV_DONTNEED)")
                }
                Some(Msg::Listen) => "migration stream: LISTEN → UFFDIO_REGISTER of guest RAM (MISSING)".to_string(),
                Some(Msg::Run) => "migration stream: RUN → the guest runs on the destination".to_string(),
                Some(Msg::Page(g)) => format!(
                    "migration stream: guest page {g} arrives → {}",
                    if st.content[g as usize] == 0 { "UFFDIO_ZEROPAGE" } else { "UFFDIO_COPY" }
                ),
                Some(Msg::Eof) => "migration stream: EOF → postcopy cleanup (UFFDIO_UNREGISTER)".to_string(),
                None => "deliver".to_string(),
            },
            Step::SendNext => "source: sends its next page".to_string(),
            Step::ServeRequest => "source: takes a page request".to_string(),
            Step::FaultThread => "destination: QEMU's fault thread reads the userfaultfd".to_string(),
            Step::Age(g) => format!("host reclaim ages guest page {g} (folio_referenced: the PTE becomes old)"),
            Step::Reclaim(g) => format!("host reclaim of guest page {g} (shrink_folio_list)"),
            Step::DirectReclaim => {
                "host direct reclaim (try_to_free_pages → do_try_to_free_pages, SWAP_CLUSTER_MAX)".to_string()
            }
            Step::Intercept(v) => format!("KVM: ESSA intercept on vCPU {v} processes its CBRL"),
            Step::Alloc(v, g) => format!("guest vCPU {v} allocates page {g}: ESSA SET_STABLE, then writes it"),
            Step::Free(v, g) => format!("guest vCPU {v} frees page {g}: ESSA SET_UNUSED"),
            Step::Read(v, g) => format!("guest vCPU {v} reads page {g}"),
            Step::Write(v, g) => format!("guest vCPU {v} writes page {g}"),
            Step::Diag10(v, g) => format!("guest vCPU {v} releases page {g} with DIAG 0x10"),
            Step::EnableSkey => "guest enables storage keys (s390_enable_skey)".to_string(),
        };
        let mut notes = Vec::new();
        for e in evs {
            let what = match e.kind {
                Ev::TryToUnmapOne | Ev::TryToMigrateOne => Some(match e.b {
                    ttu_result::DROP_UNUSED => {
                        format!("try_to_unmap_one: pte_unused(pteval {:#x}) → PTE left none, no swap entry", e.c)
                    }
                    r => format!("try_to_unmap_one: {}", ttu_result::NAMES.get(r as usize).copied().unwrap_or("?")),
                }),
                Ev::HandleUserfault => Some("handle_userfault(VM_UFFD_MISSING): the vCPU parks".to_string()),
                Ev::GmapZap if e.b == 1 => Some("__gmap_zap → ptep_zap_unused clears the swap PTE".to_string()),
                Ev::Diag10 => Some(format!("gmap_discard zapped {} PTE(s)", e.c)),
                Ev::GetQueuedPageNotDirty => {
                    Some("get_queued_page: already sent (!dirty), request dropped".to_string())
                }
                Ev::Essa if e.b == 1 => Some("the host PTE is invalid: the page goes on the CBRL".to_string()),
                Ev::SkeyEnable if e.a > 0 => Some(format!("{} zero-page mapping(s) removed", e.a)),
                Ev::ThreadWoken => Some("a parked vCPU is woken and retries".to_string()),
                _ => None,
            };
            if let Some(w) = what {
                if !notes.contains(&w) {
                    notes.push(w);
                }
            }
        }
        if !notes.is_empty() {
            d = format!("{d}: {}", notes.join("; "));
        }
        out.push(d);
    }
    Ok(out)
}
