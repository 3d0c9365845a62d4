"""The device-side metrics report parser: long and short names, every metric, and clear errors."""

from __future__ import annotations

import ipaddress
import json

import pytest

from functions.device_report import DeviceReport, ReportError, parse_report, parse_report_text
from tests.functions.conftest import EVENTS_DIR


def read(name: str) -> str:
    return (EVENTS_DIR / name).read_text()


def test_a_long_name_report_gives_every_metric() -> None:
    report = parse_report_text(read("device-report-long.json"))

    assert report == DeviceReport(
        report_id=1767225600, version="1.0", tcp_ports=(22, 443), udp_ports=(123,), num_tcp_ports=2,
        num_udp_ports=1, bytes_in=29358693, bytes_out=26642426, packets_in=10013573, packets_out=11382615,
        num_established=2,
        destination_ips=(ipaddress.ip_address("203.0.113.10"), ipaddress.ip_address("2001:db8::7")),
    )


def test_short_names_mean_the_same_as_long_names() -> None:
    long_report = parse_report_text(read("device-report-long.json"))
    short_report = parse_report_text(read("device-report-short.json"))

    assert short_report.report_id == 1767225900
    assert {**vars(short_report), "report_id": 0} == {**vars(long_report), "report_id": 0}


def test_envelope_fields_and_custom_metrics_are_ignored() -> None:
    document = json.loads(read("device-report-short.json"))
    document.update(fg_kind="device-report", fg_device="dev-1", fg_received_ms=1767225900000)

    assert parse_report(document) == parse_report_text(read("device-report-short.json"))


def test_metrics_the_report_leaves_out_are_none() -> None:
    report = parse_report({"header": {"report_id": 7, "version": "1.0"}, "metrics": {}})

    assert report == DeviceReport(report_id=7, version="1.0")


def test_counts_fall_back_to_the_listed_items_without_a_total() -> None:
    report = parse_report({"hed": {"rid": 1, "v": "1.1"}, "met": {
        "tp": {"pts": [{"pt": 80}, {"pt": 80, "if": "wlan0"}, {"pt": 22}]},
        "tc": {"ec": {"cs": [{"rad": "10.0.0.1:1"}, {"rad": "10.0.0.1:2"}]}},
    }})

    assert report.tcp_ports == (22, 80)
    assert report.num_tcp_ports == 3
    assert report.num_established == 2
    assert report.destination_ips == (ipaddress.ip_address("10.0.0.1"),)


@pytest.mark.parametrize(("name", "message"), [
    ("device-report-broken-not-json.json", r"report: not valid JSON"),
    ("device-report-broken-no-header.json", r"^header \(or 'hed'\): required field is missing"),
    ("device-report-broken-report-id.json", r"^hed\.rid: expected a non-negative integer, got '1767225600'"),
    ("device-report-broken-port.json", r"^metrics\.listening_udp_ports\.ports\[0\]\.port: expected a port 0-65535"),
    ("device-report-broken-both-names.json", r"^header\.report_id: given twice, as 'report_id' and 'rid'"),
    ("device-report-broken-remote-addr.json", r"^met\.tc\.ec\.cs\[0\]\.rad: 'gateway\.local' is not an IP address"),
    ("device-report-broken-version.json", r"^header\.version: major version 1 expected, got '2\.0'"),
])
def test_a_broken_report_names_the_field(name: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_report_text(read(name))


@pytest.mark.parametrize(("document", "message"), [
    ([], r"^report: expected an object, got list"),
    ({"header": {"report_id": 1, "version": "1.0"}}, r"^metrics \(or 'met'\): required field is missing"),
    ({"header": {"report_id": True, "version": "1.0"}, "metrics": {}}, r"^header\.report_id: expected a non-negative"),
    ({"header": {"report_id": -1, "version": "1.0"}, "metrics": {}}, r"^header\.report_id: expected a non-negative"),
    ({"header": {"report_id": 1, "version": 1}, "metrics": {}}, r"^header\.version: expected 'major\.minor'"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"ns": {"bo": 1.5}}}, r"^met\.ns\.bo: expected a non-negative integer"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tp": {"pts": {}}}}, r"^met\.tp\.pts: expected an array, got dict"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tp": {"pts": [{"pt": 1, "if": 3}]}}},
     r"^met\.tp\.pts\[0\]\.if: expected a string"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"lp": 1}]}}}},
     r"^met\.tc\.ec\.cs\[0\]\.remote_addr \(or 'rad'\): required field is missing"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"rad": "10.0.0.1:https"}]}}}},
     r"^met\.tc\.ec\.cs\[0\]\.rad: expected 'IPv4 address:port'"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"rad": {"ip": "10.0.0.1"}}]}}}},
     r"^met\.tc\.ec\.cs\[0\]\.rad: expected a string 'address:port', got \{'ip'"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"rad": "[2001:db8::zz]:443"}]}}}},
     r"^met\.tc\.ec\.cs\[0\]\.rad: '2001:db8::zz' is not an IP address"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"rad": "[::1]"}]}}}},
     r"^met\.tc\.ec\.cs\[0\]\.rad: expected '\[IPv6 address\]:port'"),
    ({"hed": {"rid": 1, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"rad": "10.0.0.1:1", "lp": 65536}]}}}},
     r"^met\.tc\.ec\.cs\[0\]\.lp: expected a port"),
])
def test_malformed_fields_are_named(document: object, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_report(document)


def test_bare_addresses_are_accepted() -> None:
    report = parse_report({"hed": {"rid": 1, "v": "1.0"},
                           "met": {"tc": {"ec": {"cs": [{"rad": "2001:db8::1"}, {"rad": "192.0.2.1"}]}}}})

    assert report.destination_ips == (ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1"))
