"""``reclaim crosscheck``: the userfaultfd scenario library on the model and on this machine's
kernel."""

from __future__ import annotations

import argparse
import json

import reclaim
from reclaim.cli.common import Progress, Subparsers


def cmd_crosscheck(args: argparse.Namespace) -> int:
    """``reclaim crosscheck``: run the cross-check scenarios on the model and on this machine's
    kernel and print where they differ. Returns 1 if a scenario that ran disagrees."""
    from reclaim.crosscheck import LIBRARY, crosscheck, format_table
    from reclaim.crosscheck.library import BY_NAME

    if args.replay or args.trace or args.results:  # the replay oracle (issue 18)
        from reclaim.cli.crosscheck_replay import cmd

        return cmd(args)
    if args.list:
        if args.json:
            print(json.dumps([{"name": sc.name, "doc": sc.doc} for sc in LIBRARY], indent=2))
            return 0
        for sc in LIBRARY:
            print(f"{sc.name:<32} {sc.doc}")
        return 0
    for n in args.scenario or []:
        if n not in BY_NAME:
            raise reclaim.ArgumentError(f"unknown scenario {n!r}; see reclaim crosscheck --list")
    from reclaim.variants import resolve_cli_profile

    profile = resolve_cli_profile(args, args.profile)
    if args.export_c:  # the scenarios as a kselftest-style C program
        return cmd_export_c(args, profile)
    if args.vm:  # a Linux 6.12 guest under QEMU instead of this machine's kernel
        from reclaim.cli.vm import cmd_crosscheck_vm

        status = Progress(f"crosscheck --vm {args.vm}", not args.json, unit="scenarios")
        try:
            return cmd_crosscheck_vm(args, progress=status)
        finally:
            status.close()
    # the whole library takes seconds (each scenario starts an agent process)
    status = Progress("crosscheck", not args.json, unit="scenarios")
    try:
        rows = crosscheck(args.scenario, profile=profile, progress=status)
    finally:
        status.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
    else:
        print(format_table(rows))
    return 1 if any(not r.agree and not r.skipped for r in rows) else 0


def cmd_export_c(args: argparse.Namespace, profile: str) -> int:
    """``reclaim crosscheck --export-c DIR [--program NAME] [--run [--vm ARCH]]``: write the
    scenarios as a kselftest-style C program (reclaim.crosscheck.ctest); with --run, compile it
    with the system's C compiler and run it on this machine's kernel, or with --vm compile it
    static for ARCH and run it in that Linux 6.12 guest. Returns the program's exit code with
    --run (0 pass, 1 fail, 4 skip), else 0. The expectations are the model's with
    ``profile`` (--profile, --set, --profile-file)."""
    from reclaim.crosscheck.ctest import compile_c, export_c, run_c, run_c_vm

    prog = export_c(args.export_c, args.scenario, program=args.program, profile=profile)
    if not args.run:
        if args.json:
            print(
                json.dumps(
                    {
                        "source": str(prog.source),
                        "support": [str(p) for p in prog.support],
                        "scenarios": list(prog.scenarios),
                    },
                    indent=2,
                )
            )
        else:
            print(f"{prog.source}: {len(prog.scenarios)} scenarios, one TAP test point each")
            print(f"build and run: make -C {prog.directory} && {prog.directory / prog.name}")
        return 0
    run = run_c_vm(prog, args.vm, accel=args.accel) if args.vm else run_c(compile_c(prog))
    if args.json:
        print(
            json.dumps(
                {
                    "returncode": run.returncode,
                    "points": [
                        {
                            "name": p.name,
                            "verdict": p.verdict,
                            "reason": p.reason,
                            "diagnostics": list(p.diagnostics),
                        }
                        for p in run.points
                    ],
                },
                indent=2,
            )
        )
    else:
        print(run.output, end="")
    return run.returncode


def add_parser(sub: Subparsers) -> None:
    """Add ``crosscheck`` and its options to the subcommands."""
    cc = sub.add_parser(
        "crosscheck",
        help="run the userfaultfd scenario library on the model and on this machine's kernel",
        epilog="examples:\n  reclaim crosscheck --scenario missing_basic --json\n"
        "  reclaim crosscheck --export-c ctest --scenario missing_basic --run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cc.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    cc.add_argument("--list", action="store_true", help="list the scenarios and exit")
    cc.add_argument("--json", action="store_true", help="machine-readable output")
    cc.add_argument(
        "--vm",
        choices=("s390x", "x86_64"),
        help="run the kernel side in a Linux 6.12 guest of this arch under QEMU (reclaim vm "
        "fetch installs it), the model with the same arch and profile 6.12",
    )
    cc.add_argument("--accel", default="tcg", help="QEMU accelerator of --vm (tcg, or kvm)")
    cc.add_argument(
        "--profile",
        default="6.12",
        help="the model's profile (default 6.12; --vm always runs 6.12 guests against 6.12)",
    )
    from reclaim.variants import add_variant_options

    add_variant_options(cc)
    cc.add_argument(
        "--export-c",
        metavar="DIR",
        help="write the scenarios (--scenario, or all) as a kselftest-style C program with TAP "
        "output into DIR, each step's expected observation the model's (docs/c-tests.md)",
    )
    cc.add_argument(
        "--program",
        default="reclaim_crosscheck",
        help="the name of the --export-c program (default reclaim_crosscheck)",
    )
    cc.add_argument(
        "--run",
        action="store_true",
        help="with --export-c: compile it with the system's cc and run it on this kernel (with "
        "--vm ARCH: static, in that guest)",
    )
    from reclaim.cli.crosscheck_replay import add_arguments

    add_arguments(cc)
    cc.set_defaults(func=cmd_crosscheck)
