"""dockyard.timefilter: `until`/`since` values read as moby's GetTimestamp reads them."""

import pytest

from dockyard import errdefs
from dockyard.timefilter import (DurationError, TimeError, get_timestamp, parse_duration,
                                 parse_timestamps, rfc3339_ns, until_ns, until_seconds)

NOW = 1_700_000_000 * 10**9 + 123  # 2023-11-14T22:13:20.000000123Z


@pytest.mark.parametrize("text, ns", [
    ("1h", 3600 * 10**9), ("1h30m", 5400 * 10**9), ("1.5h", 5400 * 10**9), ("10m", 600 * 10**9),
    (".5s", 500_000_000), ("-1.5ms", -1_500_000), ("1µs", 1000), ("1us", 1000), ("3ns", 3),
    ("0", 0), ("+0", 0), ("9223372036854775807ns", 9223372036854775807),
])
def test_go_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'), ("x", 'time: invalid duration "x"'),
    ("10", 'time: missing unit in duration "10"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    (".s", 'time: invalid duration ".s"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
])
def test_bad_durations(text, message):
    with pytest.raises(DurationError) as e:
        parse_duration(text)
    assert str(e.value) == message


@pytest.mark.parametrize("value, expected", [
    # durations count back from now, in whole seconds
    ("1h", "1699996400"), ("1000h", str(1_700_000_000 - 3_600_000)), ("-10m", "1700000600"),
    ("0s", "1700000000"),
    # a bare 0 is a unix time, as are other plain numbers
    ("0", "0"), ("10", "10"), ("1700000000.5", "1700000000.5"),
    # RFC 3339, with a zone...
    ("2023-11-14T22:13:20Z", "1700000000.000000000"),
    ("2023-11-14T22:13:20.5+01:00", "1699996400.500000000"),
    ("2023-11-14T22:13:20,25Z", "1700000000.250000000"),
    ("2023-11-14T22Z", "1699999200.000000000"),
    ("2023-11-14T22:13-02:00", "1700007180.000000000"),
    ("2023-11-14Z", "1699920000.000000000"),
    ("2023-11-14T22:13:20.123456789123Z", "1700000000.123456789"),
    # ... and without one (the daemon's zone: UTC here)
    ("2023-11-14", "1699920000.000000000"),
    ("2023-11-14T22", "1699999200.000000000"),
    ("2023-11-14T22:13", "1699999980.000000000"),
    ("2023-11-14T22:13:20", "1700000000.000000000"),
    ("2023-11-14T2:13:20", "1699928000.000000000"),  # Go reads a one-digit hour
])
def test_get_timestamp(value, expected):
    assert get_timestamp(value, NOW, local_offset=0) == expected


def test_times_without_a_zone_are_local():
    assert get_timestamp("2023-11-14T22:13:20", NOW, local_offset=3600) == "1699996400.000000000"
    assert get_timestamp("2023-11-14T22:13:20Z", NOW, local_offset=3600) == "1700000000.000000000"


@pytest.mark.parametrize("value, message", [
    ("garbage", 'failed to parse value as time or duration: "garbage"'),
    ("1e5", 'failed to parse value as time or duration: "1e5"'),
    ("5.", 'failed to parse value as time or duration: "5."'),
    ("", 'failed to parse value as time or duration: ""'),
    ("a\tb", 'failed to parse value as time or duration: "a\\tb"'),
    # with a "-" it was meant as a date: Go's parse error says why not
    ("2023-13-01", 'parsing time "2023-13-01": month out of range'),
    ("2023-02-29", 'parsing time "2023-02-29": day out of range'),
    ("2023-11-14T24:00", 'parsing time "2023-11-14T24:00": hour out of range'),
    ("2023-11-14T22:60", 'parsing time "2023-11-14T22:60": minute out of range'),
    ("2023-11-14x", 'parsing time "2023-11-14x": extra text: "x"'),
    ("2023-1-14", 'parsing time "2023-1-14" as "2006-01-02": cannot parse "1-14" as "01"'),
    ("23-11-14", 'parsing time "23-11-14" as "2006-01-02": cannot parse "23-11-14" as "2006"'),
    ("2023-11-14T22:13:20z", 'parsing time "2023-11-14T22:13:20z" as '
                             '"2006-01-02T15:04:05Z07:00": cannot parse "z" as "Z07:00"'),
    ("2023-11/14", 'parsing time "2023-11/14" as "2006-01-02": cannot parse "/14" as "-"'),
    ("2023/11/14", 'failed to parse value as time or duration: "2023/11/14"'),
])
def test_get_timestamp_errors(value, message):
    with pytest.raises(TimeError) as e:
        get_timestamp(value, NOW, local_offset=0)
    assert str(e.value) == message


def test_errors_are_answered_with_500_like_dockerds():
    from dockyard.api.errors import status_of
    assert isinstance(TimeError("x"), errdefs.System) and status_of(TimeError("x")) == 500


def test_parse_timestamps_and_until():
    assert parse_timestamps("1700000000.5") == (1700000000, 500_000_000)
    assert parse_timestamps("1700000000.000000001") == (1700000000, 1)
    assert parse_timestamps("", 7) == (7, 0)
    assert until_ns("1h", NOW) == 1_699_996_400 * 10**9
    assert until_ns("2023-11-14T22:13:20.25Z", NOW) == 1_700_000_000_250_000_000
    assert until_seconds("1700000000.5", NOW) == 1_700_000_000.5
    assert until_seconds("10m") <= until_seconds("1m")  # defaults to the clock


def test_rfc3339_ns():
    assert rfc3339_ns("2023-11-14T22:13:20.508709727Z") == 1_700_000_000_508_709_727
    assert rfc3339_ns("2023-11-14T23:13:20+01:00") == 1_700_000_000 * 10**9
    assert rfc3339_ns("1970-01-01T00:00:00Z") == 0
    assert rfc3339_ns("") == rfc3339_ns("not a time") == 0
    assert rfc3339_ns("0001-01-01T00:00:00Z") == -62135596800 * 10**9
