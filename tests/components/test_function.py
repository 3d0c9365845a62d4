"""The shared Lambda function component: every function the program registers gets its own role, a log
group with retention it can write to, and the Powertools layer published for its partition and region."""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePath
from typing import Any

import botocore.session  # type: ignore[import-untyped]
import pulumi
import pytest

from components.function import (
    ARCHITECTURE,
    FUNCTIONS_DIR,
    RUNTIME,
    code_assets,
    lambda_log_level,
    powertools_layer_account,
    powertools_layer_name,
)
from functions.contract import EnvVar
from harness.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun
from settings.facts import POWERTOOLS_LOG_LEVELS


def children(stack: StackRun, parent: RegisteredResource) -> dict[str, RegisteredResource]:
    return {r.type: r for r in stack.resources if r.parent == parent.urn}


def function_components(stack: StackRun) -> list[RegisteredResource]:
    found = stack.of_type("fleetguard:function:Function")
    assert found, "the program registers no function"
    return found


@pytest.mark.parametrize(("partition", "region", "account"), [
    ("aws", "us-east-1", "017000801446"),
    ("aws", "ap-southeast-5", "017000801446"),
    ("aws-cn", "cn-north-1", "498634801083"),
    ("aws-us-gov", "us-gov-east-1", "165087284144"),
    ("aws-us-gov", "us-gov-west-1", "165093116878"),
])
def test_layer_account_follows_the_partition_and_region(partition: str, region: str, account: str) -> None:
    assert powertools_layer_account(partition, region) == account


def test_a_region_without_a_published_layer_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"no layer in cn-northwest-1 \(partition aws-cn\)"):
        powertools_layer_account("aws-cn", "cn-northwest-1")


def test_layer_name_matches_runtime_and_architecture() -> None:
    assert RUNTIME == "python3.13"
    assert ARCHITECTURE == "arm64"
    assert powertools_layer_name() == "AWSLambdaPowertoolsPythonV3-python313-arm64"


def test_each_function_has_its_own_log_group_with_retention(any_stack: StackRun) -> None:
    for component in function_components(any_stack):
        parts = children(any_stack, component)
        log_group = parts["aws:cloudwatch/logGroup:LogGroup"]
        function = parts["aws:lambda/function:Function"]
        assert log_group.inputs["name"] == f"/aws/lambda/{component.name}"
        assert log_group.inputs["retentionInDays"] > 0
        assert function.inputs["name"] == component.name
        assert function.inputs["loggingConfig"]["logGroup"] == log_group.inputs["name"]
        # Created after its log group, so Lambda never creates one without retention first.
        assert log_group.urn in function.dependencies


def test_each_function_role_trusts_lambda_and_writes_only_its_own_logs(any_stack: StackRun) -> None:
    roles = set()
    for component in function_components(any_stack):
        parts = children(any_stack, component)
        role, grant = parts["aws:iam/role:Role"], parts["aws:iam/rolePolicy:RolePolicy"]
        function, log_group = parts["aws:lambda/function:Function"], parts["aws:cloudwatch/logGroup:LogGroup"]
        assert function.inputs["role"] == role.outputs["arn"]
        assert grant.inputs["role"] == role.id
        assert grant.urn in function.dependencies
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert [entry["Principal"] for entry in trust] == [{"Service": "lambda.amazonaws.com"}]
        statements: list[dict[str, Any]] = json.loads(grant.inputs["policy"])["Statement"]
        logs = next(entry for entry in statements if entry.get("Sid") == "WriteOwnLogs")
        assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert logs["Resource"] == [f"{log_group.outputs['arn']}:*"]
        log_groups = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group"
        assert log_group.outputs["arn"] == f"{log_groups}:/aws/lambda/{component.name}"
        roles.add(role.urn)
    assert len(roles) == len(function_components(any_stack))


def test_each_function_runs_the_pinned_runtime_with_the_powertools_layer(any_stack: StackRun) -> None:
    for component in function_components(any_stack):
        function = children(any_stack, component)["aws:lambda/function:Function"]
        assert function.inputs["runtime"] == RUNTIME
        assert function.inputs["architectures"] == [ARCHITECTURE]
        [layer] = function.inputs["layers"]
        assert layer.startswith(f"arn:aws:lambda:{REGION}:017000801446:layer:{powertools_layer_name()}:")
        assert int(layer.rsplit(":", 1)[1]) > 0
        assert function.inputs["handler"].startswith("functions.")


