"""`tls.certificate`: connect, verify the certificate chain and host name, and count the days it has left."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._params import params_schema, string, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import PermanentError, TemporaryError

PARAMS = params_schema(
    {
        "host": string("The host to connect to, e.g. api.yourservice.com."),
        "port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "default": 443,
            "description": "TLS port.",
        },
        "server_name": string("The name the certificate must be valid for (SNI); default: host."),
        "ca_file": string("A PEM file of trusted CAs; default: the system's trust store."),
        "min_days": {
            "type": "integer",
            "minimum": 0,
            "default": 30,
            "description": "Fail when fewer days are left (the manual renews 30 days ahead).",
        },
        "timeout": duration_schema("How long the connection and handshake may take.", "10s"),
    },
    required=("host",),
)


def _name(rdns: Any) -> str:
    """ssl's ((('commonName', 'x'),), ...) as 'CN=x, O=y'."""
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C", "organizationalUnitName": "OU"}
    return ", ".join(f"{short.get(k, k)}={v}" for rdn in rdns for k, v in rdn)


async def _peer_certificate(
    host: str, port: int, server_name: str, ca_file: str | None, timeout: float
) -> Any:
    context = ssl.create_default_context(cafile=ca_file)
    where = f"{host}:{port}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=server_name), timeout
        )
    except ssl.SSLCertVerificationError as exc:
        raise PermanentError(
            f"the certificate of {where} is not valid for {server_name}: {exc.verify_message}; "
            "renew or fix it (or give ca_file if it is signed by a private CA)",
            output={"host": host, "port": port, "error": "invalid certificate", "detail": exc.verify_message},
        ) from None
    except (TimeoutError, ConnectionError, OSError, ssl.SSLError) as exc:
        detail = "timeout" if isinstance(exc, TimeoutError) else str(exc)
        raise TemporaryError(
            f"no TLS handshake with {where} ({detail}); check that the host serves TLS on that port",
            output={"host": host, "port": port, "error": "connection failed", "detail": detail},
        ) from None
    try:
        return writer.get_extra_info("peercert")
    finally:
        writer.close()


def describe(params: Params) -> str:
    p = with_defaults(PARAMS, params)
    return (
        f"would check that the certificate of {p['host']}:{p['port']} has at least {p['min_days']} days left"
    )


@action(
    "tls.certificate",
    summary="Check a server's TLS certificate: valid for the name, and enough days before it expires.",
    params=PARAMS,
    mutates=False,
    describe=describe,
    outputs=("days_left", "not_after", "subject", "issuer"),
)
async def certificate(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(PARAMS, params)
    name = p.get("server_name", p["host"])
    cert = await _peer_certificate(p["host"], p["port"], name, p.get("ca_file"), parse_duration(p["timeout"]))
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    output = {
        "days_left": int((expires - time.time()) // 86400),
        "not_after": datetime.fromtimestamp(expires, UTC).isoformat(),
        "subject": _name(cert.get("subject", ())),
        "issuer": _name(cert.get("issuer", ())),
    }
    if output["days_left"] < p["min_days"]:
        raise PermanentError(
            f"the certificate of {p['host']}:{p['port']} expires in {output['days_left']} days "
            f"({output['not_after']}), fewer than {p['min_days']}; renew it now",
            output=output,
        )
    return output
