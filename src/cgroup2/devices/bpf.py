"""The ``bpf(2)`` system call through ctypes: load, attach, replace, query, detach.

Only what a device filter needs (``union bpf_attr`` of ``include/uapi/linux/bpf.h``):
``BPF_PROG_LOAD`` of a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program, ``BPF_PROG_ATTACH`` /
``BPF_PROG_DETACH`` on a group's directory fd with attach type ``BPF_CGROUP_DEVICE`` and
``BPF_F_ALLOW_MULTI`` (and ``BPF_F_REPLACE``), ``BPF_PROG_QUERY``,
``BPF_PROG_GET_FD_BY_ID`` and ``BPF_OBJ_GET_INFO_BY_FD``.

Programs loaded here are named :data:`PROG_NAME` (``bpf_prog_info.name``), which is how a
later call finds the program this library attached to a group before and replaces it
instead of stacking one more (the kernel allows 64 programs per group). Programs attached
by others are left alone. Every fd this module opens is closed on every path, except the
two a :class:`AttachedFilter` holds until it is called or closed.

Finding our program and replacing it is two system calls, so two processes setting the
filter of one group at once could both find none (or both find the same one, the second
replace failing with ENOENT) and both attach. Each replace or detach therefore runs under
``flock(LOCK_EX)`` on a descriptor of the group's own directory (:func:`group_lock`;
cgroupfs directories take flock like any file), which every user of this module takes,
in any process: one holds it from the query to the attach, the next one waits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import fcntl
import os
import platform
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import CgroupError, KernelError
from .asm import Program
from .filter import device_filter
from .rules import DeviceRule

if TYPE_CHECKING:
    from .._fs import Dir

__all__ = [
    "PROG_NAME",
    "AttachedFilter",
    "BPFError",
    "ProgInfo",
    "apply_device_rules",
    "attached_programs",
    "detach_device_filters",
    "load_attach_device_filter",
    "load_program",
    "program_instructions",
]

PROG_NAME = "cgroup2_dev"
"""The name (at most 15 characters) of every program this library loads."""

# bpf(2) commands
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2
BPF_F_REPLACE = 4

_CMD_NAMES = {
    BPF_PROG_LOAD: "BPF_PROG_LOAD",
    BPF_PROG_ATTACH: "BPF_PROG_ATTACH",
    BPF_PROG_DETACH: "BPF_PROG_DETACH",
    BPF_PROG_GET_FD_BY_ID: "BPF_PROG_GET_FD_BY_ID",
    BPF_OBJ_GET_INFO_BY_FD: "BPF_OBJ_GET_INFO_BY_FD",
    BPF_PROG_QUERY: "BPF_PROG_QUERY",
}

# __NR_bpf per architecture (platform.machine()).
_NR_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "i386": 357,
    "i686": 357,
    "armv7l": 386,
    "ppc64le": 361,
    "ppc64": 361,
    "s390x": 351,
}

_ATTR_SIZE = 256  # >= sizeof(union bpf_attr) of current kernels; the tail stays zero
_INFO_SIZE = 80  # struct bpf_prog_info up to and including name[16]
_MAX_PROGS = 64  # BPF_CGROUP_MAX_PROGS
_LOG_SIZE = 1 << 22

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


# What an EPERM means, measured on 6.18 and read in kernel/bpf/syscall.c: a CGROUP_DEVICE
# program is a "net admin" program type, so loading it needs CAP_SYS_ADMIN, or CAP_BPF
# with CAP_NET_ADMIN (kernels >= 5.8; CAP_BPF alone is refused). Attaching checks no
# capability on current kernels, nor write access to the group (a user without any
# capability attached a program fd given to it to a group of root's, on 6.18); older
# kernels asked for CAP_NET_ADMIN. On every kernel, a program attached to the group or
# an ancestor without BPF_F_ALLOW_MULTI makes the kernel refuse others.
_LOAD_EPERM = (
    "loading a device program needs CAP_SYS_ADMIN, or CAP_BPF with CAP_NET_ADMIN "
    "on Linux 5.8 and later; without them (inside a delegation), ask root or the "
    "system's systemd (DeviceAllow= on a system unit): the user's systemd manager "
    "cannot load it either"
)
_ATTACH_EPERM = (
    "a program attached to this group or an ancestor without BPF_F_ALLOW_MULTI, by "
    "another tool, forbids any other; older kernels also ask for CAP_NET_ADMIN"
)


class BPFError(KernelError):
    """A ``bpf(2)`` command failed. ``log`` holds the verifier's log for a refused load;
    ``hint`` says what an errno usually means for that command (also in the message)."""

    def __init__(
        self, err: int, what: str, *, op: str, log: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(err, what, op=op)
        self.log = log
        self.hint = hint
        text = str(self.args[0])
        if hint:
            text += f" ({hint})"
        if log:
            text += f"\nverifier log:\n{log.rstrip()}"
        self.args = (text,)


def _nr() -> int:
    machine = platform.machine()
    nr = _NR_BPF.get(machine)
    if nr is None:
        raise CgroupError(f"cgroups: the bpf(2) system call number of {machine!r} is unknown")
    return nr


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    """Run bpf(cmd, attr); return its result or raise OSError (EINTR and EAGAIN retried)."""
    nr = _nr()
    for _ in range(1000):
        r = int(_syscall(nr, cmd, ctypes.addressof(attr), len(attr)))
        if r >= 0:
            return r
        err = ctypes.get_errno()
        if err not in (_errno.EINTR, _errno.EAGAIN):
            raise OSError(err, os.strerror(err))
    raise OSError(_errno.EAGAIN, os.strerror(_errno.EAGAIN))


def _attr(fmt: str, *values: int | bytes) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def _fd_path(fd: int) -> str:
    """The path of a directory fd, for messages."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


