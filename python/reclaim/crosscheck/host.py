"""Run a scenario on the real kernel of this machine (x86_64 Linux, as root).

The process under test is an *agent*: a separate Python process (``python -c`` running
:func:`_agent_main`) that maps memory, accesses it, calls madvise/munmap/fork and creates the
userfaultfds, all through ``ctypes`` (libc ``mmap``/``munmap``/``madvise``/``memcpy`` and the
``userfaultfd`` system call, x86_64 number 323, or ``/dev/userfaultfd`` +
``USERFAULTFD_IOC_NEW``). It passes every userfaultfd to this process, the *monitor*, over a
Unix socket (``SCM_RIGHTS``) and closes its own copy, so the monitor owns them as a
non-cooperative manager does: it issues the ioctls (UFFDIO_API, REGISTER, UNREGISTER, COPY,
ZEROPAGE, WAKE, CONTINUE, WRITEPROTECT) and reads the ``struct uffd_msg`` messages.

Why two processes: the kernel blocks a process that causes a non-cooperative event (REMOVE,
UNMAP, FORK) until the event is read, and a thread that faults in a registered range until the
fault is resolved. In one Python process the blocked ``fork()`` would hold the GIL the reader
needs; across two processes nothing can deadlock. A SIGBUS (UFFD_FEATURE_SIGBUS) kills the
agent and is observed from its exit status.

Every access runs in a fresh thread of the agent (``memcpy`` of 8 bytes through ctypes, which
releases the GIL). A reader thread of the monitor polls every userfaultfd and buffers each
message as it arrives (it must: the events block the agent until read). An access whose thread
has not finished when a PAGEFAULT for its page has been read is observed as blocked with that
message; a later COPY/ZEROPAGE/WAKE/CONTINUE/WRITEPROTECT/UNREGISTER/close lets it finish, and a
``Wait`` step observes the outcome: the completion, or that the thread sleeps in
``handle_userfault`` again (``/proc/<pid>/task/<tid>/wchan``; where that is unavailable, that it
has not finished within ~200 ms). Page states come from ``/proc/<pid>/pagemap`` (bit 63
present, bit 62 swapped).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import faulthandler
import json
import os
import platform
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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
    RunResult,
    Scenario,
    Step,
    SwapEntry,
    SwapUsage,
    Touch,
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

# --------------------------------------------------------------------------------------------
# The kernel ABI (include/uapi/linux/userfaultfd.h, asm-generic/ioctl.h, x86_64)

#: ``__NR_userfaultfd`` on x86_64.
NR_USERFAULTFD_X86_64 = 323
UFFD_API = 0xAA
UFFD_USER_MODE_ONLY = 1

_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, nr: int, size: int, typ: int = 0xAA) -> int:
    """``_IOC(dir, type, nr, size)`` of asm-generic/ioctl.h."""
    return (direction << 30) | (size << 16) | (typ << 8) | nr


class UffdioApi(ctypes.Structure):
    """``struct uffdio_api``."""

    _fields_ = (
        ("api", ctypes.c_uint64),
        ("features", ctypes.c_uint64),
        ("ioctls", ctypes.c_uint64),
    )


class UffdioRange(ctypes.Structure):
    """``struct uffdio_range``."""

    _fields_ = (("start", ctypes.c_uint64), ("len", ctypes.c_uint64))


class UffdioRegister(ctypes.Structure):
    """``struct uffdio_register``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64), ("ioctls", ctypes.c_uint64))


class UffdioCopy(ctypes.Structure):
    """``struct uffdio_copy``."""

    _fields_ = (
        ("dst", ctypes.c_uint64),
        ("src", ctypes.c_uint64),
        ("len", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("copy", ctypes.c_int64),
    )


class UffdioZeropage(ctypes.Structure):
    """``struct uffdio_zeropage``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64), ("zeropage", ctypes.c_int64))


class UffdioWriteprotect(ctypes.Structure):
    """``struct uffdio_writeprotect``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64))


class UffdioContinue(ctypes.Structure):
    """``struct uffdio_continue``."""

    _fields_ = (("range", UffdioRange), ("mode", ctypes.c_uint64), ("mapped", ctypes.c_int64))


