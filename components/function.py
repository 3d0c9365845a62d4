"""One Lambda function from ``functions/``: its own least-privilege role, a log group with retention,
and the AWS-published Powertools layer (the handlers' only dependency beyond the runtime's boto3).

The code archive holds the package's Python sources only, listed explicitly and in sorted order, so the
code hash is the same on every machine: bytecode caches, editor and OS dotfiles, tests and anything
else lying in the directory stay out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, statement
from functions.contract import EnvVar

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
PACKAGE_NAME: Final = "functions"
"""The directory the sources sit in inside the archive: handlers import ``functions.<module>``."""
PACKAGED_SUFFIXES: Final = frozenset({".py"})
"""What the handlers need at run time; requirements.txt documents the layer and is not read."""
LAMBDA_LOG_LEVELS: Final[Mapping[str, str]] = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARN",
    "ERROR": "ERROR",
    "CRITICAL": "FATAL",
}
"""Powertools (Python logging) level names -> Lambda's ApplicationLogLevel enum (TRACE, DEBUG, INFO, WARN,
ERROR, FATAL). With the JSON log format Lambda drops application lines below this level before they
reach CloudWatch, whatever level the handler's logger uses, so both are set from the same setting."""
SYSTEM_LOG_LEVEL: Final = "INFO"
"""Lambda's own lines at INFO (SystemLogLevel DEBUG, INFO or WARN): the per-invocation report with its
duration, memory and timeout is an INFO line and is what an operator reads first after a failure."""
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
COMMERCIAL_LAYER_ACCOUNT = "017000801446"
"""AWS account that publishes the Powertools for AWS Lambda (Python) layers in every commercial region."""
OTHER_PARTITION_LAYER_ACCOUNTS: Mapping[str, str] = {
    "cn-north-1": "498634801083",
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
}
"""Outside the commercial partition Powertools publishes from one account per region, and only in these."""


def lambda_log_level(powertools_level: str) -> str:
    """Lambda's ApplicationLogLevel for a Powertools level name; ValueError for any other name."""
    if powertools_level not in LAMBDA_LOG_LEVELS:
        raise ValueError(
            f"function log level: expected one of {', '.join(LAMBDA_LOG_LEVELS)}, got {powertools_level!r}"
        )
    return LAMBDA_LOG_LEVELS[powertools_level]


def is_packaged(relative: PurePath) -> bool:
    """Whether a file of the functions directory (path relative to it) belongs in the code archive."""
    if relative.suffix not in PACKAGED_SUFFIXES:
        return False
    if any(part.startswith(".") or part in {"__pycache__", "tests"} for part in relative.parts):
        return False
    return not (relative.name.startswith("test_") or relative.name == "conftest.py")


def code_assets(
    source_dir: Path = FUNCTIONS_DIR, extra_files: Mapping[str, str] | None = None
) -> dict[str, pulumi.Asset | pulumi.Archive]:
    """The archive's members: each packaged source file under ``functions/``, plus ``extra_files``
    (archive path -> text, e.g. a document the stack writes for the function), all in sorted order."""
    relative_paths = sorted(
        path.relative_to(source_dir) for path in source_dir.rglob("*") if path.is_file()
    )
    members: dict[str, pulumi.Asset | pulumi.Archive] = {
        f"{PACKAGE_NAME}/{relative.as_posix()}": pulumi.FileAsset(str(source_dir / relative))
        for relative in relative_paths
        if is_packaged(relative)
    }
    for path in extra_files or {}:
        if path in members:
            raise ValueError(f"{path}: the stack would overwrite a source file of the function's archive")
        if not path.startswith(f"{PACKAGE_NAME}/"):
            raise ValueError(f"{path}: extra files go inside the {PACKAGE_NAME}/ package, next to their reader")
    members.update({path: pulumi.StringAsset(text) for path, text in (extra_files or {}).items()})
    return dict(sorted(members.items()))


