"""stats and top, their pure parts: cgroup readings turned into dockerd's StatsJSON,
the host's CPU time, blkio/io.stat parsing, and ps output cut to a container.

The expected shapes are dockerd 20.10's (the reference response in
shared/reference/engine-api-1.41/container-stats.json and moby's
daemon_unix.go statsV1/statsV2, daemon/top_unix.go).
"""

from __future__ import annotations

import json

import pytest

from dockyard import errdefs
from dockyard.daemon import stats as st
from dockyard.daemon.top import parse_ps_output, validate_ps_args
from dockyard.linux.cgroups import CgroupV1, CgroupV2
from paths import REFERENCE

MiB = 1024 * 1024

V1_RAW = {
    "cpu": {"usage_total": 66017620, "usage_user": 40000000, "usage_kernel": 20000000,
            "percpu": [42685601, 23332019],
            "throttling": {"periods": 12, "throttled_periods": 0, "throttled_time": 0}},
    "memory": {"usage": 720896, "max_usage": 4345856, "limit": 64 * MiB, "failcnt": 0,
               "stat": {"cache": 376832, "rss": 53248, "total_inactive_file": 0,
                        "hierarchical_memory_limit": 64 * MiB, "unknown_key": 5}},
    "pids": {"current": 1, "limit": 50},
    "blkio": {key: [] for key in st.BLKIO_KEYS},
}


def shape(value):
    """A JSON value's keys and types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_v1_frame_has_the_reference_keys_types_and_order():
    frame = st.sample_frame(V1_RAW, False, 1_700_000_000_123_456_789, 1267250000000, 2,
                            8 * 1024 * MiB)
    out = st.stats_json(frame, "2023-11-14T22:13:19.1Z", st.cpu_stats(V1_RAW["cpu"], 1, 2),
                        "/ref-web", "c" * 64)
    reference = json.loads((REFERENCE / "container-stats.json").read_text())
    del reference["networks"]          # containers have no interfaces of their own yet
    assert list(out) == list(reference)
    assert shape(out) == shape(reference)
    assert out["read"] == "2023-11-14T22:13:20.123456789Z"
    assert out["memory_stats"]["limit"] == 64 * MiB
    assert list(out["memory_stats"]["stats"]) == sorted(st.V1_MEMORY_KEYS)
    assert out["memory_stats"]["stats"]["cache"] == 376832
    assert out["memory_stats"]["stats"]["total_rss"] == 0          # absent: reported as 0
    assert "failcnt" not in out["memory_stats"]                    # omitempty
    assert out["pids_stats"] == {"current": 1, "limit": 50}


def test_unlimited_memory_reports_the_machines_and_zero_pids_limit_is_left_out():
    raw = {**V1_RAW, "memory": {**V1_RAW["memory"], "limit": None, "failcnt": 3},
           "pids": {"current": 2, "limit": None}}
    frame = st.sample_frame(raw, False, 0, 1, 2, 3 * 1024 * MiB)
    assert frame["memory_stats"]["limit"] == 3 * 1024 * MiB
    assert frame["memory_stats"]["failcnt"] == 3
    assert frame["pids_stats"] == {"current": 2}


def test_v2_frame_is_dockerds_v2_shape():
    raw = {"cpu": {"usage_total": 1500, "usage_user": 1000, "usage_kernel": 500, "percpu": [],
                   "throttling": {"periods": 3, "throttled_periods": 1, "throttled_time": 7}},
           "memory": {"usage": 4096, "max_usage": 8192, "limit": 2 * MiB, "failcnt": 9,
                      "stat": {"anon": 1024, "inactive_file": 512}},
           "memory_events": {"max": 9, "oom": 2},
           "blkio": {"io_service_bytes_recursive": [
               {"major": 8, "minor": 0, "op": "read", "value": 10}]}}
    frame = st.sample_frame(raw, True, 0, 5, 1, 8 * 1024 * MiB)
    assert frame["cpu_stats"] == {
        "cpu_usage": {"total_usage": 1500, "usage_in_kernelmode": 500, "usage_in_usermode": 1000},
        "system_cpu_usage": 5, "online_cpus": 1,
        "throttling_data": {"periods": 3, "throttled_periods": 1, "throttled_time": 7}}
    mem = frame["memory_stats"]
    assert list(mem) == ["usage", "stats", "failcnt", "limit"]     # no max_usage on v2
    assert mem["failcnt"] == 2 and list(mem["stats"]) == sorted(st.V2_MEMORY_KEYS)
    blkio = frame["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == raw["blkio"]["io_service_bytes_recursive"]
    assert [blkio[k] for k in st.BLKIO_KEYS[1:]] == [None] * 7


def test_a_container_not_running_gets_the_empty_frame():
    out = st.stats_json(st.empty_frame(), st.ZERO_TIME, st.zero_cpu_stats(), "/x", "i" * 64)
    assert json.dumps(out, separators=(",", ":")) == (
        '{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},'
        '"blkio_stats":{"io_service_bytes_recursive":null,"io_serviced_recursive":null,'
        '"io_queue_recursive":null,"io_service_time_recursive":null,'
        '"io_wait_time_recursive":null,"io_merged_recursive":null,"io_time_recursive":null,'
        '"sectors_recursive":null},"num_procs":0,"storage_stats":{},'
        '"cpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,'
        '"usage_in_usermode":0},"throttling_data":{"periods":0,"throttled_periods":0,'
        '"throttled_time":0}},"precpu_stats":{"cpu_usage":{"total_usage":0,'
        '"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,'
        '"throttled_periods":0,"throttled_time":0}},"memory_stats":{},"name":"/x",'
        '"id":"' + "i" * 64 + '"}')


def test_system_cpu_usage_sums_seven_fields_in_nanoseconds(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 2 30 4000 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    assert st.system_cpu_usage(str(stat)) == (100 + 2 + 30 + 4000 + 5 + 6 + 7) * 10_000_000
    stat.write_text("intr 1 2\n")
    with pytest.raises(ValueError):
        st.system_cpu_usage(str(stat))


def test_machine_memory_is_memtotal_in_bytes(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684332 kB\nMemFree:  1 kB\n")
    assert st.machine_memory(str(meminfo)) == 24684332 * 1024


# --- cgroup files -----------------------------------------------------------------------


def test_v1_blkio_uses_the_throttle_counters_when_the_scheduler_has_none(tmp_path):
    d = tmp_path / "blkio" / "c"
    d.mkdir(parents=True)
    (d / "blkio.io_serviced_recursive").write_text("Total 0\n")
    (d / "blkio.io_service_bytes_recursive").write_text("Total 0\n")
    (d / "blkio.throttle.io_service_bytes").write_text(
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n")
    (d / "blkio.throttle.io_serviced").write_text("8:0 Read 1\n8:0 Write 2\nTotal 3\n")
    s = CgroupV1("/c", mountpoints={"blkio": str(tmp_path / "blkio")}).stats()["blkio"]
    assert s["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192},
        {"major": 8, "minor": 0, "op": "Sync", "value": 0},
        {"major": 8, "minor": 0, "op": "Total", "value": 12288}]
    assert len(s["io_serviced_recursive"]) == 2 and s["sectors_recursive"] == []
    # with scheduler counters, those are the ones
    (d / "blkio.sectors_recursive").write_text("8:0 16\n")
    s = CgroupV1("/c", mountpoints={"blkio": str(tmp_path / "blkio")}).stats()["blkio"]
    assert s["sectors_recursive"] == [{"major": 8, "minor": 0, "op": "", "value": 16}]
    assert s["io_service_bytes_recursive"] == []


def test_v2_io_stat_gives_read_and_write_bytes_and_memory_events(tmp_path):
    c = tmp_path / "c"
    c.mkdir()
    (c / "io.stat").write_text("8:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n"
                               "253:1 rbytes=1 wbytes=2\n")
    (c / "memory.current").write_text("10\n")
    (c / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    s = CgroupV2("/c", mountpoint=str(tmp_path)).stats()
    assert s["blkio"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 512},
        {"major": 253, "minor": 1, "op": "read", "value": 1},
        {"major": 253, "minor": 1, "op": "write", "value": 2}]
    assert s["memory_events"]["oom"] == 1


# --- top ------------------------------------------------------------------------------

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 06:00 ?        00:00:01 /sbin/init
root         812       1  0 06:02 ?        00:00:00 sh -c while true;  do :; done
root         813     812  0 06:02 ?        00:00:00 sleep\u00a0x 100
"""

