"""What several ``reclaim`` subcommands share: the parser that reports a usage error in one
line, the `type=` of integer options, the progress bar on stderr and the table and causal chain
of postcopy study runs (``reclaim demo`` and ``reclaim study postcopy``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, TypeAlias

from reclaim._reclaim import PostcopyResult
from reclaim.progress import StatusLine, bar

#: The ``add_subparsers`` result each subcommand module adds its parser to.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2), as every
    other error of the command: ``reclaim replay: error: argument --limit: ...``. Subparsers
    added to it are of this class too."""

    def error(self, message: str) -> NoReturn:
        """Exit 2 with the usage error on one line and where to read the usage."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: The largest value of the engine's 64-bit and 32-bit unsigned integers.
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1


def integer(low: int = 0, high: int = U64_MAX) -> Callable[[str], int]:
    """The `type=` of an integer option: a decimal integer from `low` to `high` (the range of
    the engine's parameter), else a one-line usage error naming the option."""

    def parse(s: str) -> int:
        try:
            n = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {s!r}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {n}")
        return n

    parse.__name__ = "integer"
    return parse


class Progress(StatusLine):
    """A progress bar on stderr (a terminal only) for runs longer than a second."""

    def __init__(self, label: str, enabled: bool = True, unit: str = "pages") -> None:
        super().__init__(enabled=enabled and sys.stderr.isatty())
        self.label = label
        self.unit = unit

    def __call__(self, done: int, total: int, sim_s: float | None = None) -> None:
        frac = min(1.0, done / total) if total else 1.0
        sim = "" if sim_s is None else f", t={sim_s:6.2f}s sim"
        self.show(f"{self.label} {bar(frac)} {frac:4.0%} {self.unit}{sim}")


def postcopy_row(r: PostcopyResult, label: str) -> dict[str, object]:
    """One row of the table of postcopy runs (also the JSON of a run): `r` labelled `label`."""
    m = r.metrics
    return {
        "run": label,
        "profile": r.profile,
        "source_profile": r.source_profile,
        "qemu": r.qemu,
        "seed": r.seed,
        "outcome": r.outcome,
        "failure": r.failure,
        "userfaults_on_received": m["userfaults_on_received"],
        "dest_pages_dropped": m["dest_pages_dropped"],
        "dest_pages_swapped": m["dest_pages_swapped"],
        "dest_cbrl_zapped": m["dest_cbrl_zapped"],
        "migration_time_s": round(m["total_time_ns"] / 1e9, 3),
        "vcpu_blocked_s": round(m["vcpu_blocked_ns"] / 1e9, 3),
        "hang": r.hang,
        "stalls": r.stalls,
        "chain": r.chain,
        "metrics": m,
        "log_hash": r.log_hash,
    }


def print_table(rows: list[dict[str, object]]) -> None:
    """Print rows of `postcopy_row` as an aligned table on stdout."""
    cols = [
        ("run", 30),
        ("outcome", 10),
        ("userfaults_on_received", 10),
        ("dest_pages_dropped", 9),
        ("dest_pages_swapped", 9),
        ("dest_cbrl_zapped", 7),
        ("migration_time_s", 9),
    ]
    heads = ["run", "outcome", "uf@recv", "dropped", "swapped", "cbrl", "time s"]
    print("  ".join(f"{h:<{w}}" for h, (_, w) in zip(heads, cols, strict=True)))
    for r in rows:
        print("  ".join(f"{r[c]!s:<{w}}" for c, w in cols))


def print_chain(row: dict[str, object]) -> None:
    """Print the causal chain of a hung run's row (nothing for a run that did not hang)."""
    hang = row["hang"]
    if not isinstance(hang, dict):
        return
    chain = row["chain"]
    assert isinstance(chain, list)
    print(
        f"\n{row['run']}: vCPU {hang['vcpu']} hung on guest page {hang['gfn']:#x} "
        f"since t={hang['since'] / 1e9:.3f}s; the causal chain:"
    )
    for step in chain:
        print(f"  t={step['t'] / 1e9:9.6f}s  {step['host']:<11}  {step['what']}")
    stalls = row.get("stalls")
    if isinstance(stalls, list) and stalls:
        import textwrap

        from reclaim.stall import describe

        print(f"\n{row['run']}: what the guest would see")
        for st in stalls:
            print(textwrap.fill(describe(st), 100, initial_indent="  ", subsequent_indent="    "))
        note = (
            "A stall lasts until the migration ends: the longer the rest of the migration, the "
            "longer the vCPU stands still (a guest of tens of GiB takes minutes to migrate)."
        )
        print(textwrap.fill(note, 100, initial_indent="  ", subsequent_indent="  "))


def report_failures(rows: list[dict[str, object]], text: bool) -> int:
    """Report the runs among `rows` that failed (outcome "failed": the run stopped before the
    migration ended, ``failure`` says why): in the text output if `text`, and one line each on
    stderr. Returns the exit code: 1 if a run failed, else 0."""
    failed = [r for r in rows if r["outcome"] == "failed"]
    for r in failed:
        if text:
            print(f"\n{r['run']}: failed: {r['failure']}")
        print(f"reclaim: {r['run']} failed: {r['failure']}", file=sys.stderr)
    return 1 if failed else 0


def csv(s: str) -> list[str]:
    """The items of a comma-separated option value, blanks dropped."""
    return [x.strip() for x in s.split(",") if x.strip()]
