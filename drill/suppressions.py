"""The drill's audit finding suppressions, declared before the waves the way the stack declares them: through
the ``AuditSuppression`` dynamic provider. The emulator has no Device Defender, so a Stubber answers each
CreateAuditSuppression and checks its request; the scenario's audit then reports those findings suppressed,
and the intake must leave their check alone (no mitigation task, no notice)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]

from components.audit_suppression import AuditSuppressionProvider, provider_inputs
from drill.logs import Timeline
from drill.scenario import REGION, Suppression


def declare_suppressions(suppressions: Sequence[Suppression], timeline: Timeline) -> list[Suppression]:
    """Create each suppression with the stack's provider; the ones whose create AWS would have accepted."""
    client = boto3.client("iot", region_name=REGION, aws_access_key_id="drill", aws_secret_access_key="drill")
    created: list[Suppression] = []
    with _answering(client, suppressions):
        provider = AuditSuppressionProvider(client_factory=lambda _region: client)
        for suppression in suppressions:
            provider.create(provider_inputs({
                "check_name": suppression.check,
                "resource_identifier": {"deviceCertificateId": suppression.certificate_id},
                "expires": None,
                "description": suppression.reason,
                "region": REGION,
            }))
            created.append(suppression)
            timeline.add(f"audit suppression created: {suppression.check} for device certificate "
                         f"{suppression.certificate_id[:12]}..., indefinitely: {suppression.reason}")
    return created


@contextmanager
def _answering(client: Any, suppressions: Sequence[Suppression]) -> Iterator[None]:
    stubber = Stubber(client)
    for suppression in suppressions:
        stubber.add_response("create_audit_suppression", {}, expected_params={
            "checkName": suppression.check,
            "resourceIdentifier": {"deviceCertificateId": suppression.certificate_id},
            "suppressIndefinitely": True,
            "description": suppression.reason,
            # The provider's own idempotency scheme; its tests pin it.
            "clientRequestToken": ANY,
        })
    with stubber:
        yield
        stubber.assert_no_pending_responses()

