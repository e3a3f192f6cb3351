"""``reclaim explore``: search the interleavings of a small postcopy scenario for invariant
violations."""

from __future__ import annotations

import argparse
import json

import reclaim
import reclaim.explorer
from reclaim.cli.common import U32_MAX, Subparsers, csv, integer
from reclaim.output import write_text
from reclaim.variants import (
    add_variant_options,
    cmd_explore_compare,
    resolve_cli_compare,
    resolve_cli_profile,
)


def cmd_explore(args: argparse.Namespace) -> int:
    """``reclaim explore``: search the interleavings of a small postcopy scenario for invariant
    violations, per profile; print (or write as pytest tests) the findings. Returns the exit
    code (3 for a violation with --fail-on-violation)."""
    from reclaim.explorer import explore

    profiles = list(reclaim.PROFILES) if args.profile == ["all"] else (args.profile or ["4.17"])
    profiles = [resolve_cli_profile(args, prof) for prof in profiles]
    options: dict[str, object] = {
        "qemu": args.qemu,
        "pages": csv(args.pages) if args.pages else None,
        "vcpus": args.vcpus,
        "host_pages": args.host_pages,
        "guest_steps": csv(args.guest_steps) if args.guest_steps else None,
        "start": args.start,
    }
    other = resolve_cli_compare(args)
    if other is not None:
        return max(cmd_explore_compare(args, prof, other, options) for prof in profiles)
    results = []
    for prof in profiles:
        sc = reclaim.Scenario(prof, **options)  # type: ignore[arg-type]
        results.append(
            explore(
                sc,
                depth=args.bound,
                max_states=args.max_states,
                walks=args.walks,
                walk_len=args.walk_len,
                seed=args.seed,
                predicates=args.predicate,
                progress=None if not args.json else False,
                por=args.por,
            )
        )
    if args.pytest:
        tests = [f.pytest() for r in results for f in r.findings]
        body = "\n\n".join(t.split("\n\n\n", 1)[1] for t in tests)
        write_text(
            args.pytest, f'"""Explorer findings (reclaim explore)."""\n\nimport reclaim\n\n\n{body}'
        )
    if args.recipe:
        recipes = [f.recipe() for r in results for f in r.findings]
        write_text(args.recipe, "\n\n".join(recipes) if recipes else "No finding.\n")
    if args.json:
        out = [
            {
                "profile": r.scenario.profile,
                "scenario": repr(r.scenario),
                "depth": r.depth,
                "depth_completed": r.depth_completed,
                "exhaustive": r.exhaustive,
                "states": r.states,
                "transitions": r.transitions,
                "walks": r.walks,
                "seconds": round(r.seconds, 3),
                "por": r.por,
                "pruned": r.pruned,
                "findings": [
                    {
                        "predicate": f.predicate,
                        "cause": f.cause,
                        "message": f.message,
                        "steps": list(f.steps),
                        "minimal": f.minimal,
                        "explained": list(f.explained),
                    }
                    for f in r.findings
                ],
            }
            for r in results
        ]
        print(json.dumps(out, indent=2))
    else:
        print("\n\n".join(r.text() for r in results))
        if args.pytest:
            print(f"\npytest tests of the findings: {args.pytest}")
        if args.recipe:
            print(f"reproduction recipes of the findings: {args.recipe}")
    found = any(r.findings for r in results)
    return 3 if (args.fail_on_violation and found) else 0


def add_parser(sub: Subparsers) -> None:
    """Add ``explore`` and its options to the subcommands."""
    ex = sub.add_parser(
        "explore",
        help="search every interleaving of a small postcopy scenario for invariant violations",
        epilog="""examples:
  reclaim explore --profile 4.17
  reclaim explore --profile 4.18 --start listen --predicate userfault_on_received
  reclaim explore --profile all --bound 12 --pytest test_findings.py
  reclaim explore --profile 4.18 --start listen --bound 6 --recipe recipes.md

predicates: """
        + ", ".join(reclaim.explorer.PREDICATES)
        + """
page classes: used_received, free_received, used_dirty, free_zero, zero_received
guest steps: alloc, free, read, write, diag10, enable_skey
exit codes: 0 done (found or not), 2 bad input, 3 a violation with --fail-on-violation""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument(
        "--profile",
        action="append",
        help="kernel profile (repeat for several; 'all' for every profile; default 4.17)",
    )
    ex.add_argument("--qemu", default="3.0", help="QEMU logic: 3.0 (default) or 5.2")
    ex.add_argument(
        "--pages",
        help="guest page classes, comma-separated (default: one of each of the first four)",
    )
    ex.add_argument(
        "--vcpus", type=integer(1, U32_MAX), default=1, help="the guest's vCPUs (default 1)"
    )
    ex.add_argument("--host-pages", type=integer(), default=64, help="destination memory in pages")
    ex.add_argument("--guest-steps", help="guest actions allowed, comma-separated (default: all)")
    ex.add_argument(
        "--start",
        choices=["switchover", "listen"],
        default="switchover",
        help="search from before the final storage attributes, or from just after LISTEN",
    )
    ex.add_argument(
        "--bound",
        type=integer(0, U32_MAX),
        default=10,
        help="depth: steps searched exhaustively (default 10)",
    )
    ex.add_argument(
        "--max-states",
        type=integer(),
        default=reclaim.explorer.DEFAULT_MAX_STATES,
        help=f"state budget (default {reclaim.explorer.DEFAULT_MAX_STATES})",
    )
    ex.add_argument("--walks", type=integer(), default=200, help="random walks beyond the bound")
    ex.add_argument(
        "--walk-len",
        type=integer(0, U32_MAX),
        default=40,
        help="steps of a random walk (default 40)",
    )
    ex.add_argument("--seed", type=integer(), default=0, help="seed of the random walks")
    ex.add_argument(
        "--predicate", action="append", help="check only this predicate (repeatable; default all)"
    )
    ex.add_argument(
        "--no-por",
        dest="por",
        action="store_false",
        help="take every interleaving: no partial-order reduction (sleep sets), for comparison",
    )
    ex.add_argument("--json", action="store_true", help="machine-readable output")
    ex.add_argument("--pytest", help="write a pytest test per finding to this file")
    ex.add_argument(
        "--recipe",
        metavar="FILE",
        help="write a reproduction recipe per finding (Markdown: kernel, QEMU, guest and host "
        "actions, the expected chain) to this file",
    )
    ex.add_argument("--fail-on-violation", action="store_true", help="exit 3 if anything is found")
    add_variant_options(ex, compare="explore this profile too and compare the findings")
    ex.set_defaults(func=cmd_explore)
