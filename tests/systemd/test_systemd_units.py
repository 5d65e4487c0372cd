"""Transient units against a real systemd (PID 1 of the container scripts/systemd-test
boots): properties as systemd reports them, limits in the unit's group files, and the
kernel enforcing them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sdtools import Agent, Units, read, show, systemctl, unique

from cgroup2 import (
    CPU,
    IO,
    CgroupDeletedError,
    DeviceRule,
    Entry,
    IOType,
    Manager,
    Memory,
    Pids,
    Resources,
)
from cgroup2.systemd.unit import control_group

MiB = 1 << 20
SLICE = "cg2test.slice"


def scope_name(what: str) -> str:
    return unique(f"cg2t-{what}-") + ".scope"


def test_scope_with_every_property(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("all"))
    units.add(SLICE)
    r = Resources(
        memory=Memory(min=1 * MiB, low=2 * MiB, high=200 * MiB, max=256 * MiB, swap=0),
        cpu=CPU(weight=200, max="50000 100000", cpus="0", mems="0"),
        pids=Pids(max=20),
        io=IO(weight=300),
        devices=[
            DeviceRule(False),
            DeviceRule(True, "c", 1, 3, "rwm"),
            DeviceRule(True, "c", 136, None, "rw"),
        ],
    )
    m = Manager.create_systemd(SLICE, unit, agent.pid, r)
    assert (m.group, m.unit) == (f"/{SLICE}/{unit}", unit)
    assert m.systemd_warnings == ()
    # the process given is in the unit's group
    assert agent.ask("cgroup") == m.group
    assert read(f"{m.path}/cgroup.procs").split() == [str(agent.pid)]

    # systemctl reports every property sent
    props = show(unit)
    want = {
        "Description": f"cgroup {unit}",
        "Slice": SLICE,  # the slice given (the reference drops it)
        "DefaultDependencies": "no",
        "Delegate": "yes",
        "MemoryAccounting": "yes",
        "CPUAccounting": "yes",
        "IOAccounting": "yes",
        "TasksAccounting": "yes",
        "MemoryMin": str(1 * MiB),
        "MemoryLow": str(2 * MiB),
        "MemoryHigh": str(200 * MiB),
        "MemoryMax": str(256 * MiB),
        "MemorySwapMax": "0",
        "CPUWeight": "200",
        "CPUQuotaPerSecUSec": "500ms",
        "CPUQuotaPeriodUSec": "100ms",
        "AllowedCPUs": "0",
        "AllowedMemoryNodes": "0",
        "TasksMax": "20",
        "IOWeight": "300",
        "DevicePolicy": "strict",
        "ControlGroup": m.group,
        "ActiveState": "active",
    }
    got = {k: props.get(k, ["<missing>"])[-1] for k in want}
    assert got == want
    assert sorted(props["DeviceAllow"]) == ["/dev/char/1:3 rwm", "char-pts rw"]

    # the limits are in the unit's group files
    files = {
        "memory.min": str(1 * MiB),
        "memory.low": str(2 * MiB),
        "memory.high": str(200 * MiB),
        "memory.max": str(256 * MiB),
        "memory.swap.max": "0",
        "cpu.weight": "200",
        "cpu.max": "50000 100000",
        "cpuset.cpus": "0",
        "cpuset.mems": "0",
        "pids.max": "20",
        "io.weight": "default 300",
    }
    assert {f: read(f"{m.path}/{f}") for f in files} == files

    # new device rules replace the old ones (the unit's list is reset first)
    m.update(Resources(devices=[DeviceRule(False), DeviceRule(True, "c", 1, 5, "r")]))
    assert show(unit)["DeviceAllow"] == ["/dev/char/1:5 r"]

    # load_systemd finds the same group
    assert Manager.load_systemd(SLICE, unit) == m
    m.delete_systemd()
    assert not os.path.exists(m.path)


def test_device_rules_are_enforced(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("dev"))
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw")]
    m = Manager.create_systemd("", unit, agent.pid, Resources(devices=rules))
    assert show(unit)["DevicePolicy"] == ["strict"]
    assert agent.ask("open /dev/null") == "ok"  # 1:3, allowed
    zero = agent.ask("open /dev/zero")  # 1:5, not allowed
    if zero != "errno 1":  # the journal says why systemd attached no program
        log = subprocess.run(
            ["journalctl", "-b", "--no-pager", "-q", "-g", "BPF|bpf|[Dd]evice"],
            capture_output=True, text=True, timeout=60,
        ).stdout.strip().splitlines()
        seen = " | ".join(dict.fromkeys(line.split(": ", 1)[-1] for line in log[-40:]))
        pytest.fail(
            f"DevicePolicy=strict but /dev/zero gave {zero!r} (must be EPERM); systemd's "
            f"journal on BPF/devices: {seen[-600:] or 'nothing'}"
        )
    m.update(Resources(devices=[DeviceRule(False), DeviceRule(True, "c", 1, 5, "r")]))
    assert agent.ask("open /dev/zero") == "ok"
    assert agent.ask("open /dev/null") == "errno 1"
    m.delete_systemd()


def test_io_limits(units: Units, agent: Agent) -> None:
    """The IO properties on the VM's disk (scripts/systemd-test --disk binds it into the
    container): read back from systemd and io.max, and IOReadBandwidthMax measured
    on direct reads by a process of the unit."""
    disks = [d for d in ("/dev/vda", "/dev/sda") if os.path.exists(d)]
    assert disks, "the systemd tier runs with a disk: scripts/systemd-test --disk"
    disk = disks[0]
    st = os.stat(disk)
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    unit = units.add(scope_name("io"))
    r = Resources(
        io=IO(
            max=[
                Entry(IOType.READ_BPS, major, minor, 1048576),
                Entry(IOType.WRITE_BPS, major, minor, 2097152),
                Entry(IOType.READ_IOPS, major, minor, 120),
                Entry(IOType.WRITE_IOPS, major, minor, 100),
            ]
        )
    )
    m = Manager.create_systemd("", unit, agent.pid, r)
    assert m.group == f"/system.slice/{unit}"
    props = show(unit)
    d = f"/dev/block/{major}:{minor}"
    assert props["IOReadBandwidthMax"] == [f"{d} 1048576"]
    assert props["IOWriteBandwidthMax"] == [f"{d} 2097152"]
    assert props["IOReadIOPSMax"] == [f"{d} 120"]
    assert props["IOWriteIOPSMax"] == [f"{d} 100"]
    assert read(f"{m.path}/io.max") == (
        f"{major}:{minor} rbps=1048576 wbps=2097152 riops=120 wiops=100"
    )
    # the agent (in the unit's group) reads the disk directly: 1 MiB/s after the first
    # second (the first slice goes through at once), within 25 %
    rate = int(agent.ask(f"readrate {disk} 1 4").split()[1])
    print(f"\nIOReadBandwidthMax={disk} 1M: {rate / MiB:.3f} MiB/s read by the unit's process")
    assert 0.75 * MiB <= rate <= 1.25 * MiB, f"{rate / MiB:.3f} MiB/s, limit 1 MiB/s"
    m.update(Resources(io=IO(max=[Entry(IOType.READ_BPS, major, minor, "max"),
                                  Entry(IOType.READ_IOPS, major, minor, "max")])))
    free = int(agent.ask(f"readrate {disk} 0 1").split()[1])
    print(f"without the read limits: {free / MiB:.1f} MiB/s")
    assert free > 3 * MiB, "without the limit the same reads should be much faster"
    m.delete_systemd()


def test_memory_max_is_enforced(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("oom"))
    m = Manager.create_systemd("", unit, agent.pid, Resources(memory=Memory(max=64 * MiB, swap=0)))
    assert show(unit)["MemoryMax"] == [str(64 * MiB)]
    assert read(f"{m.path}/memory.max") == str(64 * MiB)
    before = _oom_kills(m.path)
    # a child of the agent (in the unit's group) allocates 200 MiB: it is OOM-killed
    assert agent.ask(f"hog {200 * MiB}") == "rc -9"
    assert _oom_kills(m.path) >= before + 1
    # a small allocation is fine
    assert agent.ask(f"hog {8 * MiB}") == "rc 0"
    m.delete_systemd()


def _oom_kills(path: str) -> int:
    for line in read(f"{path}/memory.events").splitlines():
        k, _, v = line.partition(" ")
        if k == "oom_kill":
            return int(v)
    raise AssertionError("memory.events has no oom_kill")


def test_delete_systemd_stops_the_unit(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("del"))
    m = Manager.create_systemd("", unit, agent.pid, Resources(pids=Pids(max=10)))
    assert os.path.isdir(m.path)
    m.delete_systemd()
    assert not os.path.exists(m.path)
    # systemd stopped the scope with SIGTERM (the agent has the default handler)
    assert agent.proc.wait(30) == -signal.SIGTERM
    assert systemctl("is-active", unit).stdout.strip() in ("inactive", "unknown")
    with pytest.raises(CgroupDeletedError):
        Manager.load_systemd("", unit)
    m.delete_systemd()  # a unit that is gone: success


def test_create_again_after_a_failed_unit(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("again"))
    # A scope whose process ignores SIGTERM: stopping it times out -> the unit fails and
    # stays loaded, so that starting one of the same name says UnitExists.
    stubborn = subprocess.Popen(
        [
            "systemd-run", "--scope", "-q", f"--unit={unit}", "-p", "TimeoutStopSec=1",
            sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stubborn.stdout is not None
        assert stubborn.stdout.readline().strip() == "up"
        systemctl("stop", unit)
        assert systemctl("is-failed", unit).stdout.strip() == "failed"
    finally:
        stubborn.kill()
        stubborn.wait(30)
    m = Manager.create_systemd("", unit, agent.pid, Resources(pids=Pids(max=11)))
    props = show(unit)
    assert props["ActiveState"] == ["active"] and props["TasksMax"] == ["11"]
    assert agent.ask("cgroup") == m.group
    m.delete_systemd()


def test_slice_with_a_dash_creates_its_parents(units: Units, agent: Agent) -> None:
    top = unique("cg2t")
    parent = units.add(f"{top}.slice")
    sl = units.add(f"{top}-grp.slice")
    m = Manager.create_systemd("", sl, -1, Resources(memory=Memory(max=128 * MiB)))
    assert m.group == f"/{top}.slice/{top}-grp.slice"
    assert os.path.isdir(f"{m.mountpoint}/{top}.slice") and os.path.isdir(m.path)
    props = show(sl)
    assert props["ControlGroup"] == [m.group]
    assert props["MemoryMax"] == [str(128 * MiB)]
    assert "system.slice" in props["Wants"][-1].split()
    assert read(f"{m.path}/memory.max") == str(128 * MiB)
    assert show(parent)["ActiveState"] == ["active"]

    unit = units.add(scope_name("in"))
    s = Manager.create_systemd(sl, unit, agent.pid, Resources(pids=Pids(max=12)))
    assert s.group == f"{m.group}/{unit}"
    assert agent.ask("cgroup") == s.group
    assert read(f"{s.path}/pids.max") == "12"
    s.delete_systemd()
    m.delete_systemd()
    assert not os.path.exists(m.path)


def test_update_changes_properties_and_files(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("upd"))
    m = Manager.create_systemd("", unit, agent.pid, Resources(memory=Memory(max=256 * MiB)))
    assert read(f"{m.path}/memory.max") == str(256 * MiB)
    m.update(
        Resources(memory=Memory(max=128 * MiB), pids=Pids(max=9), cpu=CPU(max="20000 100000"))
    )
    props = show(unit)
    assert props["MemoryMax"] == [str(128 * MiB)]
    assert props["TasksMax"] == ["9"]
    assert props["CPUQuotaPerSecUSec"] == ["200ms"]
    assert read(f"{m.path}/memory.max") == str(128 * MiB)
    assert read(f"{m.path}/pids.max") == "9"
    assert read(f"{m.path}/cpu.max") == "20000 100000"
    m.update(Resources(memory=Memory(max=-1)))
    assert show(unit)["MemoryMax"] == ["infinity"]
    assert read(f"{m.path}/memory.max") == "max"
    m.delete_systemd()


def test_what_systemd_lacks_goes_to_the_subgroup(units: Units, agent: Agent) -> None:
    unit = units.add(scope_name("sub"))
    r = Resources(
        memory=Memory(max=256 * MiB, oom_group=True),
        cpu=CPU(max="50000 100000", burst=5000),
    )
    m = Manager.create_systemd("", unit, agent.pid, r)
    leaf = f"{m.path}/leaf"
    # the process moved into the sub-group; the unit's own group holds none
    assert agent.ask("cgroup") == f"{m.group}/leaf"
    assert read(f"{m.path}/cgroup.procs") == ""
    # systemd's properties on the unit's group; the rest in the sub-group only
    assert read(f"{m.path}/memory.max") == str(256 * MiB)
    assert read(f"{m.path}/cpu.max") == "50000 100000"
    assert read(f"{leaf}/memory.oom.group") == "1"
    assert read(f"{m.path}/memory.oom.group") == "0"
    assert read(f"{leaf}/cpu.max.burst") == "5000"
    assert {"memory", "cpu"} <= set(read(f"{m.path}/cgroup.subtree_control").split())
    m.update(Resources(memory=Memory(oom_group=False)))
    assert read(f"{leaf}/memory.oom.group") == "0"
    # a process added later joins the others in the sub-group (the unit's own group has
    # children with controllers: the kernel would refuse it there with EBUSY)
    late = subprocess.Popen(["sleep", "60"])
    try:
        m.add_proc(late.pid)
        in_leaf = sorted(int(x) for x in read(f"{leaf}/cgroup.procs").split())
        assert in_leaf == sorted([agent.pid, late.pid])
        assert sorted(m.procs()) == sorted([agent.pid, late.pid])
    finally:
        late.kill()
        late.wait()
    m.delete_systemd()
    assert not os.path.exists(m.path)


def test_control_group_matches_the_computed_path(units: Units, agent: Agent) -> None:
    from cgroup2.systemd.dbus import connect
    from cgroup2.systemd.names import unit_path

    unit = units.add(scope_name("cg"))
    m = Manager.create_systemd("", unit, agent.pid)
    with connect() as conn:
        assert control_group(conn, unit) == unit_path("", unit) == m.group
    m.delete_systemd()


def test_create_delete_timing(units: Units, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    n = 5
    start_times, stop_times = [], []
    for i in range(n):
        unit = units.add(scope_name(f"t{i}"))
        sleeper = subprocess.Popen(["sleep", "120"])
        try:
            t0 = time.perf_counter()
            m = Manager.create_systemd(
                "", unit, sleeper.pid, Resources(memory=Memory(max=256 * MiB))
            )
            t1 = time.perf_counter()
            assert read(f"{m.path}/memory.max") == str(256 * MiB)
            m.delete_systemd()
            t2 = time.perf_counter()
            assert not os.path.exists(m.path)
            assert sleeper.wait(30) == -signal.SIGTERM  # stopping the scope killed it
        finally:
            sleeper.kill()
            sleeper.wait(30)
        start_times.append(t1 - t0)
        stop_times.append(t2 - t1)
    with capsys.disabled():
        print(
            f"\n[systemd timing, {n} scopes, emulated VM] create_systemd: "
            f"mean {sum(start_times) / n * 1000:.1f} ms, max {max(start_times) * 1000:.1f} ms; "
            f"delete_systemd: mean {sum(stop_times) / n * 1000:.1f} ms, "
            f"max {max(stop_times) * 1000:.1f} ms"
        )
    assert max(start_times) < 10 and max(stop_times) < 10
