"""Typed, validated stack settings: the only place that reads Pulumi config.

``load_settings`` turns the stack's ``fleetguard:*`` config into frozen dataclasses, collecting every
mistake (key path, bad value, what is allowed) and raising one ``ConfigError`` before any resource is
registered. Components receive these values; they never read config themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import config as runtime_config

from settings.audit import AuditSettings, parse_audit
from settings.detect import DetectSettings, parse_detect
from settings.facts import ESCALATION_STAGES_TAG_KEY, ROLE_TAG_KEY
from settings.fleet import FleetSettings, parse_fleet
from settings.quarantine import QuarantineSettings, parse_quarantine
from settings.reader import ConfigError, KeySchema, Node, Problems, root
from settings.response import IncidentResponseSettings, parse_incident_response
from settings.security_hub import SecurityHubSettings, parse_security_hub
from settings.tunnel import check_tunnel_has_runbook

NAMESPACE = "fleetguard"
CLASSIC_REGION_KEY = "aws:region"
NATIVE_REGION_KEY = "aws-native:region"
ENVIRONMENT_PATTERN = r"[a-z][a-z0-9-]{0,15}"
TAG_KEY_PATTERN = r"[\w.:/=+@ -]{1,128}"


@dataclass(frozen=True)
class AlertSettings:
    """The Device Defender alert topic and its key."""

    key_deletion_window_days: int


@dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated."""

    environment: str
    owner: str
    tags: dict[str, str]
    """Tags every taggable resource gets: fleetguard's own plus the stack's ``fleetguard:tags``."""
    alerts: AlertSettings
    audit: AuditSettings
    detect: DetectSettings
    quarantine: QuarantineSettings
    incident_response: IncidentResponseSettings
    security_hub: SecurityHubSettings
    fleet: FleetSettings


TOP_LEVEL_KEYS = ("environment", "owner", "tags", "alerts", "audit", "detect", "quarantine", "incidentResponse",
                  "securityHub", "fleet")


def load_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate ``raw`` (config key without namespace -> decoded value) into ``Settings``."""
    problems = Problems()
    settings = _read(raw, problems)
    problems.raise_if_any()
    return settings


def describe_config(samples: Iterable[Mapping[str, Any]]) -> dict[str, KeySchema]:
    """Every key the validator reads, with type, default and allowed values, gathered by validating
    ``samples`` (the shipped stacks and an empty config reach every key)."""
    schema: dict[str, KeySchema] = {}
    for sample in samples:
        problems = Problems()
        _read(sample, problems)
        for path, entry in problems.schema.items():
            schema.setdefault(path, entry)
    return schema


def _read(raw: Mapping[str, Any], problems: Problems) -> Settings:
    config = dict(raw)
    for key in config:
        if key not in TOP_LEVEL_KEYS:
            problems.add(f"{NAMESPACE}:{key}", f"unknown key; expected one of {', '.join(TOP_LEVEL_KEYS)}")

    def node(key: str) -> Node:
        return root(config, key, problems, NAMESPACE)

    environment = node("environment").required_string(pattern=ENVIRONMENT_PATTERN)
    owner = node("owner").required_string(min_length=1)
    extra_tags = node("tags").string_map()
    for key in extra_tags:
        if not re.fullmatch(TAG_KEY_PATTERN, key) or key.startswith("aws:"):
            problems.add(f"{NAMESPACE}:tags.{key}", "invalid tag key (1-128 characters, not starting with aws:)")
        elif key in (ROLE_TAG_KEY, ESCALATION_STAGES_TAG_KEY):
            problems.add(f"{NAMESPACE}:tags.{key}", "reserved: fleetguard sets this tag itself, on the resources "
                                                    "the policy pack recognises by it")
    alerts = node("alerts").mapping(allowed_keys=("keyDeletionWindowDays",))
    detect = parse_detect(node("detect"), environment or "<environment>")
    settings = Settings(
        environment=environment,
        owner=owner,
        tags={"Project": NAMESPACE, "Environment": environment, "Owner": owner, **extra_tags},
        alerts=AlertSettings(
            key_deletion_window_days=alerts.child("keyDeletionWindowDays").integer(30, minimum=7, maximum=30) or 30,
        ),
        audit=parse_audit(node("audit")),
        detect=detect,
        quarantine=parse_quarantine(node("quarantine")),
        incident_response=parse_incident_response(node("incidentResponse"), environment or "<environment>"),
        security_hub=parse_security_hub(node("securityHub")),
        fleet=parse_fleet(node("fleet"), detect_enabled=detect.device_defender),
    )
    response = settings.incident_response
    check_tunnel_has_runbook(
        settings.quarantine.tunnel, response.incident_manager.enabled or response.ops_center.enabled,
        f"{NAMESPACE}:quarantine.tunnel", problems,
    )
    return settings


def read_stack_config(values: Mapping[str, str]) -> dict[str, Any]:
    """Decode the engine's ``fleetguard:*`` config strings (structured values arrive as JSON text)."""
    decoded: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    for key, text in values.items():
        if not key.startswith(prefix):
            continue
        try:
            decoded[key[len(prefix):]] = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            decoded[key[len(prefix):]] = text
    return decoded


def check_provider_regions(values: Mapping[str, str]) -> None:
    """The classic and aws-native providers each read their own region key; resources of one stack
    must land in one region, so when either key is set both must be, and equal."""
    classic, native = values.get(CLASSIC_REGION_KEY), values.get(NATIVE_REGION_KEY)
    if classic is None and native is None:
        return  # both providers fall back to AWS_REGION
    if classic != native:
        raise ConfigError([
            f"{NATIVE_REGION_KEY}: expected the same region as {CLASSIC_REGION_KEY} ({classic!r}), got {native!r}; "
            "the Device Defender resources (aws-native) would deploy to another region than the rest"
        ])


def load_from_pulumi() -> Settings:
    """Read this stack's ``fleetguard:*`` config from the running Pulumi program and validate it.

    Reads the runtime's whole config map rather than known keys only, so a misspelt key is reported."""
    values: dict[str, str] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    check_provider_regions(values)
    settings = load_settings(read_stack_config(values))
    check_replication_region(settings, values.get(CLASSIC_REGION_KEY))
    return settings


def check_replication_region(settings: Settings, region: str | None) -> None:
    """Incident Manager works only in the regions of its replication set: a response plan in a stack
    whose region is not among them could never open an incident."""
    manager = settings.incident_response.incident_manager
    if not manager.enabled or region is None or region in manager.replication_set.regions:
        return
    raise ConfigError([
        f"{NAMESPACE}:incidentResponse.incidentManager.replicationSet.regions: expected to include the stack's "
        f"region {region} ({CLASSIC_REGION_KEY}), got {list(manager.replication_set.regions)}"
    ])


__all__ = [
    "TOP_LEVEL_KEYS", "ConfigError", "Settings", "check_provider_regions", "check_replication_region",
    "describe_config", "load_from_pulumi",
    "load_settings", "read_stack_config",
]