# --- logging: Lambda filters JSON application logs by its own level --------------------------------------

LAMBDA_MODEL = botocore.session.get_session().get_service_model("lambda")
# Written out by hand: Python logging's names on the left, the Lambda API's enum on the right.
EXPECTED_LAMBDA_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "FATAL"}


def test_every_configurable_level_maps_to_a_lambda_application_log_level() -> None:
    # One list of function log levels serves the quarantine functions and the intake alike.
    enum = LAMBDA_MODEL.shape_for("ApplicationLogLevel").enum
    for level in POWERTOOLS_LOG_LEVELS:
        assert lambda_log_level(level) == EXPECTED_LAMBDA_LEVELS[level]
        assert lambda_log_level(level) in enum


def test_a_level_lambda_does_not_know_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"function log level: expected one of .*got 'WARN'"):
        lambda_log_level("WARN")


def test_each_function_logs_json_at_its_configured_level(any_stack: StackRun) -> None:
    system_levels = LAMBDA_MODEL.shape_for("SystemLogLevel").enum
    for component in function_components(any_stack):
        function = children(any_stack, component)["aws:lambda/function:Function"]
        configured = function.inputs["environment"]["variables"][EnvVar.POWERTOOLS_LOG_LEVEL]
        logging_config = function.inputs["loggingConfig"]
        assert logging_config["logFormat"] == "JSON"
        assert logging_config["applicationLogLevel"] == EXPECTED_LAMBDA_LEVELS[configured]
        assert logging_config["systemLogLevel"] in system_levels


def test_a_debug_function_is_not_filtered_by_lambda(dev_stack: StackRun) -> None:
    # The dev stack runs the contain and release functions at DEBUG.
    debug = [
        function for function in dev_stack.of_type("aws:lambda/function:Function")
        if function.inputs["environment"]["variables"][EnvVar.POWERTOOLS_LOG_LEVEL] == "DEBUG"
    ]
    assert debug
    assert {function.inputs["loggingConfig"]["applicationLogLevel"] for function in debug} == {"DEBUG"}


# --- the code archive: the same bytes from every machine -------------------------------------------------


def archive_members(archive: Any) -> list[str]:
    assert isinstance(archive, pulumi.AssetArchive)
    return list(archive.assets)


def test_each_function_archive_holds_exactly_the_package_sources(any_stack: StackRun) -> None:
    sources = sorted(f"functions/{path.name}" for path in FUNCTIONS_DIR.glob("*.py"))
    assert list(code_assets()) == sources
    for function in any_stack.of_type("aws:lambda/function:Function"):
        # The engine receives the members as a map; their order there is not ours to keep.
        members = archive_members(function.inputs["code"])
        assert sorted(members) == sources
        assert all(isinstance(asset, pulumi.FileAsset) for asset in function.inputs["code"].assets.values())


def test_caches_dotfiles_tests_and_stray_files_stay_out_of_the_archive(tmp_path: Path) -> None:
    copy = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    clean = code_assets(copy)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "intake.cpython-313.pyc").write_bytes(b"\x00")
    (copy / "intake.pyc").write_bytes(b"\x00")
    (copy / ".DS_Store").write_bytes(b"\x00")
    (copy / ".hidden.py").write_text("")
    (copy / "notes.md").write_text("local notes")
    (copy / "intake.py~").write_text("editor backup")
    (copy / "tests").mkdir()
    (copy / "tests" / "check.py").write_text("")
    (copy / "test_local.py").write_text("")
    (copy / "conftest.py").write_text("")
    (copy / "vendor").mkdir()
    (copy / "vendor" / "helper.py").write_text("")

    members = list(code_assets(copy))

    assert members == sorted([*clean, "functions/vendor/helper.py"])
    assert [PurePath(member).suffix for member in members] == [".py"] * len(members)
    assert "functions/intake.py" in members


def test_extra_files_join_the_archive_in_order_and_never_replace_a_source() -> None:
    members = code_assets(extra_files={"functions/engine_profile.json": "{}"})
    assert list(members) == sorted(members)
    asset = members["functions/engine_profile.json"]
    assert isinstance(asset, pulumi.StringAsset)
    assert asset.text == "{}"
    with pytest.raises(ValueError, match="would overwrite a source file"):
        code_assets(extra_files={"functions/intake.py": ""})
    with pytest.raises(ValueError, match="inside the functions/ package"):
        code_assets(extra_files={"engine_profile.json": "{}"})
