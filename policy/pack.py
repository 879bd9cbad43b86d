"""The CrossGuard policies, built from the plain rule functions in policy/rules.py (importing this module
starts nothing; only policy/__main__.py constructs the blocking PolicyPack)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.rules import RESOURCE_RULES, STACK_RULES, ResourceRule

PACK_NAME = "shorts-platform"


def _resource_validation(rule: ResourceRule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def _stack_validation(
    rule: Callable[[list[tuple[str, Mapping[str, Any]]]], list[str]],
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule([(r.resource_type, r.props) for r in args.resources]):
            report_violation(message, None)

    return validate


def policies() -> list[Policy]:
    """Every rule, mandatory: a violation blocks `pulumi preview` and `pulumi up`."""
    built: list[Policy] = [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=_resource_validation(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, (description, rule) in RESOURCE_RULES.items()
    ]
    built.extend(
        StackValidationPolicy(
            name=name,
            description=description,
            validate=_stack_validation(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, (description, rule) in STACK_RULES.items()
    )
    return built