# --- the commands ------------------------------------------------------------------------


def _prog_load(
    prog_type: int,
    insns: ctypes.Array[ctypes.c_char],
    count: int,
    lic: ctypes.Array[ctypes.c_char],
    name: str,
    log_level: int = 0,
    log: ctypes.Array[ctypes.c_char] | None = None,
) -> int:
    """``BPF_PROG_LOAD``; the fd or OSError."""
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
    # prog_flags, prog_name[16]
    attr = _attr(
        "=IIQQIIQII16s",
        prog_type,
        count,
        ctypes.addressof(insns),
        ctypes.addressof(lic),
        log_level,
        len(log) if log is not None else 0,
        ctypes.addressof(log) if log is not None else 0,
        0,
        0,
        name.encode(),
    )
    return _bpf(BPF_PROG_LOAD, attr)


def load_program(
    program: Program,
    license: str,
    *,
    name: str = PROG_NAME,
    prog_type: int = BPF_PROG_TYPE_CGROUP_DEVICE,
) -> int:
    """``BPF_PROG_LOAD``: load ``program``; return the new program's fd (close-on-exec).

    When the kernel refuses the program, the load is repeated with the verifier's log on
    and :class:`BPFError` carries the log.
    """
    if not isinstance(program, Program) or not len(program):
        raise CgroupError("cgroups: BPF_PROG_LOAD needs a non-empty Program")
    if not isinstance(license, str) or not license or "\0" in license:
        raise CgroupError(f"cgroups: BPF_PROG_LOAD: invalid license {license!r}: a non-empty str")
    if len(name) > 15 or not all(c.isalnum() or c in "_." for c in name) or not name.isascii():
        raise CgroupError(f"cgroups: invalid eBPF program name {name!r}")
    insns = ctypes.create_string_buffer(program.encode(), len(program) * 8)
    lic = ctypes.create_string_buffer(license.encode())
    what = f"<{len(program)}-instruction program>"

    def load(log_level: int, log: ctypes.Array[ctypes.c_char] | None) -> int:
        return _prog_load(prog_type, insns, len(program), lic, name, log_level, log)

    try:
        return load(0, None)
    except OSError as first:
        err = first.errno or 0
    if err == _errno.EPERM:
        raise BPFError(err, what, op="BPF_PROG_LOAD", hint=_LOAD_EPERM)
    if err == _errno.ENOMEM:
        raise BPFError(err, what, op="BPF_PROG_LOAD")
    log = ctypes.create_string_buffer(_LOG_SIZE)
    try:
        fd = load(1, log)
    except OSError as e:
        text = log.value.decode("utf-8", "replace")
        code = err if e.errno == _errno.ENOSPC else e.errno or err
        raise BPFError(code, what, op="BPF_PROG_LOAD", log=text) from None
    return fd  # loaded the second time (should not happen): keep it


