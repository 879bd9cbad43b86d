"""`manual.approve`: a gate where a human says yes before the runbook goes on."""

from __future__ import annotations

from remediation.actions._params import params_schema, string
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import ApprovalDenied

PARAMS = params_schema({"prompt": string("The question put to the on-call engineer.")}, required=("prompt",))


def describe(params: Params) -> str:
    return f"would ask for approval: {params['prompt']!r}"


@action(
    "manual.approve",
    summary="Ask a human for approval (interactively, or --yes); a refusal stops the run.",
    params=PARAMS,
    mutates=False,
    describe=describe,
    outputs=("approved",),
)
async def approve(ctx: ActionContext, params: Params) -> Output:
    if not await ctx.approve(params["prompt"]):
        raise ApprovalDenied(f"not approved: {params['prompt']!r}; the run stops here")
    return {"approved": True}
