"""Control mappings that rules in more than one module evidence: the same concern (least privilege, token
authentication, incident response) maps to the same controls wherever a rule enforces it."""

from __future__ import annotations

from .building import Controls

LEAST_PRIVILEGE = Controls(pci=("7.2.1", "7.2.2"), hipaa=("164.308(a)(4)", "164.312(a)(1)"), nist=("AC-3", "AC-6"))
TOKEN_AUTHENTICATION = Controls(pci=("8.3.1", "8.3.2"), hipaa=("164.312(d)",), nist=("IA-2", "IA-5", "SC-23"))
INCIDENT_RESPONSE = Controls(
    pci=("12.10.1", "12.10.3"),
    hipaa=("164.308(a)(6)(i)", "164.308(a)(6)(ii)"),
    nist=("IR-4", "IR-6", "IR-8"),
)