def verifier_stats(program: Program, license: str) -> str:
    """Load ``program`` with the verifier's statistics on (``BPF_LOG_STATS``), unload it,
    and return the statistics (``processed N insns ...``)."""
    insns = ctypes.create_string_buffer(program.encode(), len(program) * 8)
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(1 << 16)
    try:
        fd = _prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns, len(program), lic, PROG_NAME, 4, log)
    except OSError as e:
        err = e.errno or 0
        raise BPFError(
            err,
            f"<{len(program)}-instruction program>",
            op="BPF_PROG_LOAD",
            log=log.value.decode("utf-8", "replace"),
            hint=_LOAD_EPERM if err == _errno.EPERM else None,
        ) from None
    os.close(fd)
    return log.value.decode("utf-8", "replace").strip()


def attach(
    dir_fd: int, prog_fd: int, *, flags: int = BPF_F_ALLOW_MULTI, replace_fd: int = 0
) -> None:
    """``BPF_PROG_ATTACH`` of a ``CGROUP_DEVICE`` program to the group ``dir_fd``."""
    if replace_fd:
        flags |= BPF_F_REPLACE
    # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
    try:
        _bpf(BPF_PROG_ATTACH, _attr("=IIIII", dir_fd, prog_fd, BPF_CGROUP_DEVICE, flags,
                                    replace_fd))
    except OSError as e:
        err = e.errno or 0
        hint = _ATTACH_EPERM if err == _errno.EPERM else None
        raise BPFError(err, _fd_path(dir_fd), op="BPF_PROG_ATTACH", hint=hint) from None


def detach(dir_fd: int, prog_fd: int) -> None:
    """``BPF_PROG_DETACH`` of program ``prog_fd`` from the group ``dir_fd``."""
    try:
        _bpf(BPF_PROG_DETACH, _attr("=III", dir_fd, prog_fd, BPF_CGROUP_DEVICE))
    except OSError as e:
        raise BPFError(e.errno or 0, _fd_path(dir_fd), op="BPF_PROG_DETACH") from None


def query(dir_fd: int) -> list[int]:
    """``BPF_PROG_QUERY``: ids of the device programs attached to the group itself."""
    count = _MAX_PROGS
    while True:
        ids = (ctypes.c_uint32 * count)()
        # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
        attr = _attr("=IIIIQI", dir_fd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), count)
        try:
            _bpf(BPF_PROG_QUERY, attr)
        except OSError as e:
            got = struct.unpack_from("=I", attr, 24)[0]
            if e.errno == _errno.ENOSPC and got > count:
                count = got
                continue
            raise BPFError(e.errno or 0, _fd_path(dir_fd), op="BPF_PROG_QUERY") from None
        got = struct.unpack_from("=I", attr, 24)[0]
        return list(ids[: min(got, count)])


def prog_fd_by_id(prog_id: int) -> int | None:
    """``BPF_PROG_GET_FD_BY_ID``: an fd of program ``prog_id``; ``None`` if it is gone."""
    try:
        return _bpf(BPF_PROG_GET_FD_BY_ID, _attr("=III", prog_id, 0, 0))
    except OSError as e:
        if e.errno == _errno.ENOENT:
            return None
        raise BPFError(e.errno or 0, f"program id {prog_id}", op="BPF_PROG_GET_FD_BY_ID") from None


@dataclass(frozen=True, slots=True)
class ProgInfo:
    """What ``BPF_OBJ_GET_INFO_BY_FD`` says about a program (``struct bpf_prog_info``)."""

    id: int
    type: int
    name: str
    tag: str  # hex of the kernel's 8-byte tag (a hash of the instructions)


def prog_info(prog_fd: int) -> ProgInfo:
    """``BPF_OBJ_GET_INFO_BY_FD`` of a program fd."""
    info = ctypes.create_string_buffer(_INFO_SIZE)
    attr = _attr("=IIQ", prog_fd, _INFO_SIZE, ctypes.addressof(info))
    try:
        _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    except OSError as e:
        raise BPFError(e.errno or 0, f"program fd {prog_fd}", op="BPF_OBJ_GET_INFO_BY_FD") from None
    ptype, pid = struct.unpack_from("=II", info, 0)
    tag = info.raw[8:16].hex()
    name = info.raw[64:80].split(b"\0", 1)[0].decode("ascii", "replace")
    return ProgInfo(pid, ptype, name, tag)


