"""Reference device agent: build a Device Defender device-side metrics report from this host and publish it
to fleetguard's Detect engine over MQTT.

The report is the one Device Defender defines (header report_id and version; listening TCP and UDP ports,
network statistics as deltas since the previous report, established TCP connections), with long or short
field names. On Linux the facts come from /proc/net/{tcp,tcp6,udp,udp6,dev}; elsewhere the sections the
host cannot give are left out, which the engine reads as "not reported" (no datapoint), never as zero.

It publishes to the engine's Basic Ingest topic ``$aws/rules/<rule>/things/<thing>/metrics`` (no
messaging charge). The connection's client id must be the thing name: the rule drops a report whose topic
names another thing. Publishing needs the AWS IoT Device SDK v2 (``pip install awsiotsdk``); ``--dry-run``
prints the report instead and needs nothing beyond the standard library.

    python publish_metrics.py --thing-name dev-1 --rule-name fleetguard_device_metrics \
        --endpoint abc123-ats.iot.us-east-1.amazonaws.com --cert dev-1.pem.crt --key dev-1.pem.key \
        --ca AmazonRootCA1.pem [--interval 300] [--short-names] [--once]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_VERSION = "1.0"
MIN_INTERVAL_S = 300
"""Device Defender's minimum reporting interval; the engine's windows assume no faster cadence."""
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"
LOOPBACK_INTERFACE = "lo"

# Long name -> short name, as the report format defines them.
SHORT_NAMES = {
    "header": "hed", "report_id": "rid", "version": "v", "metrics": "met",
    "listening_tcp_ports": "tp", "listening_udp_ports": "up", "ports": "pts", "port": "pt", "interface": "if",
    "total": "t", "network_stats": "ns", "bytes_in": "bi", "bytes_out": "bo", "packets_in": "pi",
    "packets_out": "po", "tcp_connections": "tc", "established_connections": "ec", "connections": "cs",
    "remote_addr": "rad", "local_port": "lp", "local_interface": "li",
}


@dataclass(frozen=True)
class Socket:
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str
    """The kernel's hex TCP state (0A listening, 01 established); UDP sockets have 07."""


@dataclass(frozen=True)
class InterfaceCounters:
    bytes_in: int
    packets_in: int
    bytes_out: int
    packets_out: int


@dataclass
class HostFacts:
    """What the host could tell; None where it could not (that section is left out of the report)."""

    tcp: list[Socket] | None = None
    udp: list[Socket] | None = None
    counters: InterfaceCounters | None = None


# --- reading /proc ----------------------------------------------------------------------------------------


def _hex_address(text: str) -> tuple[str, int]:
    """``0100007F:0050`` (IPv4) or 32 hex digits ``:port`` (IPv6): 32-bit words in host (little-endian) order."""
    address_hex, port_hex = text.split(":")
    raw = bytes.fromhex(address_hex)
    words = b"".join(raw[index:index + 4][::-1] for index in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port_hex, 16)


def parse_proc_sockets(text: str) -> list[Socket]:
    """The sockets of one /proc/net/{tcp,tcp6,udp,udp6} table."""
    sockets = []
    for line in text.splitlines()[1:]:
        columns = line.split()
        if len(columns) < 4:
            continue
        local_address, local_port = _hex_address(columns[1])
        remote_address, remote_port = _hex_address(columns[2])
        sockets.append(Socket(local_address, local_port, remote_address, remote_port, columns[3].upper()))
    return sockets


def parse_proc_dev(text: str) -> InterfaceCounters:
    """Counters summed over every interface but loopback (traffic to the host itself is not the network's)."""
    totals = [0, 0, 0, 0]
    for line in text.splitlines()[2:]:
        name, _, values = line.partition(":")
        if name.strip() == LOOPBACK_INTERFACE or not values.strip():
            continue
        numbers = [int(value) for value in values.split()]
        for index, column in enumerate((0, 1, 8, 9)):  # rx bytes, rx packets, tx bytes, tx packets
            totals[index] += numbers[column]
    return InterfaceCounters(*totals)


def _read_tables(proc: Path, names: Iterable[str]) -> list[Socket] | None:
    sockets, found = [], False
    for name in names:
        try:
            sockets += parse_proc_sockets((proc / "net" / name).read_text())
            found = True
        except OSError:
            continue
    return sockets if found else None


def collect(proc: Path = Path("/proc")) -> HostFacts:
    """The host's sockets and interface counters; sections this host cannot give stay None."""
    try:
        counters: InterfaceCounters | None = parse_proc_dev((proc / "net" / "dev").read_text())
    except OSError:
        counters = None
    return HostFacts(tcp=_read_tables(proc, ("tcp", "tcp6")), udp=_read_tables(proc, ("udp", "udp6")),
                     counters=counters)


# --- the report ----------------------------------------------------------------------------------------------


def _delta(current: int, previous: int) -> int:
    # A counter that went down was reset (reboot, interface re-created): count from zero.
    return current - previous if current >= previous else current


