"""tls.certificate against real TLS servers with certificates made for the test (10 and 90 days)."""

from __future__ import annotations

import pytest

from remediation.errors import PermanentError, TemporaryError
from tests.servers.context import run_action
from tests.servers.net import Blackhole
from tests.servers.shorts import ShortsStub
from tests.servers.tls_server import TLSServer

pytestmark = pytest.mark.integration


def _params(server: TLSServer, **extra: object) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "server_name": "localhost",
        "ca_file": str(server.ca_file),
    } | extra


def test_a_90_day_certificate_passes_the_30_day_rule(tls_servers: dict[int, TLSServer]) -> None:
    out = run_action("tls.certificate", _params(tls_servers[90], min_days=30))
    assert out["days_left"] in (89, 90)  # 90 days from issue, minus the seconds since
    assert out["subject"] == "CN=localhost, O=Shorts Test"
    assert out["issuer"] == out["subject"]  # self-signed
    assert out["not_after"].endswith("+00:00")


def test_a_10_day_certificate_fails_the_30_day_rule_with_its_days_left(
    tls_servers: dict[int, TLSServer],
) -> None:
    with pytest.raises(PermanentError, match=r"expires in (9|10) days .* fewer than 30; renew it now") as err:
        run_action("tls.certificate", _params(tls_servers[10], min_days=30))
    assert err.value.output["days_left"] in (9, 10)


def test_the_default_minimum_is_the_manuals_30_days(tls_servers: dict[int, TLSServer]) -> None:
    with pytest.raises(PermanentError, match="fewer than 30"):
        run_action("tls.certificate", _params(tls_servers[10]))


def test_an_untrusted_certificate_is_permanent(tls_servers: dict[int, TLSServer]) -> None:
    params = _params(tls_servers[90])
    del params["ca_file"]  # the system trust store does not know our self-signed certificate
    with pytest.raises(PermanentError, match="not valid for localhost") as err:
        run_action("tls.certificate", params)
    assert err.value.output["error"] == "invalid certificate"


def test_a_certificate_for_another_name_is_permanent(tls_servers: dict[int, TLSServer]) -> None:
    with pytest.raises(PermanentError, match=r"not valid for api.yourservice.com"):
        run_action("tls.certificate", _params(tls_servers[90], server_name="api.yourservice.com"))


def test_refused_connection_is_temporary(refused_port: int, tls_servers: dict[int, TLSServer]) -> None:
    with pytest.raises(TemporaryError, match="no TLS handshake"):
        run_action("tls.certificate", {"host": "127.0.0.1", "port": refused_port})


def test_hung_server_is_a_temporary_timeout(blackhole: Blackhole) -> None:
    with pytest.raises(TemporaryError, match=r"\(timeout\)"):
        run_action("tls.certificate", {"host": "127.0.0.1", "port": blackhole.port, "timeout": "300ms"})


def test_a_port_without_tls_is_temporary(shorts: ShortsStub) -> None:
    with pytest.raises(TemporaryError, match="no TLS handshake"):
        run_action("tls.certificate", {"host": "127.0.0.1", "port": shorts.port, "timeout": "2s"})
