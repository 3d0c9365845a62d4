"""Drive the fleetguard policy pack over the Pulumi Analyzer gRPC protocol, the way the engine does.

The package's public interface; ``model`` (plain data), ``config`` (policy config reconciliation), ``wire``
(protobuf encoding) and ``process`` (the running pack) hold the parts.

The Pulumi CLI is not available on build machines, so this module plays the engine's part:

1. boot the pack as the engine does (``python -u -m pulumi.policy <engine address> <pack dir>`` with the
   pack directory as working directory, ``PULUMI_DRY_RUN`` saying whether this run is a preview or the
   update: the engine boots one pack process per run) and read the port it prints;
2. ``GetAnalyzerInfo``, then reconcile the ``--policy-pack-config`` file with the pack's policies (schema
   defaults first, then ``all``, then per-policy entries; the engine, not the SDK, fills defaults) and
   validate it against each policy's config schema before ``Configure``;
3. per resource ``Remediate`` (its new properties replace the inputs) then ``Analyze``; finally
   ``AnalyzeStack`` with every resource's outputs.

Property values travel as protobuf Structs, exactly as the engine sends them: numbers as floats, unknown
values (``pulumi.output.Unknown``) as the engine's unknown sentinel string.
"""


from harness.analyzer.config import (
    POLICY_CONFIG_DIR,
    POLICY_PACK_DIR,
    PolicyConfigError,
    load_policy_config_file,
    reconcile_policy_config,
)
from harness.analyzer.model import (
    AnalyzeResult,
    AnalyzerResource,
    Diagnostic,
    EnforcementLevel,
    PackInfo,
    PolicyConfig,
    PolicyInfo,
    PreviewReport,
    ProviderInfo,
    Remediation,
    from_registrations,
    iter_lines,
    urn_for,
)
from harness.analyzer.process import DRY_RUN_VARIABLE, PackStartError, PolicyPackProcess, pack_version
from harness.analyzer.wire import UNKNOWN_SENTINEL, to_wire

__all__ = [
    "DRY_RUN_VARIABLE",
    "POLICY_CONFIG_DIR",
    "POLICY_PACK_DIR",
    "UNKNOWN_SENTINEL",
    "AnalyzeResult",
    "AnalyzerResource",
    "Diagnostic",
    "EnforcementLevel",
    "PackInfo",
    "PackStartError",
    "PolicyConfig",
    "PolicyConfigError",
    "PolicyInfo",
    "PolicyPackProcess",
    "PreviewReport",
    "ProviderInfo",
    "Remediation",
    "from_registrations",
    "iter_lines",
    "load_policy_config_file",
    "pack_version",
    "reconcile_policy_config",
    "to_wire",
    "urn_for",
]
