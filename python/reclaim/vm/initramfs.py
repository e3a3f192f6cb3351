"""The guest's initramfs: an uncompressed ``newc`` cpio archive written here (no ``cpio`` tool
needed), holding busybox, the agent, the virtio-blk module, the ``/init`` script and the
agent's input.

The format (Documentation/driver-api/early-userspace/buffer-format.rst): each entry is the
110-byte ASCII header ``070701`` + 13 eight-digit hex fields, the NUL-terminated name padded
to 4 bytes, the data padded to 4 bytes; the archive ends with the entry ``TRAILER!!!``.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

#: The markers of the guest's console protocol: a line of agent output, the boot reaching
#: /init, the run's end.
RESULT = "@@R "
BOOTED = "@@B booted"
FINISHED = "@@E finished"
#: The prefix of a line of an exported C test's TAP output (reclaim.crosscheck.ctest), and the
#: line after it that carries its exit code (``@@T @exit 0``).
TAP = "@@T "
TAP_EXIT = "@exit "


@dataclass
class Cpio:
    """A newc archive being built: :meth:`dir`, :meth:`file` and :meth:`symlink` add
    entries, :meth:`data` gives the bytes."""

    entries: list[tuple[str, int, bytes]] = field(default_factory=list)

    def dir(self, name: str) -> None:
        """A directory (0755)."""
        self.entries.append((name, stat.S_IFDIR | 0o755, b""))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """A regular file with ``data``."""
        self.entries.append((name, stat.S_IFREG | mode, data))

    def symlink(self, name: str, target: str) -> None:
        """A symbolic link to ``target``."""
        self.entries.append((name, stat.S_IFLNK | 0o777, target.encode()))

    def data(self) -> bytes:
        """The archive."""
        out = bytearray()
        for ino, (name, mode, body) in enumerate([*self.entries, ("TRAILER!!!", 0, b"")], 1):
            nm = name.encode() + b"\0"
            fields = [ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(nm), 0]
            out += b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
            out += nm
            out += b"\0" * (-len(out) % 4)
            out += body
            out += b"\0" * (-len(out) % 4)
        return bytes(out)


#: The guest's /init: mounts, THP off, the LRU policy recorded then set, the swap disk's
#: driver loaded and formatted, then the agent on its input; poweroff at the end.
INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin
echo "{booted}"
echo never > /sys/kernel/mm/transparent_hugepage/enabled
LRU0=$(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null || echo none)
echo {lru_gen} > /sys/kernel/mm/lru_gen/enabled 2>/dev/null
LRU1=$(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null || echo none)
THP=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo none)
/agent insmod /virtio_blk.ko.xz || echo "{result}{{\\"note\\":\\"insmod virtio_blk failed: $?\\"}}"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mkswap /dev/vda >/dev/null 2>&1 || echo "{result}{{\\"note\\":\\"mkswap failed\\"}}"
MEM=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)
INFO="\\"lru_gen_boot\\":\\"$LRU0\\",\\"lru_gen\\":\\"$LRU1\\",\\"thp\\":\\"$THP\\""
echo "{result}{{\\"guest\\":1,$INFO,\\"mem_kib\\":$MEM}}"
/agent run /input.txt || echo "{result}{{\\"note\\":\\"agent exited with $?\\"}}"
for t in /ctest/*; do
  [ -x "$t" ] || continue
  RECLAIM_SWAPDEV=/dev/vda "$t" > /tmp/tap.out 2>&1
  rc=$?
  while IFS= read -r l; do echo "{tap}$l"; done < /tmp/tap.out
  echo "{tap}{tap_exit}$rc"
done
echo "{finished}"
poweroff -f
"""


def build(
    out: Path,
    busybox: Path,
    agent: Path,
    virtio_blk: Path,
    agent_input: str,
    lru_gen: str = "0",
    files: dict[str, bytes] | None = None,
    programs: dict[str, bytes] | None = None,
) -> Path:
    """Write the initramfs to ``out``: ``/bin/busybox``, ``/agent``, ``/virtio_blk.ko.xz``,
    ``/init`` and ``/input.txt`` (the agent's scenarios); ``lru_gen`` is what /init writes to
    ``/sys/kernel/mm/lru_gen/enabled`` ("0": the classic LRU the model models). ``files``
    adds more files at the root (name: data), e.g. the traces a replay reads; ``programs``
    are exported C tests (name: static binary), which /init runs after the agent, each
    line of their output on the console after :data:`TAP`."""
    c = Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp"):
        c.dir(d)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    c.file("agent", agent.read_bytes(), 0o755)
    c.file("virtio_blk.ko.xz", virtio_blk.read_bytes())
    script = INIT.format(
        booted=BOOTED, finished=FINISHED, result=RESULT, lru_gen=lru_gen, tap=TAP, tap_exit=TAP_EXIT
    )
    c.file("init", script.encode(), 0o755)
    c.file("input.txt", agent_input.encode())
    for name, data in (files or {}).items():
        c.file(name, data)
    if programs:
        c.dir("ctest")
        for name, data in programs.items():
            c.file(f"ctest/{name}", data, 0o755)
    out.write_bytes(c.data())
    return out


__all__ = ["BOOTED", "FINISHED", "INIT", "RESULT", "TAP", "TAP_EXIT", "Cpio", "build"]