def _port_list(sockets: Iterable[Socket]) -> dict[str, Any]:
    unique = sorted({(socket.local_port, socket.local_address) for socket in sockets})
    ports = [{"port": port, "interface": address} for port, address in unique]
    return {"ports": ports, "total": len(ports)}


def _remote(socket: Socket) -> str:
    address = ipaddress.ip_address(socket.remote_address)
    if address.version == 6:
        return f"[{address}]:{socket.remote_port}"
    return f"{address}:{socket.remote_port}"


def _shorten(value: Any) -> Any:
    if isinstance(value, dict):
        return {SHORT_NAMES.get(key, key): _shorten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten(item) for item in value]
    return value


def build_report(report_id: int, facts: HostFacts, previous: InterfaceCounters | None = None, *,
                 short_names: bool = False) -> dict[str, Any]:
    """A valid device-side metrics report. Pure: the same facts always give the same report.

    Network statistics need the previous report's counters (they are deltas); without them the section is
    left out rather than reporting everything since boot as one interval's traffic.
    """
    metrics: dict[str, Any] = {}
    if facts.tcp is not None:
        metrics["listening_tcp_ports"] = _port_list(s for s in facts.tcp if s.state == TCP_LISTEN)
        established = sorted((s for s in facts.tcp if s.state == TCP_ESTABLISHED),
                             key=lambda s: (s.local_port, s.remote_address, s.remote_port))
        connections = [{"remote_addr": _remote(s), "local_port": s.local_port, "local_interface": s.local_address}
                       for s in established]
        metrics["tcp_connections"] = {"established_connections": {"connections": connections,
                                                                  "total": len(connections)}}
    if facts.udp is not None:
        # A UDP socket with no remote end receives from anyone: that is what listening means for UDP.
        metrics["listening_udp_ports"] = _port_list(s for s in facts.udp if s.remote_port == 0)
    if facts.counters is not None and previous is not None:
        now, before = facts.counters, previous
        metrics["network_stats"] = {
            "bytes_in": _delta(now.bytes_in, before.bytes_in), "bytes_out": _delta(now.bytes_out, before.bytes_out),
            "packets_in": _delta(now.packets_in, before.packets_in),
            "packets_out": _delta(now.packets_out, before.packets_out),
        }
    report = {"header": {"report_id": report_id, "version": REPORT_VERSION}, "metrics": metrics}
    return _shorten(report) if short_names else report


def metrics_topic(rule_name: str, thing_name: str) -> str:
    """The engine's Basic Ingest topic for one thing."""
    return f"$aws/rules/{rule_name}/things/{thing_name}/metrics"


def next_report_id(previous: int | None, now_s: float) -> int:
    """Epoch seconds, as Device Defender recommends, and always above the previous id (the engine ignores
    a report whose id is not newer)."""
    candidate = int(now_s)
    return candidate if previous is None or candidate > previous else previous + 1


# --- publishing -------------------------------------------------------------------------------------------------


def _connect(args: argparse.Namespace) -> Any:
    try:
        from awscrt import mqtt  # type: ignore[import-not-found]  # noqa: PLC0415 - optional dependency
        from awsiot import mqtt_connection_builder  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        sys.exit("publishing needs the AWS IoT Device SDK v2: pip install awsiotsdk (or use --dry-run)")
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=args.endpoint, cert_filepath=args.cert, pri_key_filepath=args.key, ca_filepath=args.ca,
        client_id=args.thing_name, clean_session=True, keep_alive_secs=60)
    connection.connect().result()
    return connection, mqtt.QoS.AT_LEAST_ONCE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--thing-name", required=True, help="also the MQTT client id")
    parser.add_argument("--rule-name", required=True, help="the engine's device metrics rule (a stack output)")
    parser.add_argument("--endpoint", help="the account's iot:Data-ATS endpoint")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    parser.add_argument("--interval", type=int, default=MIN_INTERVAL_S, help=f"seconds, at least {MIN_INTERVAL_S}")
    parser.add_argument("--short-names", action="store_true", help="smaller reports, same meaning")
    parser.add_argument("--once", action="store_true", help="send one report and exit")
    parser.add_argument("--dry-run", action="store_true", help="print reports instead of publishing")
    args = parser.parse_args(argv)
    if args.interval < MIN_INTERVAL_S:
        parser.error(f"--interval: at least {MIN_INTERVAL_S} seconds")
    if not args.dry_run and not all((args.endpoint, args.cert, args.key, args.ca)):
        parser.error("--endpoint, --cert, --key and --ca are needed to publish (or use --dry-run)")
    connection, qos = (None, None) if args.dry_run else _connect(args)
    topic = metrics_topic(args.rule_name, args.thing_name)
    previous: InterfaceCounters | None = None
    report_id: int | None = None
    while True:
        facts = collect()
        report_id = next_report_id(report_id, time.time())
        payload = json.dumps(build_report(report_id, facts, previous, short_names=args.short_names))
        previous = facts.counters
        if connection is None:
            print(f"{topic} {payload}", flush=True)
        else:
            connection.publish(topic=topic, payload=payload, qos=qos)[0].result()
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
