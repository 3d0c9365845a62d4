"""Parse a device-side metrics report (Device Defender's JSON report format) into a typed value.

Devices publish the same report they would send to Device Defender: a header (``report_id``, a number that
grows with every report, and ``version`` "1.0") and metrics (listening TCP and UDP ports, network
statistics as deltas since the previous report, established TCP connections). Every field has a long and
a short name (``header``/``hed``, ``report_id``/``rid`` ...); a report may use either in any object, but
not both for the same field. Custom metrics (``custom_metrics``/``cmet``) are accepted and ignored: the
engine does not evaluate them.

A malformed report raises :class:`ReportError` naming the field by the path the report used, so the
dead-letter record says what the device sent wrong.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SUPPORTED_MAJOR_VERSION: Final = 1
MAX_PORT: Final = 65535
_VERSION_PATTERN: Final = re.compile(r"([0-9]+)\.([0-9]+)")

# Long name -> short name, per object of the report.
_ROOT: Final = {"header": "hed", "metrics": "met", "custom_metrics": "cmet"}
_HEADER: Final = {"report_id": "rid", "version": "v"}
_METRICS: Final = {"listening_tcp_ports": "tp", "listening_udp_ports": "up", "network_stats": "ns",
                   "tcp_connections": "tc"}
_PORT_LIST: Final = {"ports": "pts", "total": "t"}
_PORT: Final = {"port": "pt", "interface": "if"}
_NETWORK_STATS: Final = {"bytes_in": "bi", "bytes_out": "bo", "packets_in": "pi", "packets_out": "po"}
_TCP_CONNECTIONS: Final = {"established_connections": "ec"}
_ESTABLISHED: Final = {"connections": "cs", "total": "t"}
_CONNECTION: Final = {"remote_addr": "rad", "local_port": "lp", "local_interface": "li"}


class ReportError(ValueError):
    """The device-side metrics report is malformed; the text names the field."""


@dataclass(frozen=True)
class DeviceReport:
    """One device-side metrics report. A metric the device did not report is None (no datapoint)."""

    report_id: int
    version: str
    tcp_ports: tuple[int, ...] | None = None
    """Listening TCP ports, sorted, each once."""
    udp_ports: tuple[int, ...] | None = None
    num_tcp_ports: int | None = None
    """The report's total, or the number of ports listed when it gives none."""
    num_udp_ports: int | None = None
    bytes_in: int | None = None
    """Network statistics: deltas since the device's previous report."""
    bytes_out: int | None = None
    packets_in: int | None = None
    packets_out: int | None = None
    num_established: int | None = None
    """Established TCP connections: the report's total, or the number listed when it gives none."""
    destination_ips: tuple[IpAddress, ...] | None = None
    """Remote addresses of the established connections (ports dropped), sorted, each once."""