def program_instructions(prog_fd: int) -> bytes:
    """The instructions of a loaded program as the kernel runs them before JIT
    (``xlated_prog_insns`` of ``BPF_OBJ_GET_INFO_BY_FD``), 8 bytes each: what
    :class:`~cgroup2.devices.emulator.ProgramEmulator` runs. Empty when the kernel does
    not show them (``kernel.kptr_restrict``, no ``CAP_SYS_ADMIN``)."""
    info = ctypes.create_string_buffer(_INFO_SIZE)
    attr = _attr("=IIQ", prog_fd, _INFO_SIZE, ctypes.addressof(info))
    try:
        _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
        size = struct.unpack_from("=I", info, 20)[0]  # xlated_prog_len
        if size == 0:
            return b""
        insns = ctypes.create_string_buffer(size)
        info = ctypes.create_string_buffer(_INFO_SIZE)
        struct.pack_into("=I", info, 20, size)
        struct.pack_into("=Q", info, 32, ctypes.addressof(insns))  # xlated_prog_insns
        attr = _attr("=IIQ", prog_fd, _INFO_SIZE, ctypes.addressof(info))
        _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    except OSError as e:
        raise BPFError(e.errno or 0, f"program fd {prog_fd}", op="BPF_OBJ_GET_INFO_BY_FD") from None
    return insns.raw[: min(size, struct.unpack_from("=I", info, 20)[0])]


def attached_programs(dir_fd: int) -> list[ProgInfo]:
    """The device programs attached to the group ``dir_fd`` itself, in attach order."""
    out = []
    for pid in query(dir_fd):
        fd = prog_fd_by_id(pid)
        if fd is None:
            continue  # detached and freed meanwhile
        try:
            out.append(prog_info(fd))
        finally:
            os.close(fd)
    return out


def _ours(dir_fd: int, name: str) -> list[int]:
    """fds of the programs named ``name`` attached to the group (the caller closes them)."""
    fds: list[int] = []
    try:
        for pid in query(dir_fd):
            fd = prog_fd_by_id(pid)
            if fd is None:
                continue
            try:
                mine = prog_info(fd).name == name
            except BaseException:
                os.close(fd)
                raise
            if mine:
                fds.append(fd)
            else:
                os.close(fd)
    except BaseException:
        for fd in fds:
            _close(fd)
        raise
    return fds


