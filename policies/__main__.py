"""The policy pack the Pulumi engine runs (``pulumi preview --policy-pack policies``).

It only builds the pack; the rules live in ``fleetguard_policies``. Every rule is mandatory unless the
``--policy-pack-config`` file for the environment says otherwise (``config/dev.json``, ``config/prod.json``).
"""

from fleetguard_policies.pack import PACK_NAME, all_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    description="fleetguard: AWS IoT fleet security posture and incident-response readiness",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=all_policies(),
)
