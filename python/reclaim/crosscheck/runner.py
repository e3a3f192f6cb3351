"""The runner of a scenario on this machine's kernel (see :mod:`reclaim.crosscheck.host`): it
spawns the agent, executes each step through it or through the userfaultfds it holds, and
observes the outcome (pagemap, smaps, wchan)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from reclaim.crosscheck.agent import _get_int
from reclaim.crosscheck.libc import errno_name, libc
from reclaim.crosscheck.monitor import (
    ACCESS_WINDOW,
    STUCK_WINDOW,
    _Conn,
    _RawMsg,
    _Reader,
    _Reply,
)
from reclaim.crosscheck.scenario import (
    OK,
    PAGE,
    Close,
    Continue,
    Copy,
    Fork,
    Madvise,
    Mmap,
    Msg,
    Munmap,
    Observation,
    PageState,
    Read,
    ReadEvents,
    Register,
    Step,
    SwapUsage,
    Uffd,
    Unregister,
    Wait,
    Wake,
    Write,
    WriteProtect,
    Zeropage,
    errno_obs,
    feature_bits,
    locate,
    make_msg,
)
from reclaim.crosscheck.uapi import (
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGEMAP_PRESENT,
    PAGEMAP_SWAPPED,
    PROT_READ,
    PROT_WRITE,
    UFFD_API,
    UFFDIO_API,
    UFFDIO_CONTINUE,
    UFFDIO_CONTINUE_MODE_DONTWAKE,
    UFFDIO_COPY,
    UFFDIO_COPY_MODE_DONTWAKE,
    UFFDIO_REGISTER,
    UFFDIO_REGISTER_MODE_MINOR,
    UFFDIO_REGISTER_MODE_MISSING,
    UFFDIO_REGISTER_MODE_WP,
    UFFDIO_UNREGISTER,
    UFFDIO_WAKE,
    UFFDIO_WRITEPROTECT,
    UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
    UFFDIO_WRITEPROTECT_MODE_WP,
    UFFDIO_ZEROPAGE,
    UFFDIO_ZEROPAGE_MODE_DONTWAKE,
    UffdioApi,
    UffdioContinue,
    UffdioCopy,
    UffdioRange,
    UffdioRegister,
    UffdioWriteprotect,
    UffdioZeropage,
)


@dataclass
class _Thread:
    addr: int
    write: bool
    pending: bool = True
    last: Observation | None = None


@dataclass
class _HostRun:
    """The state of one kernel run."""

    conns: dict[str, _Conn] = field(default_factory=dict)
    mappings: dict[str, tuple[int, int]] = field(default_factory=dict)
    threads: dict[tuple[str, int], _Thread] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)
    reader: _Reader = field(default_factory=_Reader)
    src: int = 0
    src_pages: int = 64
    stderr: IO[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    # -- setup and teardown ------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the agent and map the source buffer of UFFDIO_COPY."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = Path(os.path.abspath(__file__)).parent.parent.parent
        env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(root), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
        code = "import sys\nfrom reclaim.crosscheck.agent import _agent_main\n"
        code += "_agent_main(int(sys.argv[1]))\n"
        # kept open until stop(), which reads and closes it
        err = tempfile.TemporaryFile()  # noqa: SIM115
        self.stderr = err
        popen = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=tempfile.gettempdir(),
        )
        theirs.close()
        self.conns["parent"] = _Conn(mine, popen.pid, popen)
        self.src = libc().mmap(
            self.src_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS
        )

    def stop(self) -> None:
        """Kill the processes, close every fd, unmap the buffer."""
        for name in ("child", "parent"):
            c = self.conns.get(name)
            if c is None:
                continue
            if c.popen is not None:
                c.popen.kill()
            elif c.pidfd is not None:
                # the agent's child, through a pidfd: its pid may have been reused meanwhile
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
                os.close(c.pidfd)
                c.pidfd = None
            if c.popen is not None:
                try:
                    c.popen.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    self.notes.append("the agent did not die")
            c.sock.close()
        self.reader.close()
        if self.src:
            libc().munmap(self.src, self.src_pages * PAGE)
            self.src = 0
        err = self.stderr
        if err is not None:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            if text:
                self.notes.append("agent stderr: " + text[-2000:])
            err.close()

    # -- helpers -----------------------------------------------------------------------------

    def addr(self, name: str, page: int, offset: int = 0) -> int:
        """The address of page ``page`` of mapping ``name``."""
        return self.mappings[name][0] + page * PAGE + offset

    def span(self, name: str, first: int, npages: int | None) -> tuple[int, int]:
        """(start, length) of pages ``[first, first+npages)`` (to the end for None)."""
        start, pages = self.mappings[name]
        n = pages - first if npages is None else npages
        return start + first * PAGE, n * PAGE

    def norm(self, m: _RawMsg) -> Msg:
        """Normalize a buffered message."""
        if m.event == 0x12:
            return make_msg(
                event=m.event,
                uffd=m.uffd,
                mappings=self.mappings,
                flags=m.a,
                address=m.b,
                ptid=m.c & 0xFFFFFFFF,
            )
        return make_msg(
            event=m.event, uffd=m.uffd, mappings=self.mappings, address=m.a, end=m.b, child=m.child
        )

    def uffd_fd(self, name: str) -> int:
        """The fd of userfaultfd ``name`` (KeyError if there is none)."""
        fd = self.reader.fd_of(name)
        if fd is None:
            raise KeyError(name)
        return fd

    def reply_obs(self, proc: str, r: _Reply | None) -> Observation:
        """Observe the reply to a call of the agent."""
        if r is None:
            return self.died_or_stuck(proc)
        e = r.obj.get("errno")
        return errno_obs(str(e)) if e is not None else OK

    def died_or_stuck(self, proc: str) -> Observation:
        """The call got no reply: the agent died of a signal, or it is blocked."""
        c = self.conns[proc]
        if c.eof:
            sig = c.exit_signal(self.conns.get("parent") if proc == "child" else None)
            self.dead[proc] = sig or "exited"
            return Observation("signal", detail=sig) if sig else Observation("dead")
        return Observation("stuck", detail="no reply from the agent")

    # -- steps -------------------------------------------------------------------------------

    def step(self, s: Step) -> Observation:
        """Run one step and observe it."""
        if s.proc not in self.conns:
            return Observation("error", detail=f"no process {s.proc}")
        if s.proc in self.dead:
            return Observation("dead")
        try:
            return self._step(s, self.conns[s.proc])
        except KeyError as e:
            return Observation("error", detail=f"unknown name {e}")
        except OSError as e:
            return errno_obs(errno_name(e))

    def _step(self, s: Step, c: _Conn) -> Observation:
        match s:
            case Mmap():
                if s.name in self.mappings:
                    return Observation("error", detail=f"mapping {s.name} exists")
                r = c.call("mmap", pages=s.pages, kind=s.kind, shared=s.shared)
                if r is not None and "addr" in r.obj:
                    self.mappings[s.name] = (_get_int(r.obj, "addr"), s.pages)
                return self.reply_obs(s.proc, r)
            case Munmap():
                start, length = self.span(s.name, s.first, s.npages)
                return self.reply_obs(s.proc, c.call("munmap", addr=start, len=length))
            case Madvise():
                start, length = self.span(s.name, s.first, s.npages)
                r = c.call("madvise", addr=start, len=length, advice=s.advice)
                return self.reply_obs(s.proc, r)
            case Fork():
                r = c.call("fork")
                if r is not None and r.fds:
                    sock = socket.socket(fileno=r.fds[0])
                    child = _Conn(sock, _get_int(r.obj, "pid"), None)
                    # the child waits for commands: it is alive, so the pid is still its own
                    child.pidfd = os.pidfd_open(child.pid)
                    self.conns["child"] = child
                return self.reply_obs(s.proc, r)
            case Uffd():
                return self.uffd(s, c)
            case Register():
                start, length = self.span(s.name, s.first, s.npages)
                mode = (
                    (UFFDIO_REGISTER_MODE_MISSING if s.missing else 0)
                    | (UFFDIO_REGISTER_MODE_WP if s.wp else 0)
                    | (UFFDIO_REGISTER_MODE_MINOR if s.minor else 0)
                )
                reg = UffdioRegister(UffdioRange(start + s.byte_offset, length), mode, 0)
                libc().ioctl(self.uffd_fd(s.uffd), UFFDIO_REGISTER, reg)
                return OK
            case Unregister():
                rng = UffdioRange(*self.span(s.name, s.first, s.npages))
                libc().ioctl(self.uffd_fd(s.uffd), UFFDIO_UNREGISTER, rng)
                return OK
            case Read():
                return self.access(s.proc, s.thread, self.addr(s.name, s.page, s.byte_offset))
            case Write():
                return self.access(s.proc, s.thread, self.addr(s.name, s.page), s.value)
            case Wait():
                return self.wait(s.proc, s.thread)
            case Copy():
                if s.npages > self.src_pages:
                    return Observation("error", detail="copy larger than the source buffer")
                fd = self.uffd_fd(s.uffd)
                ctypes.memset(self.src, 0, s.npages * PAGE)
                for i in range(s.npages):
                    ctypes.c_uint64.from_address(self.src + i * PAGE).value = s.value
                mode = UFFDIO_COPY_MODE_DONTWAKE if s.dontwake else 0
                cp = UffdioCopy(self.addr(s.name, s.page), self.src, s.npages * PAGE, mode, 0)
                libc().ioctl(fd, UFFDIO_COPY, cp)
                return OK
            case Zeropage():
                mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE if s.dontwake else 0
                rng = UffdioRange(self.addr(s.name, s.page), s.npages * PAGE)
                libc().ioctl(self.uffd_fd(s.uffd), UFFDIO_ZEROPAGE, UffdioZeropage(rng, mode, 0))
                return OK
            case Wake():
                rng = UffdioRange(self.addr(s.name, s.page), s.npages * PAGE)
                libc().ioctl(self.uffd_fd(s.uffd), UFFDIO_WAKE, rng)
                return OK
            case Continue():
                mode = UFFDIO_CONTINUE_MODE_DONTWAKE if s.dontwake else 0
                rng = UffdioRange(self.addr(s.name, s.page), s.npages * PAGE)
                libc().ioctl(self.uffd_fd(s.uffd), UFFDIO_CONTINUE, UffdioContinue(rng, mode, 0))
                return OK
            case WriteProtect():
                mode = (UFFDIO_WRITEPROTECT_MODE_WP if s.wp else 0) | (
                    UFFDIO_WRITEPROTECT_MODE_DONTWAKE if s.dontwake else 0
                )
                rng = UffdioRange(self.addr(s.name, s.page), s.npages * PAGE)
                wp = UffdioWriteprotect(rng, mode)
                libc().ioctl(self.uffd_fd(s.uffd), UFFDIO_WRITEPROTECT, wp)
                return OK
            case ReadEvents():
                self.uffd_fd(s.uffd)
                msgs = self.reader.take(s.uffd)
                return Observation("events", msgs=tuple(self.norm(m) for m in msgs))
            case PageState():
                return Observation(
                    "state", detail=self.page_state(c.pid, self.addr(s.name, s.page))
                )
            case SwapUsage():
                start, pages = self.mappings[s.name]
                kib = self.smaps_swap_kib(c.pid, start, pages * PAGE)
                return Observation("state", detail=f"swap {kib * 1024 // PAGE}")
            case Close():
                fd = self.uffd_fd(s.uffd)
                self.reader.remove(fd)
                os.close(fd)
                return OK
        return Observation("error", detail=f"unknown step {type(s).__name__}")

    def uffd(self, s: Uffd, c: _Conn) -> Observation:
        """userfaultfd(2) in the agent, then UFFDIO_API here."""
        if self.reader.fd_of(s.uffd) is not None:
            return Observation("error", detail=f"userfaultfd {s.uffd} exists")
        r = c.call("uffd")
        if r is None or not r.fds:
            return self.reply_obs(s.proc, r)
        fd = r.fds[0]
        api = UffdioApi(UFFD_API, feature_bits(s.features), 0)
        try:
            libc().ioctl(fd, UFFDIO_API, api)
        except OSError:
            os.close(fd)
            raise
        self.reader.add(fd, s.uffd)
        return OK

    def access(self, proc: str, tid: int, addr: int, value: int | None = None) -> Observation:
        """Start an access in a new thread of the agent and judge it."""
        c = self.conns[proc]
        prev = self.threads.get((proc, tid))
        if prev is not None and prev.pending:
            seen = self.wait(proc, tid)
            if prev.pending:
                return Observation("thread-blocked") if seen.kind == "blocked" else seen
        write = value is not None
        seq = self.reader.mark()
        r = c.call("access", tid=tid, addr=addr, write=write, value=value or 0)
        if r is None:
            return self.died_or_stuck(proc)
        th = _Thread(addr, write)
        self.threads[(proc, tid)] = th
        page = addr & ~(PAGE - 1)
        start = time.monotonic()
        while True:
            done = self.settle(proc, tid, 0.005)
            if done is not None:
                return done
            if c.eof:
                return self.died_or_stuck(proc)
            self.reader.drain()
            m = self.reader.fault_since(seq, page)
            if m is not None:
                # the thread is parked in handle_userfault: it cannot finish by itself
                done = self.settle(proc, tid, 0.01)
                return done or Observation("blocked", msgs=(self.norm(m),))
            if time.monotonic() - start > STUCK_WINDOW:
                return Observation("stuck", detail="no PAGEFAULT read and no completion")

    def settle(self, proc: str, tid: int, timeout: float) -> Observation | None:
        """The outcome of ``tid``'s pending access if it finishes within ``timeout``."""
        c = self.conns[proc]
        th = self.threads[(proc, tid)]
        if not th.pending:
            return th.last
        deadline = time.monotonic() + timeout
        while True:
            if tid in c.done:
                v = c.done.pop(tid)
                th.pending = False
                th.last = Observation("written") if th.write else Observation("value", value=v)
                return th.last
            left = deadline - time.monotonic()
            if left <= 0 or c.eof:
                return None
            c.pump(left)

    def wait(self, proc: str, tid: int) -> Observation:
        """The outcome of the thread's last access, or that it is still parked."""
        th = self.threads.get((proc, tid))
        if th is None:
            return Observation("error", detail=f"thread {tid} made no access")
        page = locate(th.addr, self.mappings)
        blocked = Observation("blocked", detail=f"{page.name}[{page.page}]")
        c = self.conns[proc]
        start = time.monotonic()
        while True:
            done = self.settle(proc, tid, 0.005)
            if done is not None:
                return done
            if c.eof:
                return self.died_or_stuck(proc)
            elapsed = time.monotonic() - start
            where = self.wchan(proc, tid)
            if where == "handle_userfault" or (where is None and elapsed > ACCESS_WINDOW):
                # parked in handle_userfault: it cannot finish until woken
                return self.settle(proc, tid, 0.01) or blocked
            if elapsed > STUCK_WINDOW:
                return Observation("stuck", detail=f"thread {tid} sleeps in {where}")

    def wchan(self, proc: str, tid: int) -> str | None:
        """Where the agent's thread for ``tid`` sleeps (/proc/pid/task/tid/wchan; "0" when
        it runs), None if unknown."""
        c = self.conns[proc]
        native = c.native.get(tid)
        if native is None:
            return None
        try:
            return Path(f"/proc/{c.pid}/task/{native}/wchan").read_text().strip()
        except OSError:
            return None

    @staticmethod
    def smaps_swap_kib(pid: int, start: int, length: int) -> int:
        """The ``Swap:`` kB of the VMAs over ``[start, start+length)`` in /proc/<pid>/smaps
        (their swap PTEs, or ``shmem_swap_usage`` for a shared shmem mapping:
        smap_gather_stats). An anonymous mapping may have merged with a neighbour of the
        agent's; nothing else of the agent is on swap, so the sum is the mapping's."""
        inside = False
        total = 0
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo < start + length and start < hi
            elif inside and head == "Swap:":
                total += int(line.split()[1])
        return total

    @staticmethod
    def page_state(pid: int, addr: int) -> str:
        """present / swapped / none from /proc/<pid>/pagemap."""
        with open(f"/proc/{pid}/pagemap", "rb") as f:
            f.seek((addr // PAGE) * 8)
            (entry,) = struct.unpack("<Q", f.read(8))
        if entry & PAGEMAP_PRESENT:
            return "present"
        if entry & PAGEMAP_SWAPPED:
            return "swapped"
        return "none"