@contextlib.contextmanager
def group_lock(dir_fd: int) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on the group ``dir_fd`` for the ``with`` block.

    The lock is taken on a new open file description of the directory (``openat(dir_fd,
    ".", O_RDONLY | O_DIRECTORY)``), not on ``dir_fd`` itself: flock locks belong to the
    open file description, so threads sharing one directory fd exclude each other too.
    Closing that descriptor releases the lock, also when the process dies.
    """
    try:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        raise KernelError(
            e.errno or 0, _fd_path(dir_fd), op="open group directory",
            hint="the BPF device filter attaches to a group's directory",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # EINTR is retried by Python (PEP 475)
        except OSError as e:
            raise KernelError(e.errno or 0, _fd_path(dir_fd), op="flock group directory") from None
        yield
    finally:
        os.close(fd)


def _attach_replacing(dir_fd: int, prog_fd: int, name: str) -> None:
    """Attach ``prog_fd``, replacing the programs named ``name`` attached there before.

    Runs under :func:`group_lock`: between the query and the attach no other caller
    attaches or detaches a program of ours on this group. One program of ours is replaced
    in place (``BPF_F_REPLACE``: no moment without a filter); any more of ours (left by a
    crash between attach and detach) are detached. On kernels without ``BPF_F_REPLACE``
    (before 5.6) the new program is attached first and the old one detached after, so
    that the group is never without a filter.
    """
    with group_lock(dir_fd):
        _attach_replacing_locked(dir_fd, prog_fd, name)


def _attach_replacing_locked(dir_fd: int, prog_fd: int, name: str) -> None:
    old = _ours(dir_fd, name)
    try:
        if not old:
            attach(dir_fd, prog_fd)
            return
        try:
            attach(dir_fd, prog_fd, replace_fd=old[0])
        except BPFError as e:
            if e.errno == _errno.ENOENT:  # detached meanwhile: nothing left to replace
                attach(dir_fd, prog_fd)
            elif e.errno == _errno.EINVAL:  # no BPF_F_REPLACE: attach, then detach
                attach(dir_fd, prog_fd)
                _detach_quietly(dir_fd, old[0])
            else:
                raise
        for fd in old[1:]:
            _detach_quietly(dir_fd, fd)
    finally:
        for fd in old:
            _close(fd)


def _detach_quietly(dir_fd: int, prog_fd: int) -> None:
    """Detach, accepting that the program is already gone from the group."""
    try:
        detach(dir_fd, prog_fd)
    except BPFError as e:
        if e.errno != _errno.ENOENT:
            raise


def detach_device_filters(dir_fd: int, *, name: str = PROG_NAME) -> int:
    """Detach every program of this library from the group ``dir_fd``; return how many."""
    with group_lock(dir_fd):
        fds = _ours(dir_fd, name)
        try:
            for fd in fds:
                _detach_quietly(dir_fd, fd)
        finally:
            for fd in fds:
                _close(fd)
    return len(fds)


class AttachedFilter:
    """What :func:`load_attach_device_filter` returns: call it to detach and close.

    It holds the program's fd and a duplicate of the group's directory fd until it is
    called (or :meth:`close`\\ d, which leaves the program attached). Calling it twice is
    harmless; a program already detached (replaced by a later filter, or its group
    removed) is not an error.
    """

    __slots__ = ("_dir_fd", "_prog_fd", "prog_id")

    def __init__(self, dir_fd: int, prog_fd: int, prog_id: int) -> None:
        self._dir_fd = dir_fd
        self._prog_fd = prog_fd
        self.prog_id = prog_id

    def __call__(self) -> None:
        if self._prog_fd < 0:
            return
        try:
            _detach_quietly(self._dir_fd, self._prog_fd)
        finally:
            self.close()

    def close(self) -> None:
        """Close the fds without detaching: the program stays attached to the group."""
        for attr in ("_prog_fd", "_dir_fd"):
            fd = getattr(self, attr, -1)
            if fd >= 0:
                setattr(self, attr, -1)
                _close(fd)

    def __del__(self) -> None:
        self.close()


def load_attach_device_filter(program: Program, license: str, dir_fd: int) -> Callable[[], None]:
    """Load ``program`` and attach it to the group whose directory fd is ``dir_fd``.

    ``BPF_F_ALLOW_MULTI``; when this library attached a program there before, that one is
    replaced (``BPF_F_REPLACE``). Returns a callable that detaches the program and closes
    the fds held (an :class:`AttachedFilter`).
    """
    if isinstance(dir_fd, bool) or not isinstance(dir_fd, int) or dir_fd < 0:
        raise CgroupError(f"cgroups: invalid group directory fd {dir_fd!r}")
    try:
        os.fstat(dir_fd)
    except OSError as e:
        raise KernelError(e.errno or 0, f"fd {dir_fd}", op="fstat group directory") from None
    prog_fd = load_program(program, license)
    dup = -1
    try:
        prog_id = prog_info(prog_fd).id
        dup = os.dup(dir_fd)  # the caller may close dir_fd before detaching
        _attach_replacing(dup, prog_fd, PROG_NAME)
    except BaseException:
        _close(prog_fd)
        if dup >= 0:
            _close(dup)
        raise
    return AttachedFilter(dup, prog_fd, prog_id)


def apply_device_rules(d: Dir, rules: Sequence[DeviceRule]) -> None:
    """Make ``rules`` the device filter of group ``d``, replacing the one set before.

    Compiles (invalid rules raise before anything is loaded), loads, attaches to ``d.fd``
    replacing this library's previous program there (never stacking), and closes every
    fd: the attachment keeps the program alive until it is replaced, detached or the group
    is removed.
    """
    program, license = device_filter(rules)
    prog_fd = load_program(program, license)
    try:
        _attach_replacing(d.fd, prog_fd, PROG_NAME)
    finally:
        os.close(prog_fd)
