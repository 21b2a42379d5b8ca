"""Acknowledging cdk-nag findings: every acknowledgement carries the reason a reviewer needs."""

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``AwsSolutions-S1`` or ``AwsSolutions-IAM5[...]``)
    on ``construct`` and everything under it."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def finding_text(scope: IConstruct, value: str) -> str:
    """How cdk-nag spells a (tokenized) ARN inside a finding id, e.g. ``<MediaBucket1A2B.Arn>``.

    Lets an acknowledgement name the exact resource it covers without hard-coding logical ids.
    """
    return _render(Stack.of(scope).resolve(value))


def _render(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((kind, arg),) = node.items()
        if kind == "Ref":
            return f"<{arg}>"
        if kind == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if kind == "Fn::Join":
            return arg[0].join(_render(part) for part in arg[1])
    raise ValueError(f"cannot render {node!r} as cdk-nag finding text")
