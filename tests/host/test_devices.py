"""host: eBPF device filters loaded, attached, replaced and enforced by this kernel.

Each test makes its group under the run's parent (``cg_path``), runs a child process in
it that tries device operations and reports the errno of each, and removes the group.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from conftest import Parent

from cgroup2 import CgroupError, DeviceRule, Manager, Resources
from cgroup2._fs import Dir
from cgroup2.devices import (
    PROG_NAME,
    BPFError,
    ProgramEmulator,
    apply_device_rules,
    attached_programs,
    detach_device_filters,
    device_filter,
    load_attach_device_filter,
    load_program,
)
from cgroup2.devices.asm import AluOp, Assembler, Reg, Size, alu32, exit_insn, load_mem
from cgroup2.devices.bpf import attach, detach, prog_fd_by_id, query
from cgroup2.devices.state import DeviceState

# A child that waits for "go" on stdin (so that it is in the group before it acts), then
# runs the operations given as JSON in argv[1] and prints one errno (0: ok) per operation.
CHILD = r"""
import json, os, sys
ops = json.loads(sys.argv[1])
sys.stdin.readline()
out = []
for op in ops:
    try:
        if op[0] == "open":
            os.close(os.open(op[1], {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[op[2]]))
        else:
            _, path, kind, major, minor = op
            mode = (0o20000 if kind == "c" else 0o60000) | 0o600
            os.mknod(path, mode, os.makedev(major, minor))
            os.unlink(path)
        out.append(0)
    except OSError as e:
        out.append(e.errno)
print(json.dumps(out))
"""

Op = list[object]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def group(parent: Parent, cg_path: str) -> Iterator[Dir]:
    """Create the test's group; yield it open; remove it at the end (also on failure)."""
    name = os.path.basename(cg_path)
    with Dir.open(parent.mountpoint + os.path.dirname(cg_path)) as top:
        top.mkdir(name)
        try:
            with top.child(name) as d:
                yield d
        finally:
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(name, dir_fd=top.fd)
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)


