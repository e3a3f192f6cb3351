"""The agent: the process under test of the host runner (see :mod:`reclaim.crosscheck.host`).
It maps memory, accesses it, calls madvise/munmap/fork and creates the userfaultfds on the
monitor's commands, and hands every userfaultfd to the monitor over its Unix socket."""

from __future__ import annotations

import ctypes
import errno as _errno
import faulthandler
import json
import os
import resource
import signal
import socket
import threading

from reclaim.crosscheck.libc import errno_name, libc, new_userfaultfd
from reclaim.crosscheck.scenario import (
    PAGE,
)
from reclaim.crosscheck.uapi import (
    MADV,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    PROT_READ,
    PROT_WRITE,
)


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
