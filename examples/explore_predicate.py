"""The explorer with a predicate of your own.

The built-in predicates find the seed bug on 4.17 by themselves. Here we write our own, alone:
"once guest RAM is armed, a page the destination received never loses both its PTE and its
swap entry" — stricter than "no userfault", it fires at the step that loses the page, before
the guest touches it again. Every finding comes back as the shortest step list, in kernel
terms, and as a pytest test.

    python examples/explore_predicate.py [profile]
"""

from __future__ import annotations

import sys

import reclaim


def received_page_lost(st: reclaim.ExploreState) -> str | None:
    if st.phase == "switchover":
        return None  # not armed yet: QEMU's discards legitimately empty pages here
    for g in range(st.pages):
        if st.received[g] and st.pte(g).none():
            return f"guest page {g} was received but has neither a PTE nor a swap entry"
    return None


if __name__ == "__main__":
    profile = sys.argv[1] if len(sys.argv) > 1 else "4.17"
    result = reclaim.explore(
        profile,
        depth=8,
        predicates=[],
        predicate=received_page_lost,
    )
    print(result.text())
    custom = result.found("custom")
    if custom:
        print("\nas a pytest test:\n")
        print(custom.pytest())
