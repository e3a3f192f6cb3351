"""The monitor side of the host runner (see :mod:`reclaim.crosscheck.host`): the connection to
an agent process and its replies, and the reader thread that buffers every ``struct uffd_msg``
as it arrives (the kernel blocks the agent until an event is read)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from reclaim.crosscheck.agent import _get_int
from reclaim.crosscheck.scenario import (
    PAGE,
)
from reclaim.crosscheck.uapi import (
    UFFD_EVENT_FORK,
    UFFD_MSG_SIZE,
    parse_msg,
)

#: How long an access may run before it is judged parked when its thread's wchan is unknown
#: (the kernel parks a faulting thread at once).
ACCESS_WINDOW = 0.2
#: How long an access with no PAGEFAULT read may run before it is judged stuck.
STUCK_WINDOW = 1.0
#: How long a system call of the agent may take.
CALL_TIMEOUT = 5.0


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
