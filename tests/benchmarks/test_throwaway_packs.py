"""The packs the policy benchmark measures against: the no-op floor has the policy counts asked for and
finds nothing; the decode-once prototype changes how fast the pack answers, never what it answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_policies import policy_counts, synthetic_stack
from benchmarks.throwaway_packs import fleetguard_decode_once_pack, noop_pack
from harness.analyzer import AnalyzerResource, Diagnostic, PolicyPackProcess, from_registrations
from harness.mockstack import REPO_ROOT, Phase, run_stack
from tests.policies.stack_builders import allow, device_policy, document

pytestmark = pytest.mark.slow


def verdicts(pack: PolicyPackProcess, resources: list[AnalyzerResource], stack: str) -> list[Diagnostic]:
    pack.configure(None)
    pack.configure_stack(stack, "bench")
    return sorted(pack.preview(resources).diagnostics, key=lambda item: (item.policy_name, item.urn, item.message))


def test_the_floor_has_the_policy_counts_asked_for_and_reports_nothing(tmp_path: Path) -> None:
    resources = [*synthetic_stack(120), device_policy(document(allow("iot:*", "*")), name="permissive")]
    with PolicyPackProcess(noop_pack(tmp_path / "floor", 7, 3)) as floor:
        assert policy_counts(floor.info()) == (7, 3)
        assert not verdicts(floor, resources, "bench")


@pytest.mark.parametrize("phase", list(Phase))
def test_the_decode_once_prototype_gives_the_same_verdicts_as_the_sdk(tmp_path: Path, phase: Phase) -> None:
    # Violations (a permissive device policy) and, at the preview, values unknown until the update.
    example = run_stack("prod", root=REPO_ROOT / "examples" / "device_fleet", project="device-fleet", phase=phase)
    resources = [*synthetic_stack(150), device_policy(document(allow("iot:*", "*")), name="permissive"),
                 *from_registrations(example.resources)]
    with PolicyPackProcess(dry_run=phase.dry_run) as released, PolicyPackProcess(
        fleetguard_decode_once_pack(tmp_path / "prototype"), dry_run=phase.dry_run,
    ) as prototype:
        expected = verdicts(released, resources, "bench")

        assert expected
        assert verdicts(prototype, resources, "bench") == expected