UFFDIO_REGISTER = _ioc(_IOC_READ | _IOC_WRITE, 0x00, ctypes.sizeof(UffdioRegister))
UFFDIO_UNREGISTER = _ioc(_IOC_READ, 0x01, ctypes.sizeof(UffdioRange))
UFFDIO_WAKE = _ioc(_IOC_READ, 0x02, ctypes.sizeof(UffdioRange))
UFFDIO_COPY = _ioc(_IOC_READ | _IOC_WRITE, 0x03, ctypes.sizeof(UffdioCopy))
UFFDIO_ZEROPAGE = _ioc(_IOC_READ | _IOC_WRITE, 0x04, ctypes.sizeof(UffdioZeropage))
UFFDIO_WRITEPROTECT = _ioc(_IOC_READ | _IOC_WRITE, 0x06, ctypes.sizeof(UffdioWriteprotect))
UFFDIO_CONTINUE = _ioc(_IOC_READ | _IOC_WRITE, 0x07, ctypes.sizeof(UffdioContinue))
UFFDIO_API = _ioc(_IOC_READ | _IOC_WRITE, 0x3F, ctypes.sizeof(UffdioApi))
USERFAULTFD_IOC_NEW = _ioc(_IOC_NONE, 0x00, 0)

UFFDIO_REGISTER_MODE_MISSING = 1 << 0
UFFDIO_REGISTER_MODE_WP = 1 << 1
UFFDIO_REGISTER_MODE_MINOR = 1 << 2
UFFDIO_COPY_MODE_DONTWAKE = 1 << 0
UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1 << 0
UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0
UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 1 << 1
UFFDIO_CONTINUE_MODE_DONTWAKE = 1 << 0

#: ``sizeof(struct uffd_msg)``: u8 event, 7 reserved bytes, a 24-byte union.
UFFD_MSG_SIZE = 32
UFFD_EVENT_FORK = 0x13

PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_FAILED = ctypes.c_void_p(-1).value

#: ``MADV_*`` by advice name.
MADV = {"willneed": 3, "dontneed": 4, "free": 8, "remove": 9, "cold": 20, "pageout": 21}

PAGEMAP_PRESENT = 1 << 63
PAGEMAP_SWAPPED = 1 << 62

#: How long an access may run before it is judged parked when its thread's wchan is unknown
#: (the kernel parks a faulting thread at once).
ACCESS_WINDOW = 0.2
#: How long an access with no PAGEFAULT read may run before it is judged stuck.
STUCK_WINDOW = 1.0
#: How long a system call of the agent may take.
CALL_TIMEOUT = 5.0


def parse_msg(raw: bytes) -> tuple[int, int, int, int]:
    """Unpack one ``struct uffd_msg``: (event, arg word 0, arg word 1, arg word 2). For
    PAGEFAULT the words are flags, address and ptid (low 32 bits); FORK: ufd; REMOVE/UNMAP:
    start, end."""
    if len(raw) != UFFD_MSG_SIZE:
        raise ValueError(f"a uffd_msg is {UFFD_MSG_SIZE} bytes, got {len(raw)}")
    event, a, b, c = struct.unpack("<B7xQQQ", raw)
    return int(event), int(a), int(b), int(c)


# --------------------------------------------------------------------------------------------
# libc through ctypes


