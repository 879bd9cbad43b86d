"""`wait`: let a change settle (a restart, a cache refill) before the next check."""

from __future__ import annotations

import asyncio

from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._params import params_schema
from remediation.actions.registry import ActionContext, Output, Params, action

PARAMS = params_schema({"duration": duration_schema("How long to wait.")}, required=("duration",))


def describe(params: Params) -> str:
    return f"would wait {params['duration']}"


@action(
    "wait",
    summary="Wait for a fixed time.",
    params=PARAMS,
    mutates=False,
    describe=describe,
    outputs=("seconds",),
)
async def wait(ctx: ActionContext, params: Params) -> Output:
    seconds = parse_duration(params["duration"])
    await asyncio.sleep(seconds)
    return {"seconds": seconds}