PS_M = """  PID TTY      STAT   TIME COMMAND
    1 ?        -      0:01 /sbin/init
    - -        Ss     0:01 -
  812 ?        -      0:00 sh
    - -        S      0:00 -
    - -        S      0:00 -
  900 ?        -      0:00 other
    - -        S      0:00 -
"""


def test_top_keeps_the_header_and_the_containers_rows():
    out = parse_ps_output(PS_EF, {812, 813})
    assert out["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    # the last column takes the rest of the line; only ASCII spaces split fields
    assert out["Processes"] == [
        ["root", "812", "1", "0", "06:02", "?", "00:00:00", "sh -c while true; do :; done"],
        ["root", "813", "812", "0", "06:02", "?", "00:00:00", "sleep\u00a0x 100"]]


def test_top_keeps_the_thread_rows_of_the_containers_processes():
    out = parse_ps_output(PS_M, {812})
    assert out["Processes"] == [["812", "?", "-", "0:00", "sh"], ["-", "-", "S", "0:00", "-"],
                                ["-", "-", "S", "0:00", "-"]]


def test_top_errors_are_dockerds():
    with pytest.raises(errdefs.System, match="^Couldn't find PID field in ps output$"):
        parse_ps_output("USER COMMAND\nroot init\n", {1})
    with pytest.raises(errdefs.System, match="^Unexpected pid 'x': strconv.Atoi: parsing "
                                             "\"x\": invalid syntax$"):
        parse_ps_output("PID CMD\nx init\n", {1})
    with pytest.raises(errdefs.System, match='^specifying "comm=PID" is not allowed$'):
        validate_ps_args("-o pid,args -o comm=PID")
    validate_ps_args("-o pid=PID")       # renaming pid itself is allowed
    validate_ps_args("aux")