class _Libc:
    """The few libc functions the runner calls, typed. Foreign calls release the GIL."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libc.so.6", use_errno=True)
        self._syscall = lib.syscall
        self._syscall.restype = ctypes.c_long
        self._ioctl = lib.ioctl
        self._ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
        self._ioctl.restype = ctypes.c_int
        self._mmap = lib.mmap
        self._mmap.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        )
        self._mmap.restype = ctypes.c_void_p
        self._munmap = lib.munmap
        self._munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        self._munmap.restype = ctypes.c_int
        self._madvise = lib.madvise
        self._madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        self._madvise.restype = ctypes.c_int
        self._memcpy = lib.memcpy
        self._memcpy.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        self._memcpy.restype = ctypes.c_void_p

    @staticmethod
    def _check(ret: int) -> int:
        if ret == -1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return ret

    def userfaultfd(self, flags: int) -> int:
        """The userfaultfd system call (x86_64)."""
        r: int = self._syscall(ctypes.c_long(NR_USERFAULTFD_X86_64), ctypes.c_long(flags))
        return self._check(int(r))

    def ioctl(self, fd: int, request: int, arg: ctypes.Structure | None) -> int:
        """ioctl(2) with a pointer to ``arg`` (or an integer 0)."""
        p = ctypes.addressof(arg) if arg is not None else None
        r: int = self._ioctl(fd, request, p)
        return self._check(int(r))

    def ioctl_int(self, fd: int, request: int, value: int) -> int:
        """ioctl(2) with an integer argument."""
        r: int = self._ioctl(fd, request, ctypes.c_void_p(value))
        return self._check(int(r))

    def mmap(self, length: int, prot: int, flags: int, fd: int = -1) -> int:
        """mmap(2) at an address of the kernel's choice."""
        r: int | None = self._mmap(None, length, prot, flags, fd, 0)
        if r is None or r == MAP_FAILED:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return int(r)

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2)."""
        r: int = self._munmap(addr, length)
        self._check(int(r))

    def madvise(self, addr: int, length: int, advice: int) -> None:
        """madvise(2)."""
        r: int = self._madvise(addr, length, advice)
        self._check(int(r))

    def memcpy(self, dst: int, src: int, n: int) -> None:
        """memcpy(3): the access itself (a fault in it blocks only this thread)."""
        self._memcpy(dst, src, n)


_libc: _Libc | None = None


def libc() -> _Libc:
    """The process's :class:`_Libc` (loaded on first use)."""
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def errno_name(e: OSError) -> str:
    """``EEXIST`` for an OSError with errno 17."""
    return _errno.errorcode.get(e.errno or 0, f"errno {e.errno}")


