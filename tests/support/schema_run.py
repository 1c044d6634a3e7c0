"""One schemathesis run of an API operation against a live server: the same
hypothesis settings for every API document the tests check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings


def check_operation(
    operation: Any,
    path_parameter_choices: Sequence[dict[str, Any] | None],
    *,
    base_url: str,
    session: requests.Session,
    headers: dict[str, str],
    checks: list[Any],
    examples: int,
) -> None:
    """Generated requests of ``operation`` (once per choice of path parameters)
    answered as its document says."""
    for path_parameters in path_parameter_choices:
        strategy = operation.as_strategy(path_parameters=path_parameters)

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                base_url=base_url, session=session, headers=headers, checks=checks
            )

        check()
