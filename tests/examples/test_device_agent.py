"""The reference device agent builds reports the engine accepts, from /proc tables or from nothing."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from examples.device_agent.publish_metrics import (
    HostFacts,
    InterfaceCounters,
    build_report,
    collect,
    main,
    metrics_topic,
    next_report_id,
    parse_proc_dev,
    parse_proc_sockets,
)
from functions.device_report import parse_report

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
TCP = HEADER + (
    "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
    "   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
    "   2: 0F02000A:C738 0A71000C:22B3 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n"
    "   3: 0F02000A:C73A 0A71000C:0050 06 00000000:00000000 00:00000000 00000000     0        0 4 1\n"
)
TCP6 = HEADER + (
    "   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 5 1\n"
    "   1: B80D0120000000000000000001000000:D431 B80D0120000000000000000007000000:01BB 01 0:0 0:0 0 0 0 6 1\n"
)
UDP = HEADER + (
    "   0: 00000000:007B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 7 2\n"
    "   1: 0F02000A:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 8 2\n"
)
DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier"
    " compressed\n"
    "    lo: 9000 90 0 0 0 0 0 0 9000 90 0 0 0 0 0 0\n"
    "  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
    " wlan0: 300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0\n"
)


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    (tmp_path / "net").mkdir()
    for name, text in {"tcp": TCP, "tcp6": TCP6, "udp": UDP, "dev": DEV}.items():
        (tmp_path / "net" / name).write_text(text)
    return tmp_path


def test_proc_tables_are_decoded_in_host_byte_order() -> None:
    sockets = parse_proc_sockets(TCP + TCP6.split("\n", 1)[1])

    assert [(s.local_address, s.local_port, s.state) for s in sockets][:3] == [
        ("0.0.0.0", 22, "0A"), ("127.0.0.1", 8080, "0A"), ("10.0.2.15", 51000, "01")]
    assert (sockets[2].remote_address, sockets[2].remote_port) == ("12.0.113.10", 8883)
    assert (sockets[5].local_address, sockets[5].remote_address) == ("2001:db8::1", "2001:db8::7")


def test_interface_counters_leave_out_loopback() -> None:
    assert parse_proc_dev(DEV) == InterfaceCounters(bytes_in=1300, packets_in=13, bytes_out=2400, packets_out=24)


def test_a_report_from_proc_is_one_the_engine_accepts(proc: Path) -> None:
    facts = collect(proc)
    previous = InterfaceCounters(bytes_in=300, packets_in=3, bytes_out=400, packets_out=4)

    report = parse_report(build_report(1767225600, facts, previous))

    assert report.tcp_ports == (22, 443, 8080)
    assert report.udp_ports == (123,)  # the socket with a remote end is not listening
    assert report.num_established == 2
    assert report.destination_ips == (ipaddress.ip_address("12.0.113.10"), ipaddress.ip_address("2001:db8::7"))
    assert (report.bytes_in, report.bytes_out, report.packets_in, report.packets_out) == (1000, 2000, 10, 20)


def test_short_names_give_the_same_report(proc: Path) -> None:
    facts = collect(proc)
    previous = InterfaceCounters(0, 0, 0, 0)

    short = build_report(7, facts, previous, short_names=True)

    assert set(short) == {"hed", "met"}
    assert set(short["met"]) == {"tp", "up", "tc", "ns"}
    assert parse_report(short) == parse_report(build_report(7, facts, previous))


def test_without_a_previous_sample_or_proc_sections_are_left_out(tmp_path: Path) -> None:
    assert "network_stats" not in build_report(1, collect(Path(__file__).parent))["metrics"]
    report = parse_report(build_report(1, collect(tmp_path), InterfaceCounters(0, 0, 0, 0)))

    assert (report.tcp_ports, report.udp_ports, report.bytes_out, report.num_established) == (None, None, None, None)


def test_a_counter_reset_counts_from_zero() -> None:
    facts = HostFacts(counters=InterfaceCounters(bytes_in=50, packets_in=5, bytes_out=70, packets_out=7))
    previous = InterfaceCounters(bytes_in=900, packets_in=9, bytes_out=60, packets_out=6)

    stats = build_report(2, facts, previous)["metrics"]["network_stats"]

    assert stats == {"bytes_in": 50, "bytes_out": 10, "packets_in": 5, "packets_out": 1}


def test_report_ids_always_grow() -> None:
    assert next_report_id(None, 1767225600.9) == 1767225600
    assert next_report_id(1767225600, 1767225600.2) == 1767225601
    assert next_report_id(1767225601, 1767225900.0) == 1767225900


def test_the_topic_is_the_rules_basic_ingest_topic() -> None:
    topic = metrics_topic("fleetguard_device_metrics", "dev-1")

    assert topic == "$aws/rules/fleetguard_device_metrics/things/dev-1/metrics"


def test_a_dry_run_prints_one_valid_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--thing-name", "dev-1", "--rule-name", "metrics_rule", "--dry-run", "--once", "--short-names"]) == 0

    topic, payload = capsys.readouterr().out.strip().split(" ", 1)
    assert topic == "$aws/rules/metrics_rule/things/dev-1/metrics"
    assert parse_report(json.loads(payload)).version == "1.0"


def test_publishing_needs_a_connection_and_a_sane_interval() -> None:
    with pytest.raises(SystemExit):
        main(["--thing-name", "dev-1", "--rule-name", "r", "--once"])
    with pytest.raises(SystemExit):
        main(["--thing-name", "dev-1", "--rule-name", "r", "--dry-run", "--interval", "60"])
