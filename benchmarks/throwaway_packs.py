"""Policy packs the policy benchmark writes into a temporary directory and measures beside fleetguard's.

- The floor: a pack with as many resource and stack policies as fleetguard's, each doing nothing. What it
  costs is pulumi-policy's and gRPC's alone, so fleetguard's time over it is what its rules cost.
- The same two packs with ``decode_once`` installed: the prototype of the SDK decoding each request once
  instead of once per policy (fleetguard's rules unchanged, imported from ``policies/``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.analyzer import POLICY_PACK_DIR

PULUMI_POLICY_YAML = "runtime: python\nversion: 0.0.1\n"
DECODE_ONCE = Path(__file__).resolve().parent / "decode_once.py"

_NOOP_MAIN = '''"""{resources} resource and {stacks} stack policies that do nothing: the SDK's own cost."""
{patch}
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy, StackValidationPolicy


def nothing(_args, _report):
    return None


PolicyPack(
    name="noop-floor",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(ResourceValidationPolicy(name=f"noop-resource-{{index}}", description="Checks nothing", validate=nothing)
          for index in range({resources})),
        *(StackValidationPolicy(name=f"noop-stack-{{index}}", description="Checks nothing", validate=nothing)
          for index in range({stacks})),
    ],
)
'''

_FLEETGUARD_MAIN = '''"""fleetguard's rules, served by pulumi-policy patched to decode each request once."""
import sys

sys.path.insert(0, {pack_dir!r})

import decode_once

decode_once.install()

from fleetguard_policies.pack import PACK_NAME, all_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=all_policies())
'''

_PATCH = "\nimport decode_once\n\ndecode_once.install()\n"


def _write_pack(directory: Path, main: str, *, with_prototype: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "PulumiPolicy.yaml").write_text(PULUMI_POLICY_YAML)
    (directory / "__main__.py").write_text(main)
    if with_prototype:
        shutil.copy(DECODE_ONCE, directory / DECODE_ONCE.name)
    return directory


def noop_pack(directory: Path, resource_policies: int, stack_policies: int, *, decode_once: bool = False) -> Path:
    """A pack of no-op policies, as many of each kind as given, in ``directory``."""
    main = _NOOP_MAIN.format(resources=resource_policies, stacks=stack_policies, patch=_PATCH if decode_once else "")
    return _write_pack(directory, main, with_prototype=decode_once)


def fleetguard_decode_once_pack(directory: Path) -> Path:
    """fleetguard's own rules behind the decode-once prototype, in ``directory``."""
    return _write_pack(directory, _FLEETGUARD_MAIN.format(pack_dir=str(POLICY_PACK_DIR)), with_prototype=True)
