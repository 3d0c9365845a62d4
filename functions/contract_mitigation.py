"""The contract for audit mitigation: the intake's configuration of it, the Automation document's
parameters, and the one rule that names a mitigation task.

Beside ``functions/contract.py`` (whose ``EnvVar`` names every variable), with the same rules: standard
library only, so the Pulumi program renders the intake's environment and the approval document from the
same names the intake reads.

A mitigation task is named by its audit task and check alone (``mitigation_task_id``), so the intake (on
any redelivery) and the approval document (however often a responder runs it) name the same task, and
Device Defender starts it at most once: a second start is refused with TaskAlreadyExistsException.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic

from functions.contract import MITIGATION_ACTION_NAME_PATTERN, EnvVar, Value, _matching, _optional

AUDIT_CHECK_NAME_PATTERN: Final = re.compile(r"[A-Z0-9_]{1,128}_CHECK")
MITIGATION_TASK_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
"""StartAuditMitigationActionsTask's taskId (botocore's MitigationActionsTaskId)."""
CLIENT_TOKEN_MAX: Final = 64
"""StartAuditMitigationActionsTask's clientRequestToken: 1-64 of [a-zA-Z0-9-_]."""
MAX_ACTIONS: Final = 5
DOCUMENT_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")
AUDIT_TASK_ID_PARAMETER: Final = "AuditTaskId"
CHECK_NAME_PARAMETER: Final = "CheckName"
"""The approval document's parameters: the audit task and the check whose mitigation is approved."""
ACTIONS_KEY: Final = "actions"
APPROVAL_REQUIRED_KEY: Final = "approvalRequired"
"""The keys of each check's entry in AUDIT_MITIGATIONS."""


def mitigation_task_id(audit_task_id: str, check_name: str) -> str:
    """The one task that mitigates ``check_name``'s findings of one audit. At most 40 + 1 + 128
    characters of the allowed set; the longest real check names keep it within 128 (checked at use)."""
    return f"{audit_task_id}-{check_name}"


@dataclass(frozen=True)
class CheckActions:
    """The mitigation action names one check's findings get, and who starts the task."""

    actions: tuple[str, ...]
    approval_required: bool
    """A responder starts the task (the approval document); otherwise the intake does."""

    def to_json(self) -> dict[str, Any]:
        return {ACTIONS_KEY: list(self.actions), APPROVAL_REQUIRED_KEY: self.approval_required}


@dataclass(frozen=True)
class AuditMitigationEnvironment(Generic[Value]):
    """The intake's audit mitigation configuration: the mapping as JSON text (action names are only known
    at deploy time, so the program renders it as an output) and the approval document's name."""

    mitigations: Value
    """AUDIT_MITIGATIONS: ``{check: {"actions": [name, ...], "approvalRequired": true | false}}``."""
    document_name: Value | None = None
    """AUDIT_MITIGATION_DOCUMENT: set when some check needs approval."""

    def to_environment(self) -> dict[str, Value]:
        rendered = {EnvVar.AUDIT_MITIGATIONS.value: self.mitigations}
        if self.document_name is not None:
            rendered[EnvVar.AUDIT_MITIGATION_DOCUMENT.value] = self.document_name
        return rendered

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> AuditMitigationConfig | None:
        """None when the stack maps no check; ValueError naming the variable when a value is malformed."""
        text = _optional(env, EnvVar.AUDIT_MITIGATIONS)
        if text is None:
            return None
        checks = parse_mitigations(text)
        document = None
        if any(entry.approval_required for entry in checks.values()):
            document = _matching(env, EnvVar.AUDIT_MITIGATION_DOCUMENT, DOCUMENT_NAME_PATTERN,
                                 "an SSM document name", hint=" (some check needs approval)")
        return AuditMitigationConfig(checks, document)


@dataclass(frozen=True)
class AuditMitigationConfig:
    """The intake's audit mitigation configuration, decoded."""

    checks: Mapping[str, CheckActions]
    document_name: str | None


def render_mitigations(checks: Mapping[str, CheckActions]) -> str:
    """AUDIT_MITIGATIONS as the stack sets it (keys sorted, so a redeploy sees no change)."""
    return json.dumps({check: checks[check].to_json() for check in sorted(checks)}, separators=(",", ":"))


def parse_mitigations(text: str) -> dict[str, CheckActions]:
    where = EnvVar.AUDIT_MITIGATIONS
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(document).__name__}")
    return {check: _check_actions(check, entry) for check, entry in document.items()}


def _check_actions(check: str, entry: Any) -> CheckActions:
    where = f"{EnvVar.AUDIT_MITIGATIONS}.{check}"
    if not AUDIT_CHECK_NAME_PATTERN.fullmatch(check):
        raise ValueError(f"{where}: expected an audit check name matching {AUDIT_CHECK_NAME_PATTERN.pattern}")
    if not isinstance(entry, dict) or set(entry) != {ACTIONS_KEY, APPROVAL_REQUIRED_KEY}:
        raise ValueError(f"{where}: expected an object with exactly {ACTIONS_KEY} and {APPROVAL_REQUIRED_KEY}, "
                         f"got {entry!r}")
    actions, approval_required = entry[ACTIONS_KEY], entry[APPROVAL_REQUIRED_KEY]
    if not isinstance(approval_required, bool):
        raise ValueError(f"{where}.{APPROVAL_REQUIRED_KEY}: expected true or false, got {approval_required!r}")
    if (
        not isinstance(actions, list)
        or not 1 <= len(actions) <= MAX_ACTIONS
        or not all(isinstance(name, str) and MITIGATION_ACTION_NAME_PATTERN.fullmatch(name) for name in actions)
    ):
        raise ValueError(f"{where}.{ACTIONS_KEY}: expected 1-{MAX_ACTIONS} mitigation action names, got {actions!r}")
    return CheckActions(tuple(actions), approval_required)
