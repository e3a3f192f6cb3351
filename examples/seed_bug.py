"""The seed bug from the kernel's side: one page, two profiles.

A KVM guest frees a page it already received from the migration source (ESSA SET_UNUSED);
host reclaim runs while postcopy has guest RAM registered with userfaultfd; the guest reuses
the page. On 4.17 try_to_unmap_one drops the UNUSED page (pte_unused), the reuse is a
userfault for a page QEMU already sent: the vCPU hangs. On 4.18 the page is swapped instead.

    python examples/seed_bug.py
"""

from __future__ import annotations

import reclaim


def reuse_after_reclaim(profile: str) -> tuple[str, str, list[str]]:
    k = reclaim.Kernel(profile=profile, memory="16MiB", swap="16MiB")
    qemu = k.spawn("qemu-system-s390x", kvm=True)  # a KVM host process: PGSTEs
    ram = qemu.mmap("16KiB")  # the guest's RAM block
    for i in range(4):
        qemu.write(ram + i * 4096, 0x1000 + i)  # pages received from the source
    qemu.userfaultfd().register(ram, "16KiB", missing=True)  # postcopy is running
    qemu.essa(ram, "set_unused")  # the guest frees a page
    k.reclaim(4)  # host memory pressure
    qemu.essa(ram, "set_stable")  # the guest reuses it
    r = qemu.read(ram)
    unmaps = [e.text for e in k.events("rmap:try_to_unmap_one") if e.addr == ram]
    k.check()  # rss, mapcount, refcount, LRU and swap_map are consistent
    return qemu.page_state(ram), r.kind, unmaps


if __name__ == "__main__":
    for profile in ("4.17", "4.18"):
        state, kind, unmaps = reuse_after_reclaim(profile)
        print(f"{profile}: page {state}, the guest's read {kind}")
        for line in unmaps:
            print(f"    {line}")