def new_userfaultfd() -> int:
    """A userfaultfd (O_CLOEXEC | O_NONBLOCK) of the calling process: the system call, or
    ``/dev/userfaultfd`` + USERFAULTFD_IOC_NEW where the system call is refused."""
    flags = os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return libc().userfaultfd(flags)
    except OSError as e:
        if e.errno not in (_errno.EPERM, _errno.ENOSYS, _errno.EACCES):
            raise
        first = e
    try:
        dev = os.open("/dev/userfaultfd", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        raise first from None
    try:
        return libc().ioctl_int(dev, USERFAULTFD_IOC_NEW, flags)
    finally:
        os.close(dev)


# --------------------------------------------------------------------------------------------
# The agent (the process under test)


class _Agent:
    """Serves the monitor's commands in the process under test."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, obj: dict[str, object], fds: list[int] | None = None) -> None:
        data = json.dumps(obj).encode()
        with self.lock:
            if fds:
                socket.send_fds(self.sock, [data], fds)
            else:
                self.sock.send(data)

    def serve(self) -> None:
        while True:
            data = self.sock.recv(65536)
            if not data:
                os._exit(0)
            cmd = json.loads(data)
            if not isinstance(cmd, dict):
                continue
            self.handle({str(k): v for k, v in cmd.items()})

    def handle(self, cmd: dict[str, object]) -> None:
        ident = cmd.get("id")
        op = cmd.get("op")
        try:
            if op == "mmap":
                self.send({"id": ident, "addr": self.mmap(cmd)})
            elif op == "munmap":
                libc().munmap(_get_int(cmd, "addr"), _get_int(cmd, "len"))
                self.send({"id": ident})
            elif op == "madvise":
                advice = MADV[str(cmd.get("advice"))]
                libc().madvise(_get_int(cmd, "addr"), _get_int(cmd, "len"), advice)
                self.send({"id": ident})
            elif op == "uffd":
                fd = new_userfaultfd()
                self.send({"id": ident}, [fd])
                os.close(fd)
            elif op == "access":
                t = threading.Thread(target=self.access, args=(cmd,), daemon=True)
                t.start()
                self.send({"id": ident})
            elif op == "fork":
                self.fork(ident)
            elif op == "exit":
                os._exit(0)
            else:
                self.send({"id": ident, "errno": "EINVAL", "error": f"unknown op {op!r}"})
        except OSError as e:
            self.send({"id": ident, "errno": errno_name(e)})

    def mmap(self, cmd: dict[str, object]) -> int:
        pages = _get_int(cmd, "pages")
        shared = bool(cmd.get("shared"))
        prot = PROT_READ | PROT_WRITE
        if cmd.get("kind") == "shmem":
            mfd = os.memfd_create("crosscheck", os.MFD_CLOEXEC)
            try:
                os.ftruncate(mfd, pages * PAGE)
                return libc().mmap(pages * PAGE, prot, MAP_SHARED if shared else MAP_PRIVATE, mfd)
            finally:
                os.close(mfd)
        flags = MAP_ANONYMOUS | (MAP_SHARED if shared else MAP_PRIVATE)
        return libc().mmap(pages * PAGE, prot, flags)

    def access(self, cmd: dict[str, object]) -> None:
        buf = ctypes.c_uint64(_get_int(cmd, "value"))
        addr = _get_int(cmd, "addr")
        self.send({"started": _get_int(cmd, "tid"), "native": threading.get_native_id()})
        if cmd.get("write"):
            libc().memcpy(addr, ctypes.addressof(buf), 8)
        else:
            libc().memcpy(ctypes.addressof(buf), addr, 8)
        self.send({"done": _get_int(cmd, "tid"), "value": buf.value})

    def fork(self, ident: object) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            mine.close()
            self.sock.close()
            child = _Agent(theirs)
            try:
                child.serve()
            finally:
                os._exit(0)
        theirs.close()
        threading.Thread(target=self.reap, args=(pid,), daemon=True).start()
        self.send({"id": ident, "pid": pid}, [mine.fileno()])
        mine.close()

    def reap(self, pid: int) -> None:
        _, status = os.waitpid(pid, 0)
        self.send({"child_exit": status})


def _get_int(d: dict[str, object], key: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise OSError(_errno.EINVAL, f"{key} is not an integer")
    return v


def _agent_main(fd: int) -> None:
    """Entry point of the agent process: serve the monitor on socket ``fd``."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    faulthandler.disable()
    signal.signal(signal.SIGBUS, signal.SIG_DFL)
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    # one CPU for every thread: the per-CPU LRU batches then drain where the madvise runs
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    _Agent(socket.socket(fileno=fd)).serve()


# --------------------------------------------------------------------------------------------
# The monitor


@dataclass
class _Reply:
    obj: dict[str, object]
    fds: list[int]


class _Conn:
    """The monitor's end of an agent's socket: calls, completions of accesses, exits."""

    def __init__(self, sock: socket.socket, pid: int, popen: subprocess.Popen[bytes] | None):
        self.sock = sock
        self.pid = pid
        self.popen = popen
        self.next_id = 0
        self.replies: dict[int, _Reply] = {}
        self.done: dict[int, int] = {}
        self.native: dict[int, int] = {}
        self.child_exit: int | None = None
        self.eof = False
        #: A pidfd of a process that is not this one's child (the agent's fork child).
        self.pidfd: int | None = None

    def pump(self, timeout: float) -> bool:
        """Receive one message if one comes within ``timeout``."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        if not r:
            return False
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, 4)
        except OSError:
            data, fds = b"", []
        if not data:
            self.eof = True
            return True
        raw = json.loads(data)
        obj: dict[str, object] = (
            {str(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}
        )
        if "done" in obj:
            self.done[_get_int(obj, "done")] = _get_int(obj, "value")
        elif "started" in obj:
            self.native[_get_int(obj, "started")] = _get_int(obj, "native")
        elif "child_exit" in obj:
            self.child_exit = _get_int(obj, "child_exit")
        elif "id" in obj:
            self.replies[_get_int(obj, "id")] = _Reply(obj, list(fds))
        return True

    def call(self, op: str, timeout: float = CALL_TIMEOUT, **args: object) -> _Reply | None:
        """Send a command and wait for its reply (None on timeout or death)."""
        self.next_id += 1
        ident = self.next_id
        cmd: dict[str, object] = {"id": ident, "op": op, **args}
        try:
            self.sock.send(json.dumps(cmd).encode())
        except OSError:
            self.eof = True
            return None
        deadline = time.monotonic() + timeout
        while ident not in self.replies:
            left = deadline - time.monotonic()
            if self.eof or left <= 0:
                return None
            self.pump(min(left, 0.05))
        return self.replies.pop(ident)

    def exit_signal(self, parent: _Conn | None) -> str | None:
        """The signal that killed this agent, once it is dead."""
        status: int | None = None
        if self.popen is not None:
            try:
                rc = self.popen.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                return None
            return signal.Signals(-rc).name if rc < 0 else None
        if parent is not None:
            deadline = time.monotonic() + 2.0
            while parent.child_exit is None and time.monotonic() < deadline:
                parent.pump(0.05)
            status = parent.child_exit
        if status is not None and os.WIFSIGNALED(status):
            return signal.Signals(os.WTERMSIG(status)).name
        return None


@dataclass
class _RawMsg:
    seq: int
    uffd: str
    event: int
    a: int
    b: int
    c: int
    child: str = ""


class _Reader:
    """Polls every userfaultfd of a run and buffers their messages as they arrive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fds: dict[int, str] = {}
        self.log: list[_RawMsg] = []
        self.unread: dict[str, list[_RawMsg]] = {}
        self.stop = threading.Event()
        #: poll rounds the thread has finished (see :meth:`remove`)
        self.rounds = 0
        self.round_done = threading.Condition(self.lock)
        self.thread = threading.Thread(target=self.loop, name="uffd-reader", daemon=True)
        self.thread.start()

    def add(self, fd: int, name: str) -> None:
        """Start polling ``fd`` as userfaultfd ``name``."""
        with self.lock:
            self.fds[fd] = name
            self.unread.setdefault(name, [])

    def remove(self, fd: int) -> None:
        """Stop polling ``fd`` (before it is closed), and return once a poll that may still
        watch it has ended: poll(2) holds a reference to the file while it sleeps
        (``__pollwait``'s ``get_file``), so a close(2) during it would not release the
        userfaultfd (``userfaultfd_release``, which wakes the parked faults) until the poll
        returned, up to 20 ms later — a Wait right after a Close saw the fault still parked."""
        with self.lock:
            self.fds.pop(fd, None)
            seen = self.rounds
            self.round_done.wait_for(
                lambda: self.rounds > seen or not self.thread.is_alive(), timeout=1.0
            )

    def fd_of(self, name: str) -> int | None:
        """The fd of userfaultfd ``name``."""
        with self.lock:
            for fd, n in self.fds.items():
                if n == name:
                    return fd
        return None

    def mark(self) -> int:
        """The sequence number the next message gets."""
        with self.lock:
            return len(self.log)

    def drain(self) -> None:
        """Read every message pending on every userfaultfd now."""
        with self.lock:
            for fd, name in list(self.fds.items()):
                while True:
                    try:
                        data = os.read(fd, UFFD_MSG_SIZE * 16)
                    except OSError:
                        break
                    if not data:
                        break
                    for off in range(0, len(data) - UFFD_MSG_SIZE + 1, UFFD_MSG_SIZE):
                        ev, a, b, c = parse_msg(data[off : off + UFFD_MSG_SIZE])
                        m = _RawMsg(len(self.log), name, ev, a, b, c)
                        if ev == UFFD_EVENT_FORK:
                            m.child = f"{name}/fork"
                            self.fds[a & 0xFFFFFFFF] = m.child
                            self.unread.setdefault(m.child, [])
                        self.log.append(m)
                        self.unread[name].append(m)

    def loop(self) -> None:
        """The reader thread: poll, then drain."""
        while not self.stop.is_set():
            with self.lock:
                fds = list(self.fds)
            if not fds:
                time.sleep(0.01)
            else:
                p = select.poll()
                for fd in fds:
                    p.register(fd, select.POLLIN)
                with contextlib.suppress(OSError):
                    p.poll(20)
                self.drain()
            with self.lock:
                self.rounds += 1
                self.round_done.notify_all()

    def take(self, name: str) -> list[_RawMsg]:
        """The messages of ``name`` not yet taken (what a read(2) loop would have returned)."""
        self.drain()
        with self.lock:
            out = self.unread.get(name, [])
            self.unread[name] = []
            return out

    def fault_since(self, seq: int, page_addr: int) -> _RawMsg | None:
        """The first PAGEFAULT at ``page_addr`` read since ``seq``."""
        with self.lock:
            for m in self.log[seq:]:
                if m.event == 0x12 and m.b & ~(PAGE - 1) == page_addr:
                    return m
        return None

    def close(self) -> None:
        """Stop the thread and close every fd still open (the FORK ones included)."""
        self.stop.set()
        self.thread.join(timeout=2.0)
        with self.lock:
            for fd in self.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.fds.clear()


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
        code = "import sys\nfrom reclaim.crosscheck.host import _agent_main\n"
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


# --------------------------------------------------------------------------------------------
# What the host can do


@dataclass(frozen=True)
class HostInfo:
    """What this machine offers: ``reason`` is why nothing can run here (None if it can);
    ``features`` the UFFD_FEATURE_* mask UFFDIO_API offers."""

    reason: str | None
    features: int = 0


_info: HostInfo | None = None


def host_info() -> HostInfo:
    """Probe the host once: arch, privilege, a userfaultfd and the features it offers."""
    global _info
    if _info is not None:
        return _info
    _info = _probe()
    return _info


def _probe() -> HostInfo:
    if sys.platform != "linux":
        return HostInfo(f"the host is {sys.platform}, not Linux")
    machine = platform.machine()
    if machine != "x86_64":
        return HostInfo(f"the host runner knows x86_64 only (this host is {machine})")
    try:
        fd = new_userfaultfd()
    except OSError as e:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()} (not root)"
        return HostInfo(f"no userfaultfd for {who}: {errno_name(e)} ({e.strerror})")
    try:
        api = UffdioApi(UFFD_API, 0, 0)
        libc().ioctl(fd, UFFDIO_API, api)
        return HostInfo(None, int(api.features))
    except OSError as e:
        return HostInfo(f"UFFDIO_API failed: {errno_name(e)}")
    finally:
        os.close(fd)


