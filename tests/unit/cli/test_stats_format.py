"""`stats` in the CLI: docker's figures (stats_helpers.go) and how they print
(formatter_stats.go), from frames shaped as the daemon sends them."""

from __future__ import annotations

from dockyard.cli import formatting
from dockyard.cli import stats as s

MiB = 1024 * 1024


def frame(total, system, pre_total, pre_system, online=2, percpu=(1, 1), **extra):
    v = {"cpu_stats": {"cpu_usage": {"total_usage": total, "percpu_usage": list(percpu)},
                       "system_cpu_usage": system, "online_cpus": online},
         "precpu_stats": {"cpu_usage": {"total_usage": pre_total},
                          "system_cpu_usage": pre_system},
         "name": "/web", "id": "0123456789abcdef" * 4}
    v.update(extra)
    return v


def test_cpu_percent_is_the_share_of_host_time_times_the_cpus():
    # 0.5 s of CPU while the host's two CPUs ran 2 s: one CPU half busy = 50%
    v = frame(1_500_000_000, 12_000_000_000, 1_000_000_000, 10_000_000_000)
    assert s.cpu_percent_unix(1_000_000_000, 10_000_000_000, v) == 50.0
    # without online_cpus, the per-CPU list's length counts
    v["cpu_stats"]["online_cpus"] = 0
    v["cpu_stats"]["cpu_usage"]["percpu_usage"] = [1, 2, 3, 4]
    assert s.cpu_percent_unix(1_000_000_000, 10_000_000_000, v) == 100.0
    # no movement, or a counter that went back: 0
    assert s.cpu_percent_unix(1_500_000_000, 10_000_000_000, v) == 0.0
    assert s.cpu_percent_unix(1_000_000_000, 12_000_000_000, v) == 0.0


def test_memory_leaves_out_the_inactive_file_cache():
    v1 = {"usage": 10 * MiB, "stats": {"total_inactive_file": 4 * MiB, "inactive_file": 1}}
    assert s.mem_usage_no_cache(v1) == 6 * MiB
    v2 = {"usage": 10 * MiB, "stats": {"inactive_file": 3 * MiB}}
    assert s.mem_usage_no_cache(v2) == 7 * MiB
    # a cache larger than the usage is not subtracted
    assert s.mem_usage_no_cache({"usage": 5, "stats": {"total_inactive_file": 9}}) == 5
    assert s.mem_percent(0, 5) == 0 and s.mem_percent(200, 50) == 25.0


def test_block_io_sums_reads_and_writes_by_the_ops_first_letter():
    blkio = {"io_service_bytes_recursive": [
        {"op": "Read", "value": 4096}, {"op": "Write", "value": 10}, {"op": "read", "value": 1},
        {"op": "write", "value": 2}, {"op": "Total", "value": 99999}, {"op": "", "value": 7}]}
    assert s.block_io(blkio) == (4097, 12)
    assert s.block_io({"io_service_bytes_recursive": None}) == (0, 0)


def test_a_row_prints_as_dockers():
    e = s.Entry("web")
    e.set_statistics(frame(1_500_000_000, 12_000_000_000, 1_000_000_000, 10_000_000_000,
                           memory_stats={"usage": 348160 + 8192, "limit": 64 * MiB,
                                         "stats": {"total_inactive_file": 8192}},
                           blkio_stats={"io_service_bytes_recursive": [
                               {"op": "Read", "value": 1_234_567}]},
                           pids_stats={"current": 3}))
    row = e.row(trunc=True)
    assert vars(row) == {
        "BlockIO": "1.23MB / 0B", "CPUPerc": "50.00%", "Container": "web",
        "ID": "0123456789ab", "MemPerc": "0.52%", "MemUsage": "340KiB / 64MiB",
        "Name": "web", "NetIO": "0B / 0B", "PIDs": "3"}
    assert e.row(trunc=False).ID == "0123456789abcdef" * 4


def test_a_late_row_shows_dashes_until_the_next_frame():
    e = s.Entry("web")
    assert e.row(True).Name == "--"        # nothing yet
    e.set_error("timeout waiting for stats", reset=True)
    row = e.row(True)
    assert (row.CPUPerc, row.MemUsage, row.MemPerc, row.NetIO, row.BlockIO, row.PIDs) == \
        ("--", "-- / --", "--", "--", "--", "--")
    e.set_statistics(frame(2, 2, 1, 1))      # both CPUs busy
    assert e.row(True).CPUPerc == "200.00%"


def test_the_default_table_and_a_custom_format():
    e = s.Entry("web")
    e.set_statistics(frame(0, 0, 0, 0, memory_stats={"usage": 1024, "limit": 2048}))
    rows = [e.row(True)]
    assert formatting.render(s.stats_format("table"), rows, s.HEADER) == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   "
        "BLOCK I/O   PIDS\n"
        "0123456789ab   web       0.00%     1KiB / 2KiB         50.00%    0B / 0B   "
        "0B / 0B     0\n")
    assert formatting.render("table {{.Container}}\t{{.CPUPerc}}", rows, s.HEADER) == (
        "CONTAINER   CPU %\nweb         0.00%\n")
    assert formatting.render("{{.Name}}: {{.MemPerc}}", rows, s.HEADER) == "web: 50.00%\n"
    assert formatting.render("json", rows, s.HEADER).startswith('{"BlockIO":"0B / 0B",')


def test_a_live_redraw_is_docker_28s_escape_sequence():
    assert s.redraw("A\nB\n") == "\033[HA\nB\n\033[HA \033[K\nB \033[K\n \033[K\n\033[J"
