"""Incident Manager's people: the replication set, personal contacts with their channels and engagement
plans, and an escalation plan that pages the next stage when nobody acknowledges in time.

AWS requires this order, and the resources depend on each other to enforce it: the replication set
(onboarding; SSM Contacts refuses to create anything before it exists), then each contact, its channels
(a channel belongs to a contact), its engagement plan (stages name channel ARNs), then the escalation plan
contact and its plan (stages name contact ARNs).
"""

from __future__ import annotations

import re
from typing import Final, TypedDict

import pulumi
import pulumi_aws as aws

from settings.contacts import EscalationPlan, PersonalContact
from settings.response import IncidentManagerSettings

CONTACT_TAG_KEY: Final = r"[\\/a-zA-Z0-9_+=-]{1,128}"
CONTACT_TAG_VALUE: Final = r"[\w .:/=+@-]{1,256}"
# ssm-incidents TagKey / TagValue patterns; "+-/" is the range + , - . / as in the service model.
INCIDENT_TAG_KEY: Final = r"(?!aws:)[A-Za-z0-9 _=@:.+-/]{1,128}"
INCIDENT_TAG_VALUE: Final = r"[A-Za-z0-9 _=@:.+-/]{0,256}"
"""SSM Contacts takes fewer characters in tags than most services (ssm-contacts TagKey/TagValue)."""


def incident_manager_tags(tags: dict[str, str]) -> dict[str, str]:
    """The stack's tags that Incident Manager accepts (response plans, their incident tags, replication
    sets: ASCII letters, digits and `` _=@:.+-/``; keys not starting with aws:); the others are left off."""
    return {
        key: value for key, value in tags.items()
        if re.fullmatch(INCIDENT_TAG_KEY, key) and re.fullmatch(INCIDENT_TAG_VALUE, value)
    }


def contact_tags(tags: dict[str, str]) -> dict[str, str]:
    """The stack's tags that SSM Contacts accepts; the others are left off contacts rather than failing
    the deployment (every other resource still carries them)."""
    return {
        key: value for key, value in tags.items()
        if re.fullmatch(CONTACT_TAG_KEY, key) and re.fullmatch(CONTACT_TAG_VALUE, value)
    }


class ContactsArgs(TypedDict):
    """Inputs of the contacts component."""

    settings: IncidentManagerSettings
    """Validated Incident Manager settings (replication set, contacts, escalation)."""
    tags: dict[str, str]
    """Tags for every taggable child."""