def swap_devices() -> list[str]:
    """The active swap devices (/proc/swaps)."""
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return []
    return [ln.split()[0] for ln in lines if ln.strip()]


def host_skip_reason(scenario: Scenario) -> str | None:
    """Why ``scenario`` cannot run on this host (None if it can)."""
    info = host_info()
    if info.reason is not None:
        return info.reason
    arch_why = scenario.arch_skip(platform.machine())
    if arch_why is not None:
        return arch_why
    if any(isinstance(s, Touch | SwapEntry) for s in scenario.steps):
        return "the host runner has no touch/swap_entry steps (reclaim crosscheck --vm has)"
    if "swap" in scenario.needs and not swap_devices():
        return "no swap device (swapon --show / /proc/swaps lists none)"
    if "no_swap" in scenario.needs and swap_devices():
        devs = ", ".join(swap_devices())
        return f"needs a machine without swap; swap is on ({devs}; swapoff to run it)"
    if "uffd_wp" in scenario.needs and not info.features & feature_bits(["PAGEFAULT_FLAG_WP"]):
        return "the host kernel does not offer uffd-wp (UFFD_FEATURE_PAGEFAULT_FLAG_WP)"
    if "uffd_minor" in scenario.needs and not info.features & feature_bits(["MINOR_SHMEM"]):
        return "the host kernel does not offer MINOR faults on shmem (UFFD_FEATURE_MINOR_SHMEM)"
    return None


