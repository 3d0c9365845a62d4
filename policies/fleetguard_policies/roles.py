"""The IAM roles a stack hands to AWS IoT (topic rule actions, role aliases) and what the stack's policies
let them do: a stack rule follows a role ARN to the role in the stack, then to every policy document the
stack attaches to it (inline, role policies, attached customer managed policies, broad AWS managed ones).

A reference is matched by value (the ARN or name, known at the update) or by the engine's property
dependencies (how it looks at preview, when the ARN is still unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from .building import StackContext, StackResource
from .documents import statements, wildcard_actions
from .iam import BROAD_MANAGED_POLICY
from .values import UNKNOWN, CannotVerify, as_list, has_value, known

ROLE_NAME_PROPERTY: Final = {"aws:iam/role:Role": "name", "aws-native:iam:Role": "roleName"}
INLINE_POLICIES: Final = {"aws:iam/role:Role": ("inlinePolicies", "policy"),
                          "aws-native:iam:Role": ("policies", "policyDocument")}
ROLE_POLICY: Final = {"aws:iam/rolePolicy:RolePolicy": ("role", "policy"),
                      "aws-native:iam:RolePolicy": ("roleName", "policyDocument")}
ROLE_POLICY_ATTACHMENT: Final = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY: Final = {"aws:iam/policy:Policy": ("arn", "policy"),
                         "aws-native:iam:ManagedPolicy": ("policyArn", "policyDocument")}
NATIVE_MANAGED_POLICY_ROLES: Final = "roles"


def refers_to(holder: StackResource, prop: str, value: Any, target: StackResource, identities: Iterable[Any]) -> bool:
    """Whether ``value`` (read from ``holder``'s top-level ``prop``) names ``target``: it equals one of
    the target's known identities, or, at preview, the property was computed from the target.
    ``CannotVerify`` when the value is unknown and computed from nothing that settles it."""
    if holder.depends_on(prop, target):
        return True
    if value is UNKNOWN:
        if holder.property_dependencies.get(prop):
            return False  # computed from other resources, not from this one
        raise CannotVerify(f"{prop} of {holder.name} is unknown")
    return any(value == identity for identity in identities if isinstance(identity, str))


@dataclass(frozen=True)
class StackRoles:
    """The stack's roles and the policies it attaches to them, gathered once per rule run."""

    roles: list[StackResource]
    role_policies: list[StackResource]
    attachments: list[StackResource]
    managed_policies: list[StackResource]

    @classmethod
    def of(cls, stack: StackContext) -> StackRoles:
        return cls(
            roles=stack.of_type(*ROLE_NAME_PROPERTY),
            role_policies=stack.of_type(*ROLE_POLICY),
            attachments=stack.of_type(ROLE_POLICY_ATTACHMENT),
            managed_policies=stack.of_type(*MANAGED_POLICY),
        )

    def named_by(self, holder: StackResource, prop: str, role_arn: Any) -> list[StackResource]:
        """The stack's roles ``role_arn`` (read from ``holder``'s top-level ``prop``) names; none when it
        names a role this stack does not manage."""
        return [role for role in self.roles if refers_to(holder, prop, role_arn, role, [role.props.get("arn")])]

    def wildcard_grants(self, holder: StackResource,
                        references: Iterable[tuple[str, Any]]) -> Iterator[tuple[StackResource, str]]:
        """(role, finding) for every wildcard the stack lets a role ``holder`` names perform; ``references``
        are (``holder``'s top-level property, role ARN read from it) pairs. A role named twice is judged once."""
        judged: set[str] = set()
        for prop, role_arn in references:
            for role in self.named_by(holder, prop, role_arn):
                if role.urn in judged:
                    continue
                judged.add(role.urn)
                for finding in self.wildcard_findings(role):
                    yield role, finding

    def wildcard_findings(self, role: StackResource) -> list[str]:
        """What lets ``role`` perform wildcard actions, one line per offending document or policy."""
        found: list[str] = []
        for label, document in self._documents(role):
            found.extend(f"{label}: {finding}" for finding in document_wildcards(document, label))
        for arn in self._managed_arns(role):
            if isinstance(arn, str) and (match := BROAD_MANAGED_POLICY.fullmatch(arn)):
                found.append(f"the AWS managed policy {match['name']} allows every action of its services")
        return found

    def _documents(self, role: StackResource) -> list[tuple[str, Any]]:
        identities = [role.props.get(ROLE_NAME_PROPERTY[role.type]), role.props.get("arn")]
        inline_prop, document_key = INLINE_POLICIES[role.type]
        found = [(f"inline policy {position}", policy.get(document_key) if isinstance(policy, dict) else policy)
                 for position, policy in enumerate(as_list(known(role.props.get(inline_prop), inline_prop)), 1)]
        for policy in self.role_policies:
            role_prop, document_prop = ROLE_POLICY[policy.type]
            if refers_to(policy, role_prop, policy.props.get(role_prop), role, identities):
                found.append((f"role policy {policy.name}", policy.props.get(document_prop)))
        for managed in self._attached_customer_policies(role, identities):
            found.append((f"managed policy {managed.name}", managed.props.get(MANAGED_POLICY[managed.type][1])))
        return [(label, document) for label, document in found if has_value(document)]

    def _attachments_of(self, role: StackResource, identities: list[Any]) -> list[StackResource]:
        return [item for item in self.attachments if refers_to(item, "role", item.props.get("role"), role, identities)]

    def _managed_arns(self, role: StackResource) -> list[Any]:
        identities = [role.props.get(ROLE_NAME_PROPERTY[role.type]), role.props.get("arn")]
        return [*as_list(role.props.get("managedPolicyArns")),
                *(item.props.get("policyArn") for item in self._attachments_of(role, identities))]

    def _attached_customer_policies(self, role: StackResource, identities: list[Any]) -> list[StackResource]:
        attachments = self._attachments_of(role, identities)
        role_arns = as_list(role.props.get("managedPolicyArns"))
        attached: list[StackResource] = []
        for managed in self.managed_policies:
            arn = managed.props.get(MANAGED_POLICY[managed.type][0])
            by_role = role.depends_on("managedPolicyArns", managed) or (isinstance(arn, str) and arn in role_arns)
            by_attachment = any(refers_to(item, "policyArn", item.props.get("policyArn"), managed, [arn])
                                for item in attachments)
            # aws-native's ManagedPolicy may instead list the roles it attaches to, by name.
            by_policy = managed.depends_on(NATIVE_MANAGED_POLICY_ROLES, role) or any(
                name in identities for name in as_list(managed.props.get(NATIVE_MANAGED_POLICY_ROLES))
                if isinstance(name, str))
            if by_role or by_attachment or by_policy:
                attached.append(managed)
        return attached


def document_wildcards(document: Any, what: str) -> list[str]:
    """Allow statements in one IAM policy document that grant wildcard actions or NotAction."""
    found: list[str] = []
    for statement in statements(document, f"the policy document of {what}"):
        if not statement.allows:
            continue
        if statement.not_actions:
            found.append(f"{statement.label} allows NotAction, i.e. every other action")
        wildcards = wildcard_actions(statement, what)
        if wildcards:
            found.append(f"{statement.label} allows wildcard action(s) {', '.join(wildcards)}")
    return found
