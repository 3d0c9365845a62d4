"""IAM: no wildcard actions in any policy document the stack writes (identity or resource policies)."""

from __future__ import annotations

import re
from typing import Any, Final

from pulumi_policy import Policy, Severity

from .building import Controls, Report, ResourceContext, of_types, report_cannot_verify, resource_policy
from .documents import statements, wildcard_actions
from .values import CannotVerify, InvalidProperty, as_list, has_value, known

# Policy-document properties by type; Role also carries inline policies (checked separately).
DOCUMENT_PROPERTIES: Final = {
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sns/topic:Topic": ("policy",),
    "aws:sqs/queue:Queue": ("policy",),
    "aws:kms/key:Key": ("policy",),
}


# Attachments of policies by ARN; an AWS managed policy's document is not in the stack, so broad ones are
# recognised by name.
ATTACHED_POLICY_PROPERTIES: Final = {
    "aws:iam/role:Role": "managedPolicyArns",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
}
BROAD_MANAGED_POLICY: Final = re.compile(
    r"arn:aws[a-z-]*:iam::aws:policy/(?:[\w+=,.@-]+/)*(?P<name>AdministratorAccess|PowerUserAccess|[\w+=,.@-]*FullAccess"
    r"(?:_v\d+)?)"
)
"""AWS managed policies that grant every action of one or more services (their documents use wildcards)."""


def broad_managed_policies(ctx: ResourceContext) -> list[str]:
    """Names of over-broad AWS managed policies the resource attaches. An ARN unknown at preview is
    another resource's output (a policy this stack writes, checked on its own), never an AWS one."""
    prop = ATTACHED_POLICY_PROPERTIES.get(ctx.type)
    if prop is None:
        return []
    return [match["name"] for arn in as_list(ctx.props.get(prop))
            if isinstance(arn, str) and (match := BROAD_MANAGED_POLICY.fullmatch(arn))]


def documents(ctx: ResourceContext) -> list[tuple[str, Any]]:
    """(label, document) for every policy document the resource carries."""
    found = [(prop, ctx.props.get(prop)) for prop in DOCUMENT_PROPERTIES[ctx.type]
             if has_value(ctx.props.get(prop))]
    if ctx.type == "aws:iam/role:Role":
        inline = known(ctx.props.get("inlinePolicies"), "inlinePolicies") or []
        for position, policy in enumerate(inline, start=1):
            document = policy.get("policy") if isinstance(policy, dict) else policy
            if has_value(document):
                found.append((f"inlinePolicies[{position}]", document))
    return found


def check_no_wildcard_actions(ctx: ResourceContext, report: Report) -> None:
    for name in broad_managed_policies(ctx):
        report(f"attaches the AWS managed policy {name}, which allows every action of its services; attach a "
               "policy that lists the actions needed")
    if ctx.type not in DOCUMENT_PROPERTIES:
        return
    for label, document in documents(ctx):
        what = f"the policy document in {label}"
        try:
            for statement in statements(document, what):
                if not statement.allows:
                    continue
                if statement.not_actions:
                    report(f"{what}: {statement.label} allows NotAction, i.e. every other action; list actions")
                wildcards = wildcard_actions(statement, what)
                if wildcards:
                    report(f"{what}: {statement.label} allows wildcard action(s) {', '.join(wildcards)}; list the "
                           "actions explicitly")
        except CannotVerify as error:
            report_cannot_verify(report, error)
        except InvalidProperty as error:
            report(str(error))


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="iam-no-wildcard-actions",
            description=("IAM and resource policies the stack writes allow only explicitly listed actions "
                         "(no *, service:* or NotAction in Allow statements), and no over-broad AWS managed "
                         "policy (AdministratorAccess, PowerUserAccess, *FullAccess) is attached."),
            severity=Severity.HIGH,
            controls=Controls(
                pci=("7.2.1", "7.2.2"),
                hipaa=("164.308(a)(4)(ii)(B)", "164.312(a)(1)"),
                nist=("AC-6", "AC-6(10)"),
            ),
            remediation_steps=(
                "List each action the principal needs (e.g. sns:Publish, kms:GenerateDataKey) and scope "
                "Resource to the ARNs it acts on."
            ),
            governs=of_types(*DOCUMENT_PROPERTIES, *ATTACHED_POLICY_PROPERTIES),
            check=check_no_wildcard_actions,
        ),
    ]