def run_host(scenario: Scenario) -> RunResult:
    """Run ``scenario`` on the kernel of this machine (skipped with the reason where the host
    lacks what it needs)."""
    res = RunResult(side="kernel")
    why = host_skip_reason(scenario)
    if why is not None:
        res.skipped = why
        return res
    run = _HostRun()
    try:
        run.start()
        for s in scenario.steps:
            res.observations.append(run.step(s))
    finally:
        run.stop()
        res.notes.extend(run.notes)
    return res


__all__ = [
    "NR_USERFAULTFD_X86_64",
    "UFFDIO_API",
    "UFFDIO_CONTINUE",
    "UFFDIO_COPY",
    "UFFDIO_REGISTER",
    "UFFDIO_UNREGISTER",
    "UFFDIO_WAKE",
    "UFFDIO_WRITEPROTECT",
    "UFFDIO_ZEROPAGE",
    "UFFD_MSG_SIZE",
    "USERFAULTFD_IOC_NEW",
    "HostInfo",
    "UffdioApi",
    "UffdioContinue",
    "UffdioCopy",
    "UffdioRange",
    "UffdioRegister",
    "UffdioWriteprotect",
    "UffdioZeropage",
    "host_info",
    "host_skip_reason",
    "new_userfaultfd",
    "parse_msg",
    "run_host",
    "swap_devices",
]