def powertools_layer_account(partition: str, region: str) -> str:
    """The account that publishes the Powertools layer in ``region``."""
    if partition == "aws":
        return COMMERCIAL_LAYER_ACCOUNT
    if region not in OTHER_PARTITION_LAYER_ACCOUNTS:
        raise ValueError(
            f"Powertools for AWS Lambda publishes no layer in {region} (partition {partition}); "
            f"outside the aws partition it is published only in {', '.join(OTHER_PARTITION_LAYER_ACCOUNTS)}"
        )
    return OTHER_PARTITION_LAYER_ACCOUNTS[region]


def powertools_layer_name() -> str:
    """The layer name for our runtime and architecture (``AWSLambdaPowertoolsPythonV3-python313-arm64``)."""
    return f"AWSLambdaPowertoolsPythonV3-{RUNTIME.replace('.', '')}-{ARCHITECTURE}"


def powertools_layer_arn(
    partition: pulumi.Input[str], region: pulumi.Input[str], version: int
) -> pulumi.Output[str]:
    """The pinned Powertools v3 layer version for our runtime and architecture in ``region``."""
    publisher = pulumi.Output.all(partition, region).apply(lambda where: powertools_layer_account(*where))
    return arn(partition, "lambda", f"layer:{powertools_layer_name()}:{version}", region=region, account=publisher)


class FunctionArgs(DeploymentArgs):
    """Inputs of one Lambda function."""

    handler: str
    """Dotted handler path, e.g. ``functions.contain.handler`` (the package is deployed as ``functions/``
    so handlers import their shared modules exactly as the tests do)."""
    description: str
    """What the function does, shown in the console."""
    environment: dict[str, pulumi.Input[str]]
    """Environment variables (documented in README.md), except POWERTOOLS_LOG_LEVEL, set from log_level."""
    log_level: str
    """Powertools level name (DEBUG, INFO, WARNING, ERROR, CRITICAL): POWERTOOLS_LOG_LEVEL and Lambda's
    application log level."""
    statements: list[dict[str, Any]]
    """IAM statements the function needs beyond writing its own logs; explicit actions, scoped resources."""
    layer_arn: pulumi.Input[str]
    """The Powertools layer ARN."""
    log_retention_days: int
    """Retention of the function's log group."""
    timeout_seconds: int
    """Maximum run time."""
    memory_mb: int
    """Memory size."""
    extra_files: dict[str, str]
    """Documents the stack writes into the code archive (archive path -> text), e.g. the Detect engine's
    behavior profile, too large for Lambda's 4 KB of environment variables."""


class FunctionComponent(pulumi.ComponentResource):
    """A Lambda function with a role that can do exactly what ``statements`` say, plus log to its group."""

    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:function:Function", name, None, opts)
        application_log_level = lambda_log_level(args["log_level"])
        child = pulumi.ResourceOptions(parent=self)
        # The log group is created before the function so Lambda never auto-creates one without retention.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{name}",
            retention_in_days=args["log_retention_days"],
            tags=args["tags"],
            opts=child,
        )
        # Lambda sends no aws:SourceAccount, so its trust carries no account condition.
        self.role = service_role(
            f"{name}-role", "lambda.amazonaws.com", account_id=None, description=f"Execution role of {name}",
            tags=args["tags"], opts=child,
        )
        # "<log group ARN>:*" is the resource AWS documents for a Lambda role's CreateLogStream and
        # PutLogEvents: CloudWatch Logs authorises both against the group's ARN with the ":*" suffix.
        own_log_streams = pulumi.Output.concat(self.log_group.arn, ":*")
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=policy_document(
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"], [own_log_streams], sid="WriteOwnLogs"
                ),
                *args["statements"],
            ),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=name,
            description=args["description"],
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=args["handler"],
            code=pulumi.AssetArchive(code_assets(extra_files=args["extra_files"])),
            role=self.role.arn,
            layers=[args["layer_arn"]],
            timeout=args["timeout_seconds"],
            memory_size=args["memory_mb"],
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={**args["environment"], EnvVar.POWERTOOLS_LOG_LEVEL.value: args["log_level"]}
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=self.log_group.name,
                application_log_level=application_log_level,
                system_log_level=SYSTEM_LOG_LEVEL,
            ),
            tags=args["tags"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, self.log_group]),
        )
        self.register_outputs({"functionArn": self.function.arn, "roleArn": self.role.arn})