def run_in(d: Dir, ops: list[Op]) -> list[int]:
    """Run ``ops`` in a child process inside group ``d``; return the errno of each."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(ops)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        d.write("cgroup.procs", str(child.pid))
        out, _ = child.communicate("go\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == 0, out
    result: list[int] = json.loads(out)
    return result


def ours(d: Dir) -> list[int]:
    return [p.id for p in attached_programs(d.fd) if p.name == PROG_NAME]


def wait_gone(prog_ids: list[int]) -> list[int]:
    """The ids among ``prog_ids`` the kernel still has after up to 2 s."""
    deadline = time.monotonic() + 2
    while True:
        alive = []
        for pid in prog_ids:
            fd = prog_fd_by_id(pid)
            if fd is not None:
                os.close(fd)
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def applicable(rules: list[DeviceRule]) -> list[DeviceRule]:
    """The rules without those cgroup v1 would refuse (a hole in a wildcard exception)."""
    state, out = DeviceState(), []
    for r in rules:
        try:
            state.apply(r)
        except CgroupError:
            continue
        out.append(r)
    return out


def random_rules(rng: random.Random, n: int) -> list[DeviceRule]:
    numbers = [0, 1, 3, 5, 7, 8, 136, 2**31, 2**32 - 1]
    out = []
    for _ in range(n):
        out.append(
            DeviceRule(
                rng.random() < 0.5,
                rng.choice("abc"),
                rng.choice([None, rng.choice(numbers), rng.randrange(2**32)]),
                rng.choice([None, rng.choice(numbers), rng.randrange(2**32)]),
                rng.choice(["r", "w", "m", "rw", "rm", "wm", "rwm"]),
            )
        )
    return applicable(out)


# --- tests ---------------------------------------------------------------------------------


def test_verifier_accepts_every_program_of_a_200_rule_random_set() -> None:
    rng = random.Random(20240601)
    rules = random_rules(rng, 200)
    before = fd_count()
    for k in range(len(rules) + 1):
        program, license = device_filter(rules[:k])
        fd = load_program(program, license)
        os.close(fd)
    # 200 exceptions (a rule each, distinct devices, partial access, numbers on both
    # sides of 2**31): a block each and the default, and the verifier accepts it
    many = [DeviceRule(False)] + [
        DeviceRule(True, "bc"[k % 2], rng.randrange(2**32), rng.choice([None, k]), "rw")
        for k in range(200)
    ]
    program, license = device_filter(many)
    assert len(program.labels) == 200 + 1
    os.close(load_program(program, license))
    assert fd_count() == before


def test_refused_program_reports_the_verifier_log() -> None:
    a = Assembler()
    a.emit(load_mem(Reg.R0, Reg.R1, 12, Size.W), exit_insn())  # past the 12-byte context
    with pytest.raises(BPFError) as e:
        load_program(a.assemble(), "Apache")
    assert e.value.errno == errno.EACCES
    assert e.value.log and "invalid bpf_context access" in e.value.log
    assert "verifier log" in str(e.value)


def test_deny_all_allow_dev_null_rw(cg_parent: Parent, cg_path: str, tmp_path: Path) -> None:
    before = fd_count()
    with group(cg_parent, cg_path) as d:
        apply_device_rules(d, [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw")])
        assert fd_count() == before + 2  # only the fds of the group and its parent
        res = run_in(
            d,
            [
                ["open", "/dev/null", "rw"],
                ["open", "/dev/null", "r"],
                ["open", "/dev/zero", "r"],
                ["mknod", str(tmp_path / "null"), "c", 1, 3],
                ["mknod", str(tmp_path / "sda"), "b", 8, 0],
            ],
        )
        assert res == [0, 0, errno.EPERM, errno.EPERM, errno.EPERM]
        assert detach_device_filters(d.fd) == 1
    assert fd_count() == before


def test_all_requested_bits_must_be_allowed(
    cg_parent: Parent, cg_path: str, tmp_path: Path
) -> None:
    # runc #2796: with "c 1:3 r" only, an open(O_RDWR) must fail (the reference let it in).
    with group(cg_parent, cg_path) as d:
        apply_device_rules(d, [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r")])
        res = run_in(
            d,
            [["open", "/dev/null", "r"], ["open", "/dev/null", "w"], ["open", "/dev/null", "rw"]],
        )
        assert res == [0, errno.EPERM, errno.EPERM]
        # allow everything but writing to /dev/null: the later deny decides the w bit only
        apply_device_rules(d, [DeviceRule(True), DeviceRule(False, "c", 1, 3, "w")])
        res = run_in(
            d,
            [
                ["open", "/dev/null", "r"],
                ["open", "/dev/null", "rw"],
                ["open", "/dev/zero", "rw"],
                ["mknod", str(tmp_path / "null"), "c", 1, 3],
            ],
        )
        assert res == [0, errno.EPERM, 0, 0]
        detach_device_filters(d.fd)


def test_one_rule_must_grant_every_requested_bit(cg_parent: Parent, cg_path: str) -> None:
    """Access bits do not add up across exceptions (cgroup v1's match_exception; runc's
    program). "r" from ``c 1:*`` and "w" from ``c 1:3`` do not make an O_RDWR open of
    /dev/null (c 1:3) allowed."""
    with group(cg_parent, cg_path) as d:
        apply_device_rules(
            d,
            [
                DeviceRule(False),
                DeviceRule(True, "c", 1, None, "r"),
                DeviceRule(True, "c", 1, 3, "w"),
            ],
        )
        res = run_in(
            d,
            [["open", "/dev/null", "rw"], ["open", "/dev/null", "r"], ["open", "/dev/null", "w"]],
        )
        assert res == [errno.EPERM, 0, 0]
        detach_device_filters(d.fd)


def test_rules_for_one_device_merge_as_in_cgroup_v1(
    cg_parent: Parent, cg_path: str, tmp_path: Path
) -> None:
    """Rules for the same device make one exception (v1's dev_exception_add ORs the
    bits; a rule with the default's polarity takes bits away, dev_exception_rm)."""
    with group(cg_parent, cg_path) as d:
        rw = [["open", "/dev/null", "rw"], ["open", "/dev/null", "r"], ["open", "/dev/null", "w"]]
        apply_device_rules(
            d,
            [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r"), DeviceRule(True, "c", 1, 3, "w")],
        )
        assert run_in(d, rw) == [0, 0, 0]
        # a deny (deny default) takes w back from the exception: c 1:3 r
        apply_device_rules(
            d,
            [
                DeviceRule(False),
                DeviceRule(True, "c", 1, 3, "rw"),
                DeviceRule(False, "c", 1, 3, "w"),
            ],
        )
        assert run_in(d, rw) == [errno.EPERM, 0, errno.EPERM]
        # an allow (allow default) takes r back from the deny exception: deny c 1:3 wm
        apply_device_rules(
            d,
            [
                DeviceRule(True),
                DeviceRule(False, "c", 1, 3, "rwm"),
                DeviceRule(True, "c", 1, 3, "r"),
            ],
        )
        res = run_in(
            d, [*rw, ["mknod", str(tmp_path / "null"), "c", 1, 3], ["open", "/dev/zero", "rw"]]
        )
        assert res == [errno.EPERM, 0, errno.EPERM, errno.EPERM, 0]
        detach_device_filters(d.fd)


def test_merged_rules_through_the_manager(cg_parent: Parent, cg_path: str) -> None:
    """The same through ``Manager.create(..., Resources(devices=...))`` and ``update``."""
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r"), DeviceRule(True, "c", 1, 3, "w")]
    m = Manager.create(cg_path, Resources(devices=rules), mountpoint=cg_parent.mountpoint)
    try:
        with Dir.open(m.path) as d:
            rw = [["open", "/dev/null", "rw"], ["open", "/dev/zero", "r"]]
            assert run_in(d, rw) == [0, errno.EPERM]
            m.update(
                Resources(
                    devices=[
                        DeviceRule(False),
                        DeviceRule(True, "c", 1, None, "r"),
                        DeviceRule(True, "c", 1, 3, "w"),
                    ]
                )
            )
            assert run_in(d, rw) == [errno.EPERM, 0]
    finally:
        m.delete()


def test_a_hole_in_a_wildcard_exception_is_refused_before_anything_is_attached(
    cg_parent: Parent, cg_path: str
) -> None:
    """``deny c 1:3 w`` after ``allow c 1:* rw``: v1 would leave /dev/null writable; the
    rules are refused with one line and the group's program stays as it was."""
    with group(cg_parent, cg_path) as d:
        apply_device_rules(d, [DeviceRule(False), DeviceRule(True, "c", 1, 3, "r")])
        before = ours(d)
        with pytest.raises(CgroupError) as e:
            apply_device_rules(
                d,
                [
                    DeviceRule(False),
                    DeviceRule(True, "c", 1, None, "rw"),
                    DeviceRule(False, "c", 1, 3, "w"),
                ],
            )
        assert "punch a hole in the wildcard exception allow c 1:* rw" in str(e.value)
        assert "\n" not in str(e.value)
        assert ours(d) == before
        assert run_in(d, [["open", "/dev/null", "r"], ["open", "/dev/null", "w"]]) == [
            0,
            errno.EPERM,
        ]
        detach_device_filters(d.fd)


def _created_names(parent: str, act: Callable[[], object]) -> list[str]:
    """The names made in directory ``parent`` (inotify IN_CREATE) while ``act`` runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert fd >= 0, ctypes.get_errno()
    try:
        assert libc.inotify_add_watch(fd, parent.encode(), 0x100) >= 0, ctypes.get_errno()
        with suppress(CgroupError):
            act()
        names = []
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            data = b""
        off = 0
        while off < len(data):
            _, _, _, n = struct.unpack_from("iIII", data, off)
            names.append(data[off + 16 : off + 16 + n].rstrip(b"\0").decode())
            off += 16 + n
        return names
    finally:
        os.close(fd)


def test_a_hole_is_refused_before_the_group_is_made(cg_parent: Parent, cg_path: str) -> None:
    hole = [
        DeviceRule(False),
        DeviceRule(True, "c", 1, None, "rw"),
        DeviceRule(False, "c", 1, 3, "w"),
    ]
    parent = cg_parent.mountpoint + os.path.dirname(cg_path)
    # the watch sees a mkdir: checked with a group that is made
    ok = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw")]
    name = os.path.basename(cg_path)

    def create() -> None:
        Manager.create(cg_path, Resources(devices=hole), mountpoint=cg_parent.mountpoint)

    def create_ok() -> None:
        Manager.create(cg_path, Resources(devices=ok), mountpoint=cg_parent.mountpoint)

    assert _created_names(parent, create_ok) == [name]
    Manager.load(cg_path, mountpoint=cg_parent.mountpoint).delete()
    with pytest.raises(CgroupError, match="punch a hole"):
        create()
    assert _created_names(parent, create) == []
    assert not os.path.exists(cg_parent.mountpoint + cg_path)


def test_replacing_100_times_keeps_one_program_and_leaks_nothing(
    cg_parent: Parent, cg_path: str
) -> None:
    with group(cg_parent, cg_path) as d:
        before = fd_count()
        seen: list[int] = []
        for i in range(100):
            apply_device_rules(d, [DeviceRule(False), DeviceRule(True, "c", 1, 3 + i % 2, "rw")])
            now = ours(d)
            assert len(now) == 1, now
            assert len(query(d.fd)) == 1
            seen.extend(now)
        assert fd_count() == before
        assert len(set(seen)) == 100  # a new program each time ...
        assert wait_gone(seen[:-1]) == []  # ... and the replaced ones are freed
        # the last one (minor 4: /dev/zero is 1:5, /dev/null 1:3) is the one enforced
        assert run_in(d, [["open", "/dev/null", "r"], ["open", "/dev/zero", "r"]]) == [
            errno.EPERM,
            errno.EPERM,
        ]
        apply_device_rules(d, [DeviceRule(False), DeviceRule(True, "c", 1, 5, "r")])
        assert run_in(d, [["open", "/dev/null", "r"], ["open", "/dev/zero", "r"]]) == [
            errno.EPERM,
            0,
        ]
        last = ours(d)
        assert detach_device_filters(d.fd) == 1
        assert query(d.fd) == []
        assert wait_gone(last) == []
        # detach restores access
        assert run_in(d, [["open", "/dev/null", "rw"], ["open", "/dev/zero", "r"]]) == [0, 0]
        assert fd_count() == before


def test_load_attach_closer_detaches_and_closes(cg_parent: Parent, cg_path: str) -> None:
    before = fd_count()
    with group(cg_parent, cg_path) as d:
        program, license = device_filter([DeviceRule(False)])
        close = load_attach_device_filter(program, license, d.fd)
        assert fd_count() == before + 4  # group and parent fds + program fd + dup of dir fd
        ids = ours(d)
        assert len(ids) == 1
        assert run_in(d, [["open", "/dev/null", "r"]]) == [errno.EPERM]
        # a second filter replaces the first, it does not stack
        program2, _ = device_filter([DeviceRule(True)])
        close2 = load_attach_device_filter(program2, license, d.fd)
        assert len(ours(d)) == 1 and ours(d) != ids
        assert run_in(d, [["open", "/dev/null", "r"]]) == [0]
        close()  # its program is no longer attached: not an error
        close2()
        close2()  # twice is harmless
        assert query(d.fd) == []
        assert run_in(d, [["open", "/dev/zero", "r"]]) == [0]
    assert fd_count() == before


def test_programs_of_others_are_left_alone(cg_parent: Parent, cg_path: str) -> None:
    a = Assembler()
    a.emit(alu32(AluOp.MOV, Reg.R0, imm=1), exit_insn())
    other = load_program(a.assemble(), "Apache", name="someone_else")
    try:
        with group(cg_parent, cg_path) as d:
            attach(d.fd, other)
            try:
                for _ in range(3):
                    apply_device_rules(d, [DeviceRule(False)])
                names = sorted(p.name for p in attached_programs(d.fd))
                assert names == [PROG_NAME, "someone_else"]
                # both must allow: ours denies
                assert run_in(d, [["open", "/dev/null", "r"]]) == [errno.EPERM]
                assert detach_device_filters(d.fd) == 1
                assert [p.name for p in attached_programs(d.fd)] == ["someone_else"]
            finally:
                detach(d.fd, other)
    finally:
        os.close(other)


def test_kernel_agrees_with_the_emulator(cg_parent: Parent, cg_path: str, tmp_path: Path) -> None:
    """Random rule sets over the devices probed: the kernel's answer is the emulator's."""
    rng = random.Random(7)
    devs = [("c", 1, 3, "/dev/null"), ("c", 1, 5, "/dev/zero"), ("c", 1, 7, "/dev/full")]
    probes: list[tuple[str, int, int, str, Op]] = []
    for kind, major, minor, path in devs:
        for acc in ("r", "w", "rw"):
            probes.append((kind, major, minor, acc, ["open", path, acc]))
    for kind, major, minor in [("c", 1, 3), ("c", 1, 5), ("b", 1, 3), ("b", 8, 0), ("c", 8, 0)]:
        node = str(tmp_path / f"{kind}{major}_{minor}")
        probes.append((kind, major, minor, "m", ["mknod", node, kind, major, minor]))
    with group(cg_parent, cg_path) as d:
        for _ in range(24):
            rules = []
            for _ in range(rng.randint(1, 8)):
                rules.append(
                    DeviceRule(
                        rng.random() < 0.5,
                        rng.choice("abc"),
                        rng.choice([None, 1, 8]),
                        rng.choice([None, 0, 3, 5, 7]),
                        rng.choice(["r", "w", "m", "rw", "rm", "wm", "rwm"]),
                    )
                )
            rules = applicable(rules)
            apply_device_rules(d, rules)
            emu = ProgramEmulator(device_filter(rules)[0])
            state = DeviceState.of(rules)
            got = run_in(d, [p[4] for p in probes])
            for (kind, major, minor, acc, op), err in zip(probes, got, strict=True):
                assert err in (0, errno.EPERM), (op, err)
                assert (err == 0) == emu.allows(kind, major, minor, acc), (rules, op, err)
                assert (err == 0) == state.allows(kind, major, minor, acc), (rules, op, err)
        detach_device_filters(d.fd)


def test_replace_falls_back_where_the_kernel_lacks_f_replace(
    cg_parent: Parent, cg_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernels before 5.6 refuse BPF_F_REPLACE with EINVAL: attach the new program, then
    detach the old one. Simulated here by refusing the flag before the real call."""
    from cgroup2.devices import bpf

    real_attach = bpf.attach

    def old_kernel_attach(dir_fd: int, prog_fd: int, **kw: int) -> None:
        if kw.get("replace_fd"):
            raise BPFError(errno.EINVAL, "simulated", op="BPF_PROG_ATTACH")
        real_attach(dir_fd, prog_fd, **kw)

    monkeypatch.setattr(bpf, "attach", old_kernel_attach)
    with group(cg_parent, cg_path) as d:
        apply_device_rules(d, [DeviceRule(False)])
        first = ours(d)
        apply_device_rules(d, [DeviceRule(True)])
        second = ours(d)
        assert len(first) == len(second) == 1 and first != second
        assert run_in(d, [["open", "/dev/null", "r"]]) == [0]
        detach_device_filters(d.fd)


def test_empty_device_list_leaves_devices_alone_in_create_and_update(
    cg_parent: Parent, cg_path: str
) -> None:
    """issue 13 item 11: ``Resources(devices=[])`` is "devices not controlled", as in
    containerd's v2 (``setDevices`` returns at ``len(devices) == 0``, in ``NewManager`` and
    in ``Update`` alike): create attaches nothing, update leaves the filter as it is."""
    m = Manager.create(cg_path, Resources(devices=[]), mountpoint=cg_parent.mountpoint)
    try:
        fs_path = cg_parent.mountpoint + cg_path
        with Dir.open(fs_path) as d:
            assert query(d.fd) == []  # create with []: nothing attached
            m.update(Resources(devices=[]))
            assert query(d.fd) == []  # update with []: nothing attached
            assert run_in(d, [["open", "/dev/null", "rw"]]) == [0]
            m.update(Resources(devices=[DeviceRule(False)]))
            before = ours(d)
            assert len(before) == 1
            m.update(Resources(devices=[]))
            assert ours(d) == before  # update with []: the filter set before stays
            assert run_in(d, [["open", "/dev/null", "r"]]) == [errno.EPERM]
            detach_device_filters(d.fd)
    finally:
        m.delete()


# Loads a device program the way `cgroup2 run --device` does and prints what it raised.
LOAD_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from cgroup2 import DeviceRule, device_filter
from cgroup2.devices import BPFError, load_program
try:
    load_program(*device_filter([DeviceRule(False)]))
    print(json.dumps([0, ""]))
except BPFError as e:
    print(json.dumps([e.errno, str(e)]))
"""


def test_unprivileged_load_names_the_capabilities_it_needs() -> None:
    """issue 13 item 14 (devices): without CAP_BPF/CAP_SYS_ADMIN the error names them
    instead of a bare ``BPF_PROG_LOAD: EPERM``. The child is root with every capability
    dropped (``setpriv``)."""
    import shutil

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop capabilities")
    src = str(Path(__file__).resolve().parents[2] / "src")
    p = subprocess.run(
        [
            setpriv,
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            sys.executable,
            "-c",
            LOAD_CHILD,
            src,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    err, message = json.loads(p.stdout)
    assert err == errno.EPERM, message
    assert "BPF_PROG_LOAD" in message and "EPERM" in message
    assert "CAP_SYS_ADMIN" in message and "CAP_BPF" in message, message


def test_refused_attach_says_why(cg_parent: Parent, cg_path: str) -> None:
    """issue 13 item 14 (devices): a program attached by another tool without
    BPF_F_ALLOW_MULTI makes the kernel refuse ours with EPERM; the error says so."""
    a = Assembler()
    a.emit(alu32(AluOp.MOV, Reg.R0, imm=1), exit_insn())
    other = load_program(a.assemble(), "Apache", name="someone_else")
    try:
        with group(cg_parent, cg_path) as d:
            attach(d.fd, other, flags=0)  # exclusive: no other program may join
            try:
                with pytest.raises(BPFError) as e:
                    apply_device_rules(d, [DeviceRule(False)])
                assert e.value.errno == errno.EPERM
                message = str(e.value)
                assert "BPF_PROG_ATTACH" in message and "BPF_F_ALLOW_MULTI" in message, message
                assert ours(d) == []
            finally:
                detach(d.fd, other)
    finally:
        os.close(other)
