"""Systems Manager OpsCenter and Automation for the drill: the emulator has neither, so this in-memory
stand-in answers the handlers' calls the way the service documents them.

It checks every request against the ssm service model (types and required members, as botocore would
before sending), folds a CreateOpsItem whose dedup string matches an Open or InProgress item into that item
(OpsItemAlreadyExistsException carrying its id), and answers a repeated StartAutomationExecution client
token with the execution it started. Started executions wait in ``pending`` until the drill runs the
runbook's contain step for them.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import botocore.session  # type: ignore[import-untyped]
from botocore.validate import validate_parameters  # type: ignore[import-untyped]

from functions.aws_clients import Client
from functions.opscenter import DEDUP_KEY, OPEN

_MODEL: Final = botocore.session.get_session().get_service_model("ssm")
_FOLDING_STATUSES: Final = frozenset({OPEN, "InProgress"})
"""A new OpsItem with the dedup string of an item in one of these statuses is not created."""


@dataclass(frozen=True)
class Execution:
    automation_id: str
    document_name: str
    ops_item_id: str


@dataclass
class OpsCenterStandIn:
    """The subset of the ssm client the functions use for OpsCenter incidents."""

    exceptions: Any
    """A real ssm client's exception classes, so ``except ssm.exceptions.X`` works unchanged."""
    clock: Callable[[], datetime]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)
    """Client token -> the execution it started."""
    pending: list[Execution] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @classmethod
    def with_exceptions_of(cls, ssm: Client, clock: Callable[[], datetime]) -> OpsCenterStandIn:
        return cls(ssm.exceptions, clock)

    def _checked(self, operation: str, params: dict[str, Any]) -> None:
        self.calls.append(operation)
        validate_parameters(params, _MODEL.operation_model(operation).input_shape)

    def create_ops_item(self, **params: Any) -> dict[str, Any]:
        self._checked("CreateOpsItem", params)
        dedup = _dedup_string(params)
        for item in self.items.values():
            if dedup is not None and _dedup_string(item) == dedup and item["Status"] in _FOLDING_STATUSES:
                raise self.exceptions.OpsItemAlreadyExistsException(
                    {"Error": {"Code": "OpsItemAlreadyExistsException", "Message": "The OpsItem already exists."},
                     "OpsItemId": item["OpsItemId"]},
                    "CreateOpsItem",
                )
        ops_item_id = f"oi-{len(self.items) + 1:012x}"
        self.items[ops_item_id] = {
            **copy.deepcopy(params), "OpsItemId": ops_item_id, "Status": OPEN, "CreatedTime": self.clock(),
        }
        return {"OpsItemId": ops_item_id}

    def get_ops_item(self, **params: Any) -> dict[str, Any]:
        self._checked("GetOpsItem", params)
        return {"OpsItem": copy.deepcopy(self._item(params["OpsItemId"]))}

    def update_ops_item(self, **params: Any) -> dict[str, Any]:
        self._checked("UpdateOpsItem", params)
        item = self._item(params["OpsItemId"])
        item.setdefault("OperationalData", {}).update(copy.deepcopy(params.get("OperationalData", {})))
        if "Status" in params:
            item["Status"] = params["Status"]
        return {}

    def start_automation_execution(self, **params: Any) -> dict[str, Any]:
        self._checked("StartAutomationExecution", params)
        token = params.get("ClientToken") or str(uuid.uuid4())
        if token not in self.executions:
            execution = Execution(str(uuid.uuid4()), params["DocumentName"], params["Parameters"]["OpsItemId"][0])
            self.executions[token] = execution
            self.pending.append(execution)
        return {"AutomationExecutionId": self.executions[token].automation_id}

    def _item(self, ops_item_id: str) -> dict[str, Any]:
        if ops_item_id not in self.items:
            raise self.exceptions.OpsItemNotFoundException(
                {"Error": {"Code": "OpsItemNotFoundException", "Message": f"{ops_item_id} not found"}},
                "GetOpsItem",
            )
        return self.items[ops_item_id]


def _dedup_string(item: dict[str, Any]) -> str | None:
    value = item.get("OperationalData", {}).get(DEDUP_KEY, {}).get("Value")
    dedup = json.loads(value).get("dedupString") if isinstance(value, str) else None
    return dedup if isinstance(dedup, str) else None