class ContactsComponent(pulumi.ComponentResource):
    """Replication set, personal contacts and the escalation plan; ``engagement_arns`` is what a response
    plan engages (the escalation plan when there is one, otherwise every personal contact)."""

    replication_set: aws.ssmincidents.ReplicationSet | None
    contacts: dict[str, aws.ssmcontacts.Contact]
    """Personal contacts by alias."""
    channels: dict[str, dict[str, aws.ssmcontacts.ContactChannel]]
    """Contact alias -> channel name -> channel."""
    engagement_plans: dict[str, aws.ssmcontacts.Plan]
    """Contact alias -> its engagement plan."""
    escalation_plan: aws.ssmcontacts.Contact | None
    escalation_stages: aws.ssmcontacts.Plan | None
    engagement_arns: list[pulumi.Output[str]]

    def __init__(self, name: str, args: ContactsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:contacts:Contacts", name, None, opts)
        settings = args["settings"]
        self.replication_set = None
        onboarding: list[pulumi.Resource] = []
        if settings.replication_set.manage:
            self.replication_set = aws.ssmincidents.ReplicationSet(
                f"{name}-replication-set",
                regions=[
                    aws.ssmincidents.ReplicationSetRegionArgs(
                        name=region,
                        # Absent: Incident Manager encrypts with an AWS-owned key.
                        kms_key_arn=settings.replication_set.customer_key_arns.get(region),
                    )
                    for region in settings.replication_set.regions
                ],
                tags=incident_manager_tags(args["tags"]),
                opts=pulumi.ResourceOptions(parent=self),
            )
            onboarding.append(self.replication_set)

        tags = contact_tags(args["tags"])
        self.contacts = {}
        self.channels = {}
        self.engagement_plans = {}
        for contact in settings.contacts:
            self._personal_contact(name, contact, onboarding, tags)

        self.escalation_plan = None
        self.escalation_stages = None
        if settings.escalation is not None:
            self.escalation_plan, self.escalation_stages = self._escalation(name, settings.escalation, tags)
            self.engagement_arns = [_arn_once_planned(self.escalation_plan, self.escalation_stages)]
        else:
            self.engagement_arns = [
                _arn_once_planned(contact, self.engagement_plans[alias]) for alias, contact in self.contacts.items()
            ]
        self.register_outputs({
            "contactArns": {alias: contact.arn for alias, contact in self.contacts.items()},
            "escalationPlanArn": self.escalation_plan.arn if self.escalation_plan else None,
        })

    def _personal_contact(
        self, name: str, contact: PersonalContact, onboarding: list[pulumi.Resource], tags: dict[str, str]
    ) -> None:
        prefix = f"{name}-{contact.alias}"
        created = aws.ssmcontacts.Contact(
            prefix,
            alias=contact.alias,
            display_name=contact.display_name,
            type="PERSONAL",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=onboarding),
        )
        channels = {
            channel.name: aws.ssmcontacts.ContactChannel(
                f"{prefix}-{channel.name}",
                contact_id=created.arn,
                name=channel.name,
                type=channel.type,
                delivery_address=aws.ssmcontacts.ContactChannelDeliveryAddressArgs(simple_address=channel.address),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for channel in contact.channels
        }
        self.engagement_plans[contact.alias] = aws.ssmcontacts.Plan(
            f"{prefix}-engagement-plan",
            contact_id=created.arn,
            stages=[
                aws.ssmcontacts.PlanStageArgs(
                    duration_in_minutes=stage.duration_minutes,
                    targets=[
                        aws.ssmcontacts.PlanStageTargetArgs(
                            channel_target_info=aws.ssmcontacts.PlanStageTargetChannelTargetInfoArgs(
                                contact_channel_id=channels[channel_name].arn,
                                retry_interval_in_minutes=contact.retry_interval_minutes,
                            ),
                        )
                        for channel_name in stage.channels
                    ],
                )
                for stage in contact.engagement_plan
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.contacts[contact.alias] = created
        self.channels[contact.alias] = channels

    def _escalation(
        self, name: str, escalation: EscalationPlan, tags: dict[str, str]
    ) -> tuple[aws.ssmcontacts.Contact, aws.ssmcontacts.Plan]:
        plan_contact = aws.ssmcontacts.Contact(
            f"{name}-{escalation.alias}",
            alias=escalation.alias,
            display_name=escalation.display_name,
            type="ESCALATION",
            tags=tags,
            # Its stages engage personal contacts, which must be fully set up (channels and plans) first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.engagement_plans.values())),
        )
        stages = aws.ssmcontacts.Plan(
            f"{name}-{escalation.alias}-stages",
            contact_id=plan_contact.arn,
            stages=[
                aws.ssmcontacts.PlanStageArgs(
                    # How long the stage's contacts have to acknowledge before the next stage is paged.
                    duration_in_minutes=stage.minutes,
                    targets=[
                        aws.ssmcontacts.PlanStageTargetArgs(
                            contact_target_info=aws.ssmcontacts.PlanStageTargetContactTargetInfoArgs(
                                contact_id=self.contacts[alias].arn,
                                # Essential: this contact's acknowledgement stops the escalation.
                                is_essential=True,
                            ),
                        )
                        for alias in stage.contacts
                    ],
                )
                for stage in escalation.stages
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return plan_contact, stages


def _arn_once_planned(contact: aws.ssmcontacts.Contact, plan: aws.ssmcontacts.Plan) -> pulumi.Output[str]:
    """The contact's ARN, resolved only after its plan exists, so a response plan never engages a contact
    whose stages are not set yet."""
    return pulumi.Output.all(contact.arn, plan.id).apply(lambda values: str(values[0]))
