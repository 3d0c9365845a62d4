"""Check the actions named in IAM and IoT policy documents against botocore's service models.

IAM and AWS IoT store a policy whose action names nothing real without complaint; the statement then
silently grants (or denies) nothing, so a typo breaks the permission it was written for only at run
time. Every action ``prefix:Operation`` must therefore be an operation of a botocore service model
behind that IAM prefix, or one of the few documented authorisation-only actions below.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from botocore.loaders import Loader  # type: ignore[import-untyped]

# IAM action prefix -> the botocore services whose operations that prefix authorises.
SERVICE_MODELS: Mapping[str, tuple[str, ...]] = {
    "iot": ("iot", "iot-data", "iot-jobs-data", "iotsecuretunneling"),
    "ssm-incidents": ("ssm-incidents",),
    "ssm-contacts": ("ssm-contacts",),
    "ssm": ("ssm",),
    "sns": ("sns",),
    "sqs": ("sqs",),
    "kms": ("kms",),
    "logs": ("logs",),
    "lambda": ("lambda",),
    "iam": ("iam",),
    "sts": ("sts",),
    "securityhub": ("securityhub",),
    "events": ("events",),
    "cloudwatch": ("cloudwatch",),
    "xray": ("xray",),
    "s3": ("s3",),
    "dynamodb": ("dynamodb",),
    "scheduler": ("scheduler",),
    "kinesis": ("kinesis",),
    "secretsmanager": ("secretsmanager",),
}

# Real IAM/IoT actions that are not API operations, so no service model lists them.
NON_API_ACTIONS: Mapping[str, str] = {
    "iot:Connect": "authorises an MQTT CONNECT from a device; MQTT is not in the HTTP API models",
    "iot:Subscribe": "authorises an MQTT SUBSCRIBE to a topic filter",
    "iot:Receive": "authorises delivery of MQTT messages to a subscribed client",
    "iot:RetainPublish": "authorises an MQTT publish with the RETAIN flag",
    "iam:PassRole": "checked by the service a role is handed to; it has no operation of its own",
    "lambda:InvokeFunction": "the IAM name of the Lambda Invoke operation",
}

_WILDCARD_CHARACTERS = ("*", "?")


def unknown_actions(policy_document: Mapping[str, Any] | str) -> list[str]:
    """Actions in ``policy_document`` that AWS does not have, plus every use of ``NotAction``.

    Each finding names the statement and action, e.g.
    ``Statement[1].Action[0]: iot:AddThingToGroup is not an operation of botocore models iot, ...``.
    Wildcards are checked only for matching something; ``wildcard_actions`` reports them as such.
    """
    findings: list[str] = []
    for location, statement in policy_statements(policy_document):
        if "NotAction" in statement:
            findings.append(
                f"{location}.NotAction: applies to every action except those listed; name the actions in Action instead"
            )
        if "Action" not in statement and "NotAction" not in statement:
            findings.append(f"{location}: has neither Action nor NotAction, which AWS rejects")
        for action_location, action in statement_actions(statement, location):
            problem = _action_problem(action)
            if problem is not None:
                findings.append(f"{action_location}: {problem}")
    return findings


def wildcard_actions(policy_document: Mapping[str, Any] | str) -> list[str]:
    """Every action in ``policy_document`` that contains a wildcard (``*`` or ``?``)."""
    return [
        f"{action_location}: {action!r} is a wildcard; name each action the statement needs"
        for location, statement in policy_statements(policy_document)
        for action_location, action in statement_actions(statement, location)
        if any(character in action for character in _WILDCARD_CHARACTERS)
    ]


def policy_statements(policy_document: Mapping[str, Any] | str) -> list[tuple[str, Mapping[str, Any]]]:
    """(location, statement) for each statement of a document given as JSON text or an object."""
    document: Any = policy_document
    if isinstance(policy_document, str):
        try:
            document = json.loads(policy_document)
        except json.JSONDecodeError as error:
            raise ValueError(f"policy document is not valid JSON: {error}") from error
    if not isinstance(document, Mapping):
        raise ValueError(f"policy document must be a JSON object, got {type(document).__name__}")
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        return [("Statement", statements)]
    if isinstance(statements, list):
        for index, statement in enumerate(statements):
            if not isinstance(statement, Mapping):
                raise ValueError(f"Statement[{index}] must be an object, got {type(statement).__name__}")
        return [(f"Statement[{index}]", statement) for index, statement in enumerate(statements)]
    raise ValueError(f"policy document needs a Statement object or list, got {statements!r}")


def statement_actions(statement: Mapping[str, Any], location: str) -> Iterator[tuple[str, str]]:
    """(location, action) for each action of one statement's ``Action`` element."""
    actions = statement.get("Action")
    if actions is None:
        return
    if isinstance(actions, str):
        yield f"{location}.Action", actions
        return
    if not isinstance(actions, list) or not all(isinstance(action, str) for action in actions):
        raise ValueError(f"{location}.Action must be a string or a list of strings, got {actions!r}")
    for index, action in enumerate(actions):
        yield f"{location}.Action[{index}]", action


def _action_problem(action: str) -> str | None:
    """Why ``action`` names nothing AWS has, or None when it does."""
    if action == "*":
        return None
    prefix, separator, operation = action.partition(":")
    if not separator or not prefix or not operation:
        return f"{action!r} is not of the form service:Action"
    known = _known_actions(prefix.lower())
    if known is None:
        return (
            f"{action!r}: no botocore model is mapped for IAM prefix {prefix!r} "
            f"(mapped: {', '.join(sorted(SERVICE_MODELS))})"
        )
    wanted = action.lower()  # IAM compares action names case-insensitively
    if any(character in action for character in _WILDCARD_CHARACTERS):
        matched = any(fnmatch.fnmatchcase(name, wanted) for name in known)
        return None if matched else f"{action!r} matches no {prefix} action"
    if wanted in known:
        return None
    models = ", ".join(SERVICE_MODELS[prefix.lower()])
    problem = f"{action} is not an operation of botocore models {models} nor a known non-API action"
    suggestions = difflib.get_close_matches(wanted, known, n=1)
    return f"{problem}; did you mean {known[suggestions[0]]}?" if suggestions else problem


@cache
def _known_actions(prefix: str) -> dict[str, str] | None:
    """Lower-cased action name -> canonical ``prefix:Operation`` for one IAM prefix."""
    services = SERVICE_MODELS.get(prefix)
    if services is None:
        return None
    known = {
        f"{prefix}:{operation}".lower(): f"{prefix}:{operation}"
        for service in services
        for operation in service_operations(service)
    }
    known.update((action.lower(), action) for action in NON_API_ACTIONS if action.split(":")[0] == prefix)
    return known


@cache
def service_operations(service: str) -> frozenset[str]:
    """Operation names of the newest API version of a botocore service model."""
    model = _loader().load_service_model(service, "service-2")
    return frozenset(model["operations"])


@cache
def _loader() -> Any:
    return Loader()
