"""unit: the bpf(2) binding (cgroup2.devices.bpf) against a stand-in for the system call.

The ``syscall`` function of libc is replaced by :class:`FakeBPF`, which reads each
``union bpf_attr`` at the offsets of ``include/uapi/linux/bpf.h`` and answers as the kernel
does (``kernel/bpf/syscall.c``, ``kernel/bpf/cgroup.c``): program fds (real fds of
``/dev/null``), the programs attached to a group (keyed by the directory's inode),
``ENOSPC`` with the real count from ``BPF_PROG_QUERY``, ``BPF_F_REPLACE``, the verifier's
log written into ``log_buf``. What the kernel itself does with a program (verifying,
enforcing) is the host tier's proof (``tests/host/test_devices.py``); this tier checks
what the library puts into the attributes and how it reads the answers and errors.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from cgroup2 import CgroupError, DeviceRule
from cgroup2.devices import bpf, device_filter
from cgroup2.errors import KernelError

# include/uapi/linux/bpf.h
ATTR_SIZE = 256
PROG_LOAD = "=IIQQIIQII16s"  # prog_type .. prog_name[16], 64 bytes
CGROUP_DEVICE_PROG = 15  # BPF_PROG_TYPE_CGROUP_DEVICE
CGROUP_DEVICE_ATTACH = 6  # BPF_CGROUP_DEVICE
ALLOW_MULTI, REPLACE = 2, 4
# __NR_bpf, from each architecture's syscall table
NR_BPF = {
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


@dataclass
class Prog:
    id: int
    type: int
    name: str
    insns: bytes
    license: str


@dataclass
class FakeBPF:
    """Stands for ``syscall(__NR_bpf, cmd, attr, size)``."""

    nr: int
    calls: list[tuple[int, bytes]] = field(default_factory=list)
    progs: dict[int, Prog] = field(default_factory=dict)
    fds: dict[int, int] = field(default_factory=dict)  # fd -> program id
    groups: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # ino -> (id, flags)
    errors: dict[int, list[int]] = field(default_factory=dict)  # cmd -> errnos, in turn
    log: str = "0: (b7) r0 = 1\nR0 !read_ok\n"
    refuse: bool = False  # every load fails with EACCES (and writes the log)
    xlated: bytes | None = None
    info_in: list[tuple[int, int]] = field(default_factory=list)  # xlated_prog_len, _insns
    flocked: list[str] = field(default_factory=list)
    next_id: int = 100

    def __call__(self, nr: int, cmd: int, addr: int, size: int) -> int:
        assert nr == self.nr and size == ATTR_SIZE
        attr = ctypes.string_at(addr, size)
        self.calls.append((cmd, attr))
        queue = self.errors.get(cmd)
        if queue:
            err = queue.pop(0)
            if err:
                return self._fail(err)
        handler = {
            5: self._load,
            8: self._attach,
            9: self._detach,
            13: self._get_fd,
            15: self._info,
            16: self._query,
        }[cmd]
        return handler(addr, attr)

    @staticmethod
    def _fail(err: int) -> int:
        ctypes.set_errno(err)
        return -1

    def _new_fd(self, prog_id: int) -> int:
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.fds[fd] = prog_id
        return fd

    def _prog(self, fd: int) -> int:
        assert os.fstat(fd), fd  # a live descriptor
        return self.fds[fd]

    def _load(self, addr: int, attr: bytes) -> int:
        ptype, cnt, insns, lic, level, log_size, log_buf, kver, flags, name = struct.unpack_from(
            PROG_LOAD, attr
        )
        assert attr[64:] == bytes(ATTR_SIZE - 64)
        assert (kver, flags) == (0, 0)
        if (log_buf == 0) != (log_size == 0) or (level and not log_buf):
            return self._fail(errno.EINVAL)  # kernel/bpf/log.c bpf_vlog_init()
        if self.refuse:
            if level and log_size:
                text = self.log.encode()[: log_size - 1]
                ctypes.memmove(log_buf, text + b"\0", len(text) + 1)
            return self._fail(errno.EACCES)
        self.next_id += 1
        self.progs[self.next_id] = Prog(
            self.next_id,
            ptype,
            name.rstrip(b"\0").decode(),
            ctypes.string_at(insns, cnt * 8),
            ctypes.string_at(lic).decode(),
        )
        if level and log_size:
            ctypes.memmove(log_buf, b"processed 9 insns\0", 18)
        return self._new_fd(self.next_id)

    def _group(self, fd: int) -> list[tuple[int, int]]:
        return self.groups.setdefault(os.fstat(fd).st_ino, [])

    def _attach(self, addr: int, attr: bytes) -> int:
        target, prog_fd, atype, flags, replace_fd = struct.unpack_from("=IIIII", attr)
        assert atype == CGROUP_DEVICE_ATTACH and flags & ALLOW_MULTI
        assert attr[20:] == bytes(ATTR_SIZE - 20)
        group = self._group(target)
        new = self._prog(prog_fd)
        if flags & REPLACE:
            old = self._prog(replace_fd)
            for i, (pid, _) in enumerate(group):
                if pid == old:
                    group[i] = (new, flags & ~REPLACE)
                    return 0
            return self._fail(errno.ENOENT)
        assert replace_fd == 0
        group.append((new, flags))
        return 0

    def _detach(self, addr: int, attr: bytes) -> int:
        target, prog_fd, atype = struct.unpack_from("=III", attr)
        assert atype == CGROUP_DEVICE_ATTACH and attr[12:] == bytes(ATTR_SIZE - 12)
        group = self._group(target)
        pid = self._prog(prog_fd)
        for entry in group:
            if entry[0] == pid:
                group.remove(entry)
                return 0
        return self._fail(errno.ENOENT)

    def _query(self, addr: int, attr: bytes) -> int:
        target, atype, qflags, aflags, ids, cnt = struct.unpack_from("=IIIIQI", attr)
        assert (atype, qflags, aflags) == (CGROUP_DEVICE_ATTACH, 0, 0)
        group = [pid for pid, _ in self._group(target)]
        ctypes.memmove(addr + 24, struct.pack("=I", len(group)), 4)  # prog_cnt
        n = min(cnt, len(group))
        ctypes.memmove(ids, struct.pack(f"={n}I", *group[:n]), 4 * n)
        return self._fail(errno.ENOSPC) if cnt < len(group) else 0

    def _get_fd(self, addr: int, attr: bytes) -> int:
        pid, next_id, flags = struct.unpack_from("=III", attr)
        assert (next_id, flags) == (0, 0)
        if pid not in self.progs:
            return self._fail(errno.ENOENT)
        return self._new_fd(pid)

    def _info(self, addr: int, attr: bytes) -> int:
        fd, info_len, info = struct.unpack_from("=IIQ", attr)
        assert info_len == 80  # struct bpf_prog_info up to and including name[16]
        prog = self.progs[self._prog(fd)]
        given_len, given_ptr = (
            struct.unpack_from("=I", ctypes.string_at(info + 20, 4))[0],
            struct.unpack_from("=Q", ctypes.string_at(info + 32, 8))[0],
        )
        self.info_in.append((given_len, given_ptr))
        if given_ptr >= 2**47:  # not a user-space address
            return self._fail(errno.EFAULT)
        xlated = prog.insns if self.xlated is None else self.xlated
        if given_ptr:
            ctypes.memmove(given_ptr, xlated, min(given_len, len(xlated)))
        out = bytearray(80)
        struct.pack_into("=II", out, 0, prog.type, prog.id)
        out[8:16] = bytes(range(1, 9))  # tag
        struct.pack_into("=I", out, 20, len(xlated))  # xlated_prog_len
        struct.pack_into("=Q", out, 32, given_ptr)
        out[64 : 64 + len(prog.name)] = prog.name.encode()
        ctypes.memmove(info, bytes(out), 80)
        return 0

    def attached(self, fd: int) -> list[str]:
        return [self.progs[pid].name for pid, _ in self._group(fd)]

    def cmds(self) -> list[int]:
        return [c for c, _ in self.calls]


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


@pytest.fixture
def kern(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBPF]:
    fake = FakeBPF(nr=bpf._nr())
    monkeypatch.setattr(bpf, "_syscall", fake)
    before = open_fds()
    yield fake
    leaked = {}
    for fd in open_fds() - before:
        with contextlib.suppress(OSError):
            leaked[fd] = os.readlink(f"/proc/self/fd/{fd}")
    for fd in leaked:
        os.close(fd)
    assert not leaked, f"fds left open: {leaked}"


@pytest.fixture
def group(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def program(rules: list[DeviceRule] | None = None) -> bpf.Program:
    return device_filter(rules if rules is not None else [DeviceRule(True, "c", 1, 3, "rw")])[0]


def foreign(kern: FakeBPF, group: int, name: str = "other_tool") -> int:
    """Attach a program loaded by someone else; return its id."""
    fd = bpf.load_program(program([]), "GPL", name=name)
    bpf.attach(group, fd)
    pid = kern.fds[fd]
    os.close(fd)
    return pid


# --- the system call itself --------------------------------------------------------------


@pytest.mark.parametrize(("machine", "nr"), sorted(NR_BPF.items()))
def test_syscall_number_per_architecture(
    monkeypatch: pytest.MonkeyPatch, machine: str, nr: int
) -> None:
    monkeypatch.setattr(bpf.platform, "machine", lambda: machine)
    assert bpf._nr() == nr


def test_unknown_architecture_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bpf.platform, "machine", lambda: "vax")
    with pytest.raises(CgroupError, match=r"system call number of 'vax' is unknown"):
        bpf._nr()


def test_eintr_and_eagain_are_retried(kern: FakeBPF) -> None:
    kern.errors[13] = [errno.EINTR, errno.EAGAIN, errno.EINTR]
    fd = bpf.load_program(program(), "Apache")
    pid = kern.fds[fd]
    got = bpf.prog_fd_by_id(pid)
    assert got is not None and kern.fds[got] == pid
    assert kern.cmds() == [5, 13, 13, 13, 13]
    os.close(fd)
    os.close(got)


def test_eagain_forever_gives_up_after_1000_tries(kern: FakeBPF) -> None:
    kern.errors[13] = [errno.EAGAIN] * 1000 + [0]
    with pytest.raises(OSError) as e:
        bpf._bpf(13, bpf._attr("=III", 1, 0, 0))
    assert e.value.errno == errno.EAGAIN and e.value.strerror == os.strerror(errno.EAGAIN)
    assert len(kern.calls) == 1000


def test_other_errors_raise_at_once(kern: FakeBPF) -> None:
    kern.errors[13] = [errno.EBADF]
    with pytest.raises(OSError) as e:
        bpf._bpf(13, bpf._attr("=III", 1, 0, 0))
    assert e.value.errno == errno.EBADF and e.value.strerror == os.strerror(errno.EBADF)
    assert len(kern.calls) == 1


def test_attr_is_256_zeroed_bytes_with_the_fields_first() -> None:
    a = bpf._attr("=II", 7, 9)
    assert len(a) == ATTR_SIZE and a.raw == struct.pack("=II", 7, 9) + bytes(248)


# --- BPF_PROG_LOAD -----------------------------------------------------------------------


def test_load_fills_the_prog_load_attributes(kern: FakeBPF) -> None:
    prog = program()
    fd = bpf.load_program(prog, "Apache")
    ((cmd, attr),) = kern.calls
    assert cmd == 5  # BPF_PROG_LOAD
    ptype, cnt, insns, lic, level, log_size, log_buf, kver, flags, name = struct.unpack_from(
        PROG_LOAD, attr
    )
    assert (ptype, cnt, level, log_size, log_buf, kver, flags) == (15, len(prog), 0, 0, 0, 0, 0)
    assert insns != 0 and lic != 0  # addresses of the instructions and the license
    assert name == b"cgroup2_dev" + bytes(5)
    loaded = kern.progs[kern.fds[fd]]
    assert loaded.insns == prog.encode() and loaded.license == "Apache"
    assert (loaded.type, loaded.name) == (CGROUP_DEVICE_PROG, bpf.PROG_NAME)
    assert os.get_inheritable(fd) is False
    os.close(fd)


def test_load_other_type_and_name(kern: FakeBPF) -> None:
    fd = bpf.load_program(program(), "GPL", name="a.b_15_chars_xy", prog_type=1)
    loaded = kern.progs[kern.fds[fd]]
    assert (loaded.type, loaded.name, loaded.license) == (1, "a.b_15_chars_xy", "GPL")
    os.close(fd)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((bpf.Program(()), "Apache"), "BPF_PROG_LOAD needs a non-empty Program"),
        (("not a program", "Apache"), "BPF_PROG_LOAD needs a non-empty Program"),
        ((None, ""), "BPF_PROG_LOAD needs a non-empty Program"),
    ],
)
def test_load_refuses_no_program(args: tuple[object, str], message: str) -> None:
    with pytest.raises(CgroupError, match=message):
        bpf.load_program(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("lic", ["", "GPL\0x", b"GPL", None])
def test_load_refuses_bad_license(kern: FakeBPF, lic: object) -> None:
    with pytest.raises(CgroupError, match=r"BPF_PROG_LOAD: invalid license .*: a non-empty str"):
        bpf.load_program(program(), lic)  # type: ignore[arg-type]
    assert kern.calls == []


@pytest.mark.parametrize("name", ["x" * 16, "a-b", "a b", "é", "ab\0"])
def test_load_refuses_bad_names(kern: FakeBPF, name: str) -> None:
    with pytest.raises(CgroupError, match=r"invalid eBPF program name"):
        bpf.load_program(program(), "GPL", name=name)
    assert kern.calls == []


@pytest.mark.parametrize("name", ["x" * 15, "a.b", "A_9", ""])
def test_load_accepts_names(kern: FakeBPF, name: str) -> None:
    os.close(bpf.load_program(program(), "GPL", name=name))


def test_refused_load_is_retried_with_the_verifier_log(kern: FakeBPF) -> None:
    kern.refuse = True
    prog = program()
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(prog, "Apache")
    assert kern.cmds() == [5, 5]
    first = struct.unpack_from(PROG_LOAD, kern.calls[0][1])
    second = struct.unpack_from(PROG_LOAD, kern.calls[1][1])
    assert first[4:7] == (0, 0, 0)
    assert second[4] == 1 and second[5] == 1 << 22 and second[6] != 0  # level, size, buffer
    assert first[:4:2] == second[:4:2] and first[9] == second[9]
    err = e.value
    assert err.errno == errno.EACCES and err.log == kern.log and err.hint is None
    assert isinstance(err, KernelError) and isinstance(err, OSError)
    assert str(err) == (
        f"cgroups: BPF_PROG_LOAD <{len(prog)}-instruction program>: [Errno 13 EACCES] "
        f"{os.strerror(errno.EACCES)}\nverifier log:\n{kern.log.rstrip()}"
    )


def test_second_load_enospc_keeps_the_first_errno(kern: FakeBPF) -> None:
    kern.errors[5] = [errno.EINVAL, errno.ENOSPC]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(program(), "Apache")
    assert e.value.errno == errno.EINVAL and e.value.log == ""


def test_second_load_other_errno_wins(kern: FakeBPF) -> None:
    kern.errors[5] = [errno.EINVAL, errno.E2BIG]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(program(), "Apache")
    assert e.value.errno == errno.E2BIG


def test_second_load_succeeding_keeps_the_fd(kern: FakeBPF) -> None:
    kern.errors[5] = [errno.EINVAL]
    fd = bpf.load_program(program(), "Apache")
    assert kern.cmds() == [5, 5] and fd in kern.fds
    os.close(fd)


def test_load_eperm_is_not_retried_and_says_which_capabilities(kern: FakeBPF) -> None:
    kern.errors[5] = [errno.EPERM]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(program(), "Apache")
    assert kern.cmds() == [5]
    assert e.value.errno == errno.EPERM and e.value.hint == bpf._LOAD_EPERM
    assert e.value.log is None
    assert str(e.value).endswith(f"({bpf._LOAD_EPERM})")
    assert "CAP_SYS_ADMIN, or CAP_BPF with CAP_NET_ADMIN" in str(e.value)


def test_load_enomem_is_not_retried(kern: FakeBPF) -> None:
    kern.errors[5] = [errno.ENOMEM]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(program(), "Apache")
    assert kern.cmds() == [5]
    assert e.value.errno == errno.ENOMEM and e.value.hint is None and e.value.log is None
    assert "verifier log" not in str(e.value) and "(" not in str(e.value).split("]")[1]


def test_verifier_stats_loads_with_log_level_4_and_unloads(kern: FakeBPF) -> None:
    prog = program()
    assert bpf.verifier_stats(prog, "Apache") == "processed 9 insns"
    ((cmd, attr),) = kern.calls
    f = struct.unpack_from(PROG_LOAD, attr)
    assert (cmd, f[0], f[1], f[4], f[5]) == (5, 15, len(prog), 4, 1 << 16)
    assert f[9] == b"cgroup2_dev" + bytes(5)
    assert kern.progs[101].insns == prog.encode() and kern.progs[101].license == "Apache"


def test_verifier_stats_refused_carries_the_log(kern: FakeBPF) -> None:
    kern.refuse = True
    with pytest.raises(bpf.BPFError) as e:
        bpf.verifier_stats(program(), "Apache")
    assert e.value.errno == errno.EACCES and e.value.log == kern.log and e.value.hint is None
    assert "BPF_PROG_LOAD <" in str(e.value)
    kern.refuse = False
    kern.errors[5] = [errno.EPERM]
    with pytest.raises(bpf.BPFError) as e:
        bpf.verifier_stats(program(), "Apache")
    assert e.value.hint == bpf._LOAD_EPERM


# --- attach, detach, query, info ---------------------------------------------------------


def test_attach_and_detach_attributes(kern: FakeBPF, group: int) -> None:
    fd = bpf.load_program(program(), "Apache")
    bpf.attach(group, fd)
    assert struct.unpack_from("=IIIII", kern.calls[-1][1]) == (group, fd, 6, ALLOW_MULTI, 0)
    assert kern.calls[-1][0] == 8
    bpf.attach(group, fd, replace_fd=fd)
    assert struct.unpack_from("=IIIII", kern.calls[-1][1]) == (group, fd, 6, 6, fd)
    bpf.attach(group, fd, flags=ALLOW_MULTI | 1)
    assert struct.unpack_from("=IIIII", kern.calls[-1][1])[3] == 3
    bpf.detach(group, fd)
    assert kern.calls[-1][0] == 9
    assert struct.unpack_from("=III", kern.calls[-1][1]) == (group, fd, 6)
    os.close(fd)


def test_attach_error_names_the_group_and_the_hint(kern: FakeBPF, group: int) -> None:
    path = os.readlink(f"/proc/self/fd/{group}")
    kern.errors[8] = [errno.EPERM, errno.EBADF]
    with pytest.raises(bpf.BPFError) as e:
        bpf.attach(group, 99)
    assert e.value.errno == errno.EPERM and e.value.hint == bpf._ATTACH_EPERM
    assert str(e.value) == (
        f"cgroups: BPF_PROG_ATTACH {path}: [Errno 1 EPERM] {os.strerror(1)} ({bpf._ATTACH_EPERM})"
    )
    with pytest.raises(bpf.BPFError) as e:
        bpf.attach(group, 99)
    assert e.value.errno == errno.EBADF and e.value.hint is None
    assert str(e.value).startswith(f"cgroups: BPF_PROG_ATTACH {path}: [Errno 9 EBADF]")


def test_errors_of_detach_query_get_fd_info(kern: FakeBPF, group: int) -> None:
    path = os.readlink(f"/proc/self/fd/{group}")
    kern.errors = {9: [errno.EBADF], 16: [errno.EINVAL], 13: [errno.EPERM], 15: [errno.EFAULT]}
    with pytest.raises(bpf.BPFError, match=rf"^cgroups: BPF_PROG_DETACH {path}: \[Errno 9 "):
        bpf.detach(group, 99)
    with pytest.raises(bpf.BPFError, match=rf"^cgroups: BPF_PROG_QUERY {path}: \[Errno 22 "):
        bpf.query(group)
    with pytest.raises(
        bpf.BPFError, match=r"^cgroups: BPF_PROG_GET_FD_BY_ID program id 7: \[Errno 1 "
    ):
        bpf.prog_fd_by_id(7)
    with pytest.raises(
        bpf.BPFError, match=r"^cgroups: BPF_OBJ_GET_INFO_BY_FD program fd 8: \[Errno 14 "
    ):
        bpf.prog_info(8)
    kern.errors[15] = [errno.EFAULT]
    with pytest.raises(
        bpf.BPFError, match=r"^cgroups: BPF_OBJ_GET_INFO_BY_FD program fd 8: \[Errno 14 "
    ):
        bpf.program_instructions(8)


def test_fd_path_of_a_closed_fd() -> None:
    fd = os.open("/", os.O_RDONLY)
    os.close(fd)
    assert bpf._fd_path(fd) == f"fd {fd}"
    assert bpf._fd_path(0) == os.readlink("/proc/self/fd/0")


def test_query_attributes_and_growing_past_64(kern: FakeBPF, group: int) -> None:
    assert bpf.query(group) == []
    target, atype, qflags, aflags, ids, cnt = struct.unpack_from("=IIIIQI", kern.calls[-1][1])
    assert (kern.calls[-1][0], target, atype, qflags, aflags, cnt) == (16, group, 6, 0, 0, 64)
    assert ids != 0
    pids = [foreign(kern, group, f"p{i}") for i in range(70)]
    kern.calls.clear()
    assert bpf.query(group) == pids
    assert [struct.unpack_from("=I", a, 24)[0] for _, a in kern.calls] == [64, 70]


def test_query_error_other_than_growth(kern: FakeBPF, group: int) -> None:
    # ENOSPC with a count that does not grow is an error, not a loop
    kern.errors[16] = [errno.ENOSPC]
    with pytest.raises(bpf.BPFError) as e:
        bpf.query(group)
    assert e.value.errno == errno.ENOSPC


def test_prog_fd_by_id_gone_is_none(kern: FakeBPF) -> None:
    assert bpf.prog_fd_by_id(12345) is None
    assert struct.unpack_from("=III", kern.calls[0][1]) == (12345, 0, 0)


def test_prog_info_reads_bpf_prog_info(kern: FakeBPF) -> None:
    fd = bpf.load_program(program(), "GPL", name="abc")
    kern.calls.clear()
    info = bpf.prog_info(fd)
    assert info == bpf.ProgInfo(kern.fds[fd], CGROUP_DEVICE_PROG, "abc", "0102030405060708")
    pfd, size, ptr = struct.unpack_from("=IIQ", kern.calls[0][1])
    assert (kern.calls[0][0], pfd, size) == (15, fd, 80) and ptr != 0
    os.close(fd)


def test_prog_info_name_of_16_characters(kern: FakeBPF) -> None:
    fd = bpf.load_program(program(), "GPL", name="x" * 15)
    kern.progs[kern.fds[fd]].name = "y" * 16  # name[16] without a NUL
    assert bpf.prog_info(fd).name == "y" * 16
    os.close(fd)


def test_program_instructions_two_calls(kern: FakeBPF) -> None:
    prog = program()
    fd = bpf.load_program(prog, "Apache")
    kern.calls.clear()
    assert bpf.program_instructions(fd) == prog.encode()
    assert kern.cmds() == [15, 15]
    # the second call asks for xlated_prog_len bytes at xlated_prog_insns
    pfd, size, ptr = struct.unpack_from("=IIQ", kern.calls[1][1])
    assert (pfd, size) == (fd, 80) and ptr != 0
    # the second call asks for exactly the length the first one gave, at a buffer
    assert kern.info_in == [(0, 0), (len(prog.encode()), kern.info_in[1][1])]
    assert kern.info_in[1][1] != 0
    kern.xlated = b""
    kern.calls.clear()
    assert bpf.program_instructions(fd) == b""
    assert kern.cmds() == [15]  # nothing to fetch: one call
    kern.xlated = bytes(range(16))
    assert bpf.program_instructions(fd) == bytes(range(16))
    os.close(fd)


def test_program_instructions_shrinking_between_calls(
    kern: FakeBPF, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = bpf.load_program(program(), "Apache")
    real = kern._info
    sizes = iter([24, 16])

    def info(addr: int, attr: bytes) -> int:
        kern.xlated = bytes(range(1, 1 + next(sizes)))
        return real(addr, attr)

    monkeypatch.setattr(kern, "_info", info)
    assert bpf.program_instructions(fd) == bytes(range(1, 17))
    os.close(fd)


# --- replacing our program, leaving others' alone ----------------------------------------


def test_load_attach_then_replace_in_place(kern: FakeBPF, group: int) -> None:
    other = foreign(kern, group)
    first = bpf.load_attach_device_filter(program(), "Apache", group)
    assert isinstance(first, bpf.AttachedFilter)
    assert first.prog_id == max(kern.progs)
    attach = [a for c, a in kern.calls if c == 8][-1]
    assert struct.unpack_from("=IIIII", attach)[2:] == (6, ALLOW_MULTI, 0)
    assert kern.attached(group) == ["other_tool", "cgroup2_dev"]
    second = bpf.load_attach_device_filter(program([]), "Apache", group)
    attach = [a for c, a in kern.calls if c == 8][-1]
    assert struct.unpack_from("=IIIII", attach)[3] == ALLOW_MULTI | REPLACE
    ids = [pid for pid, _ in kern._group(group)]
    assert ids == [other, second.prog_id]  # replaced where it was
    first()  # already replaced: no error
    assert [pid for pid, _ in kern._group(group)] == [other, second.prog_id]
    second()
    second()  # twice is harmless
    assert kern.attached(group) == ["other_tool"]
    assert 9 in kern.cmds()


def test_attached_filter_close_leaves_it_attached(kern: FakeBPF, group: int) -> None:
    f = bpf.load_attach_device_filter(program(), "Apache", group)
    f.close()
    f()  # closed: nothing to detach with
    assert kern.attached(group) == ["cgroup2_dev"]
    assert 9 not in kern.cmds()


def test_attached_filter_holds_a_duplicate_of_the_directory(kern: FakeBPF, tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    f = bpf.load_attach_device_filter(program(), "Apache", fd)
    os.close(fd)  # the caller may close its fd before detaching
    f()
    assert kern.groups[os.stat(tmp_path).st_ino] == []


def test_extra_programs_of_ours_are_detached(kern: FakeBPF, group: int) -> None:
    foreign(kern, group)
    for _ in range(2):  # left by a crash between attach and detach
        fd = bpf.load_program(program(), "Apache")
        bpf.attach(group, fd)
        os.close(fd)
    bpf.apply_device_rules(SimpleNamespace(fd=group), [DeviceRule(False)])  # type: ignore[arg-type]
    assert kern.attached(group) == ["other_tool", "cgroup2_dev"]
    last = max(kern.progs)
    assert [pid for pid, _ in kern._group(group)][1] == last
    assert kern.progs[last].insns == device_filter([DeviceRule(False)])[0].encode()


def test_replace_enoent_attaches_anew(kern: FakeBPF, group: int) -> None:
    bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    kern.errors[8] = [errno.ENOENT]
    bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    attaches = [struct.unpack_from("=IIIII", a)[3:] for c, a in kern.calls if c == 8]
    assert attaches[1][0] == ALLOW_MULTI | REPLACE and attaches[2] == (ALLOW_MULTI, 0)
    assert kern.attached(group) == ["cgroup2_dev", "cgroup2_dev"]


def test_no_replace_flag_attaches_then_detaches(kern: FakeBPF, group: int) -> None:
    bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    old = max(kern.progs)
    kern.errors[8] = [errno.EINVAL]  # kernel before 5.6
    bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    assert kern.cmds()[-2:] == [8, 9]
    detached = struct.unpack_from("=III", kern.calls[-1][1])
    assert kern.fds[detached[1]] == old
    assert [pid for pid, _ in kern._group(group)] == [max(kern.progs)]


def test_replace_other_error_is_raised(kern: FakeBPF, group: int) -> None:
    bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    kern.errors[8] = [errno.EBUSY]
    with pytest.raises(bpf.BPFError) as e:
        bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    assert e.value.errno == errno.EBUSY
    assert len(kern._group(group)) == 1


def test_detach_quietly_accepts_only_enoent(kern: FakeBPF, group: int) -> None:
    kern.errors[9] = [errno.ENOENT, errno.EBADF]
    bpf._detach_quietly(group, 5)
    with pytest.raises(bpf.BPFError):
        bpf._detach_quietly(group, 5)


def test_detach_device_filters_counts_ours(kern: FakeBPF, group: int) -> None:
    foreign(kern, group)
    assert bpf.detach_device_filters(group) == 0
    for _ in range(3):
        fd = bpf.load_program(program(), "Apache")
        bpf.attach(group, fd)
        os.close(fd)
    assert bpf.detach_device_filters(group, name="other_tool") == 1
    assert bpf.detach_device_filters(group) == 3
    assert kern._group(group) == []


def test_attached_programs_in_order_skipping_freed(kern: FakeBPF, group: int) -> None:
    a = foreign(kern, group, "a")
    b = foreign(kern, group, "b")
    c = foreign(kern, group, "c")
    del kern.progs[b]  # detached and freed between the query and the get-fd
    got = bpf.attached_programs(group)
    assert [(p.id, p.name, p.type) for p in got] == [(a, "a", 15), (c, "c", 15)]


def test_ours_closes_fds_when_info_fails(kern: FakeBPF, group: int) -> None:
    foreign(kern, group, "cgroup2_dev")
    foreign(kern, group, "x")
    kern.errors[15] = [0, errno.EFAULT]  # the second program's info fails
    with pytest.raises(bpf.BPFError):
        bpf._ours(group, "cgroup2_dev")
    # the fixture checks no fd is left open


def test_load_attach_refuses_bad_fds(kern: FakeBPF) -> None:
    for bad in (-1, True, "3", None):
        with pytest.raises(CgroupError, match=r"invalid group directory fd"):
            bpf.load_attach_device_filter(program(), "Apache", bad)  # type: ignore[arg-type]
    fd = os.open("/", os.O_RDONLY)
    os.close(fd)
    with pytest.raises(KernelError) as e:
        bpf.load_attach_device_filter(program(), "Apache", fd)
    assert e.value.errno == errno.EBADF and f"fstat group directory fd {fd}:" in str(e.value)
    assert kern.calls == []


def test_load_attach_failure_closes_everything(kern: FakeBPF, group: int) -> None:
    kern.errors[8] = [errno.EPERM]
    with pytest.raises(bpf.BPFError):
        bpf.load_attach_device_filter(program(), "Apache", group)
    kern.errors[15] = [errno.EFAULT]
    with pytest.raises(bpf.BPFError):
        bpf.load_attach_device_filter(program(), "Apache", group)


def test_apply_closes_the_program_fd(kern: FakeBPF, group: int) -> None:
    bpf.apply_device_rules(SimpleNamespace(fd=group), [DeviceRule(True)])  # type: ignore[arg-type]
    assert kern.attached(group) == ["cgroup2_dev"]
    with pytest.raises(CgroupError, match="invalid device rule"):
        bpf.apply_device_rules(SimpleNamespace(fd=group), ["c 1:3 rw"])  # type: ignore[list-item]
    assert kern.cmds().count(5) == 1


def test_group_lock_is_a_new_description_of_the_directory(group: int, tmp_path: Path) -> None:
    import fcntl

    with bpf.group_lock(group):
        other = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # not the caller's own open file description either (flock on that one
            # would succeed: a lock is held by its description)
            with pytest.raises(BlockingIOError):
                fcntl.flock(group, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    other = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
    os.close(other)


def test_group_lock_of_a_closed_fd() -> None:
    fd = os.open("/", os.O_RDONLY)
    os.close(fd)
    with pytest.raises(KernelError) as e, bpf.group_lock(fd):
        pass
    assert e.value.errno == errno.EBADF
    assert str(e.value).startswith(f"cgroups: open group directory fd {fd}:")
    assert "attaches to a group's directory" in str(e.value)


# --- survivors of scripts/mutation --------------------------------------------------------


def test_load_refusal_messages_word_for_word(kern: FakeBPF) -> None:
    prog = program()
    what = f"<{len(prog)}-instruction program>"
    kern.errors[5] = [errno.EPERM]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(prog, "Apache")
    assert str(e.value) == (
        f"cgroups: BPF_PROG_LOAD {what}: [Errno 1 EPERM] {os.strerror(1)} ({bpf._LOAD_EPERM})"
    )
    assert (e.value.filename, e.value.op) == (what, "BPF_PROG_LOAD")
    kern.errors[5] = [errno.ENOMEM]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(prog, "Apache")
    assert str(e.value) == (
        f"cgroups: BPF_PROG_LOAD {what}: [Errno 12 ENOMEM] {os.strerror(errno.ENOMEM)}"
    )
    with pytest.raises(CgroupError) as e2:
        bpf.load_program(bpf.Program(()), "Apache")
    assert str(e2.value) == "cgroups: BPF_PROG_LOAD needs a non-empty Program"


def test_logs_that_are_not_utf8(kern: FakeBPF) -> None:
    kern.refuse = True
    real = kern._load

    def load(addr: int, attr: bytes) -> int:
        f = struct.unpack_from(PROG_LOAD, attr)
        if f[6]:
            ctypes.memmove(f[6], b"bad \xff byte\0", 13)
            return FakeBPF._fail(errno.EACCES)
        return real(addr, attr)

    kern._load = load  # type: ignore[method-assign]
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_program(program(), "Apache")
    assert e.value.log == "bad \ufffd byte"
    with pytest.raises(bpf.BPFError) as e:
        bpf.verifier_stats(program(), "Apache")
    assert e.value.log == "bad \ufffd byte"

    def stats(addr: int, attr: bytes) -> int:
        f = struct.unpack_from(PROG_LOAD, attr)
        ctypes.memmove(f[6], b"ok \xfe\0", 5)
        return kern._new_fd(0)

    kern._load = stats  # type: ignore[method-assign]
    assert bpf.verifier_stats(program(), "Apache") == "ok \ufffd"


def test_program_name_that_is_not_ascii(kern: FakeBPF) -> None:
    fd = bpf.load_program(program(), "GPL", name="abc")
    kern.progs[kern.fds[fd]].name = "ab"
    real = kern._info

    def info(addr: int, attr: bytes) -> int:
        r = real(addr, attr)
        ptr = struct.unpack_from("=IIQ", attr)[2]
        ctypes.memmove(ptr + 64, b"a\xffb\0", 4)
        return r

    kern._info = info  # type: ignore[method-assign]
    assert bpf.prog_info(fd).name == "a\ufffdb"
    os.close(fd)


def test_close_of_a_closed_fd_is_quiet() -> None:
    fd = os.open("/", os.O_RDONLY)
    os.close(fd)
    bpf._close(fd)


def test_a_vanished_program_does_not_hide_ours(kern: FakeBPF, group: int) -> None:
    gone = foreign(kern, group, "gone")
    fd = bpf.load_program(program(), "Apache")
    bpf.attach(group, fd)
    os.close(fd)
    del kern.progs[gone]  # freed between the query and the get-fd
    assert bpf.detach_device_filters(group) == 1


def test_the_group_itself_is_locked(
    kern: FakeBPF, group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    path = os.readlink(f"/proc/self/fd/{group}")
    locked: list[str] = []
    real = fcntl.flock

    def flock(fd: int, op: int) -> None:
        locked.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd, op)

    monkeypatch.setattr(bpf.fcntl, "flock", flock)
    bpf.apply_device_rules(SimpleNamespace(fd=group), [])  # type: ignore[arg-type]
    bpf.detach_device_filters(group)
    f = bpf.load_attach_device_filter(program(), "Apache", group)
    f()
    assert locked == [path, path, path]


def test_flock_failure_names_the_group(group: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(bpf.fcntl, "flock", flock)
    path = os.readlink(f"/proc/self/fd/{group}")
    with pytest.raises(KernelError) as e, bpf.group_lock(group):
        pass
    assert str(e.value).startswith(f"cgroups: flock group directory {path}: [Errno 37 ENOLCK]")


def test_fd_0_is_a_valid_group_fd(kern: FakeBPF) -> None:
    # fd 0 passes the argument check; here it is no directory, so the lock refuses it
    with pytest.raises(KernelError) as e:
        bpf.load_attach_device_filter(program(), "Apache", 0)
    assert e.value.op == "open group directory" and e.value.errno == errno.ENOTDIR


def test_failure_before_the_dup_closes_no_other_fd(kern: FakeBPF, group: int) -> None:
    kern.errors[15] = [errno.EFAULT]
    with pytest.raises(bpf.BPFError):
        bpf.load_attach_device_filter(program(), "Apache", group)
    for fd in (0, 1, 2):
        os.fstat(fd)  # still open
