"""Notifications: `notify.slack` (an incoming webhook) and `notify.webhook` (any JSON endpoint).

A Slack webhook URL is itself a credential, so it only ever comes from a secret and is never shown:
messages and outputs name it "the Slack webhook".
"""

from __future__ import annotations

from remediation.actions._display import safe_url, shorten
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._httpclient import check_status, send
from remediation.actions._params import params_schema, secret_name, string, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action

SLACK_PARAMS = params_schema(
    {
        "channel": string("The channel, e.g. '#incident'.", pattern="^[#@]?[^\\s]+$"),
        "text": string("The message; the manual's incident title is '[P0] ${service} 장애 - ${timestamp}'."),
        "webhook_secret": secret_name("The Slack incoming-webhook URL.", "SLACK_WEBHOOK_URL"),
        "timeout": duration_schema("How long the post may take.", "10s"),
    },
    required=("channel", "text"),
)
WEBHOOK_PARAMS = params_schema(
    {
        "url": string("Where to POST, e.g. ${profile.status_page_url}/api/incidents."),
        "json": {"description": "The JSON body to send."},
        "bearer_secret": secret_name("Sends `Authorization: Bearer <secret>`."),
        "timeout": duration_schema("How long the post may take.", "10s"),
    },
    required=("url", "json"),
)


def describe_slack(params: Params) -> str:
    return f"would post to Slack {params['channel']}: {shorten(params['text'], 80)!r}"


@action(
    "notify.slack",
    summary="Post a message to a Slack channel through an incoming webhook.",
    params=SLACK_PARAMS,
    mutates=True,
    describe=describe_slack,
    outputs=("ok",),
)
async def slack(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(SLACK_PARAMS, params)
    webhook = ctx.secret(p["webhook_secret"])
    label = "the Slack webhook"
    reply = await send(
        "POST",
        webhook,
        json={"channel": p["channel"], "text": p["text"]},
        timeout=parse_duration(p["timeout"]),
        label=label,
    )
    check_status(reply, [200], f"POST {label} ({p['webhook_secret']})")
    return {"ok": True}


def describe_webhook(params: Params) -> str:
    return f"would POST {shorten(repr(params['json']), 60)} to {safe_url(params['url'])}"


@action(
    "notify.webhook",
    summary="POST a JSON document to a webhook (status page, paging service).",
    params=WEBHOOK_PARAMS,
    mutates=True,
    describe=describe_webhook,
    outputs=("status",),
)
async def webhook(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(WEBHOOK_PARAMS, params)
    bearer = ctx.secret(p["bearer_secret"]) if p.get("bearer_secret") else None
    reply = await send("POST", p["url"], json=p["json"], bearer=bearer, timeout=parse_duration(p["timeout"]))
    check_status(reply, None, f"POST {safe_url(p['url'])}")
    return {"status": reply.status}
