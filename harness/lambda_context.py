"""A Lambda context as the runtime passes it to a handler, for running handlers outside Lambda (tests, the
drill, the benchmarks): Powertools' ``inject_lambda_context`` and the intake read these attributes."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext


class LocalLambdaContext(LambdaContext):
    """Powertools' context type answers 0 for the remaining time; a local invocation has a budget, as a real
    one does (the intake paces device-by-device containment by it)."""

    def __init__(self, remaining_ms: int) -> None:
        super().__init__()
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return self._remaining_ms


def lambda_context(
    function_name: str, *, region: str, account_id: str, request_id: str = "00000000-0000-4000-8000-000000000000",
    memory_mb: int = 256, log_stream: str = "local", remaining_ms: int = 120_000,
) -> LambdaContext:
    """The context of one invocation of ``function_name`` in ``region`` of ``account_id`` with
    ``remaining_ms`` left before its timeout."""
    context = LocalLambdaContext(remaining_ms)
    # Powertools' context type keeps its state in these attributes and exposes them as properties.
    context._function_name = function_name
    context._function_version = "$LATEST"
    context._invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
    context._memory_limit_in_mb = memory_mb
    context._aws_request_id = request_id
    context._log_group_name = f"/aws/lambda/{function_name}"
    context._log_stream_name = log_stream
    return context