def parse_report_text(text: str | bytes) -> DeviceReport:
    """Parse the JSON text of a report."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"report: not valid JSON ({error})") from None
    return parse_report(document)


def parse_report(document: object) -> DeviceReport:
    """Parse a decoded report. Keys the format does not define (such as the stream's ``fg_`` envelope
    fields) are ignored."""
    root = _object(document, "report")
    header = _object(_required(root, _ROOT, "header", ""), _path(root, _ROOT, "header", ""))
    header_path = _path(root, _ROOT, "header", "")
    metrics_path = _path(root, _ROOT, "metrics", "")
    metrics = _object(_required(root, _ROOT, "metrics", ""), metrics_path)
    version = _required(header, _HEADER, "version", header_path)
    match = _VERSION_PATTERN.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise ReportError(f"{_path(header, _HEADER, 'version', header_path)}: expected 'major.minor' such as "
                          f"'1.0', got {version!r}")
    if int(match.group(1)) != SUPPORTED_MAJOR_VERSION:
        raise ReportError(f"{_path(header, _HEADER, 'version', header_path)}: major version "
                          f"{SUPPORTED_MAJOR_VERSION} expected, got {version!r}")
    tcp = _port_list(metrics, "listening_tcp_ports", metrics_path)
    udp = _port_list(metrics, "listening_udp_ports", metrics_path)
    stats = _network_stats(metrics, metrics_path)
    connections = _established(metrics, metrics_path)
    return DeviceReport(
        report_id=_non_negative(_required(header, _HEADER, "report_id", header_path),
                                _path(header, _HEADER, "report_id", header_path)),
        version=version,
        tcp_ports=tcp[0] if tcp else None,
        num_tcp_ports=tcp[1] if tcp else None,
        udp_ports=udp[0] if udp else None,
        num_udp_ports=udp[1] if udp else None,
        bytes_in=stats.get("bytes_in"),
        bytes_out=stats.get("bytes_out"),
        packets_in=stats.get("packets_in"),
        packets_out=stats.get("packets_out"),
        num_established=connections[1] if connections else None,
        destination_ips=connections[0] if connections else None,
    )


def _port_list(metrics: Mapping[str, Any], long_name: str, parent: str) -> tuple[tuple[int, ...], int] | None:
    section = _optional(metrics, _METRICS, long_name, parent)
    if section is None:
        return None
    path = _path(metrics, _METRICS, long_name, parent)
    listing = _object(section, path)
    ports_path = _path(listing, _PORT_LIST, "ports", path)
    entries = _array(_or_empty(_optional(listing, _PORT_LIST, "ports", path)), ports_path)
    ports: set[int] = set()
    for index, entry in enumerate(entries):
        item_path = f"{ports_path}[{index}]"
        item = _object(entry, item_path)
        port = _required(item, _PORT, "port", item_path)
        if not _is_int(port) or not 0 <= port <= MAX_PORT:
            raise ReportError(f"{_path(item, _PORT, 'port', item_path)}: expected a port 0-{MAX_PORT}, "
                              f"got {port!r}")
        interface = _optional(item, _PORT, "interface", item_path)
        if interface is not None and not isinstance(interface, str):
            raise ReportError(f"{_path(item, _PORT, 'interface', item_path)}: expected a string, "
                              f"got {interface!r}")
        ports.add(port)
    total = _optional(listing, _PORT_LIST, "total", path)
    count = len(entries) if total is None else _non_negative(total, _path(listing, _PORT_LIST, "total", path))
    return tuple(sorted(ports)), count


def _network_stats(metrics: Mapping[str, Any], parent: str) -> dict[str, int]:
    section = _optional(metrics, _METRICS, "network_stats", parent)
    if section is None:
        return {}
    path = _path(metrics, _METRICS, "network_stats", parent)
    stats = _object(section, path)
    values = {}
    for long_name in _NETWORK_STATS:
        value = _optional(stats, _NETWORK_STATS, long_name, path)
        if value is not None:
            values[long_name] = _non_negative(value, _path(stats, _NETWORK_STATS, long_name, path))
    return values


def _established(metrics: Mapping[str, Any], parent: str) -> tuple[tuple[IpAddress, ...], int] | None:
    section = _optional(metrics, _METRICS, "tcp_connections", parent)
    if section is None:
        return None
    path = _path(metrics, _METRICS, "tcp_connections", parent)
    tcp_connections = _object(section, path)
    established_path = _path(tcp_connections, _TCP_CONNECTIONS, "established_connections", path)
    established = _optional(tcp_connections, _TCP_CONNECTIONS, "established_connections", path)
    if established is None:
        return None
    listing = _object(established, established_path)
    connections_path = _path(listing, _ESTABLISHED, "connections", established_path)
    entries = _array(_or_empty(_optional(listing, _ESTABLISHED, "connections", established_path)), connections_path)
    addresses: set[IpAddress] = set()
    for index, entry in enumerate(entries):
        item_path = f"{connections_path}[{index}]"
        item = _object(entry, item_path)
        remote = _required(item, _CONNECTION, "remote_addr", item_path)
        address = _remote_address(remote) if isinstance(remote, str) else None
        if address is None:
            raise ReportError(f"{_path(item, _CONNECTION, 'remote_addr', item_path)}: {_address_problem(remote)}")
        addresses.add(address)
        local_port = _optional(item, _CONNECTION, "local_port", item_path)
        if local_port is not None and not (_is_int(local_port) and 0 <= local_port <= MAX_PORT):
            raise ReportError(f"{_path(item, _CONNECTION, 'local_port', item_path)}: expected a port "
                              f"0-{MAX_PORT}, got {local_port!r}")
    total = _optional(listing, _ESTABLISHED, "total", established_path)
    count = len(entries) if total is None else _non_negative(
        total, _path(listing, _ESTABLISHED, "total", established_path))
    return tuple(sorted(addresses, key=lambda address: (address.version, address))), count


def _remote_address(value: str) -> IpAddress | None:
    """``ip:port`` for IPv4, ``[ip]:port`` for IPv6, or a bare address; None when it is none of them."""
    host = value
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        if not port.isdigit():
            return None
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            return None
    return _ip_address(host)


@functools.lru_cache(maxsize=8192)
def _ip_address(host: str) -> IpAddress | None:
    """Cached: a fleet's devices talk to few peers, and parsing an address costs more than the rest of a
    report."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _address_problem(value: object) -> str:
    if not isinstance(value, str):
        return f"expected a string 'address:port', got {value!r}"
    host = value
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        if not port.isdigit():
            return f"expected '[IPv6 address]:port', got {value!r}"
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            return f"expected 'IPv4 address:port', got {value!r}"
    return f"{host!r} is not an IP address"


# --- fields by long or short name ------------------------------------------------------------------------


def _key(obj: Mapping[str, Any], names: Mapping[str, str], long_name: str, parent: str) -> str | None:
    """The key the report uses for a field (long or short), or None when absent."""
    short_name = names[long_name]
    has_long, has_short = long_name in obj, short_name in obj
    if has_long and has_short:
        raise ReportError(f"{_join(parent, long_name)}: given twice, as {long_name!r} and {short_name!r}")
    if has_long:
        return long_name
    return short_name if has_short else None


def _path(obj: Mapping[str, Any], names: Mapping[str, str], long_name: str, parent: str) -> str:
    return _join(parent, _key(obj, names, long_name, parent) or long_name)


def _optional(obj: Mapping[str, Any], names: Mapping[str, str], long_name: str, parent: str) -> Any:
    key = _key(obj, names, long_name, parent)
    return None if key is None else obj[key]


def _required(obj: Mapping[str, Any], names: Mapping[str, str], long_name: str, parent: str) -> Any:
    value = _optional(obj, names, long_name, parent)
    if value is None:
        raise ReportError(f"{_join(parent, long_name)} (or {names[long_name]!r}): required field is missing")
    return value


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _non_negative(value: object, path: str) -> int:
    if not _is_int(value) or not isinstance(value, int) or value < 0:
        raise ReportError(f"{path}: expected a non-negative integer, got {value!r}")
    return value


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _or_empty(value: object) -> object:
    return [] if value is None else value


def _array(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ReportError(f"{path}: expected an array, got {type(value).__name__}")
    return value
