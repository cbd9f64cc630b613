"""One function decides which webhook URLs are acceptable: https, and
resolving only to public addresses, unless WEBHOOKS_ALLOW_PRIVATE."""

import pytest

from missioncontrol.alerts.services import check_webhook_url
from missioncontrol.errors import ServiceError

REFUSED = [
    "http://1.1.1.1/hook",  # not https
    "ftp://1.1.1.1/hook",
    "https://127.0.0.1/hook",  # loopback
    "https://localhost:8443/hook",  # a name that resolves to loopback
    "https://10.0.0.5/hook",  # private
    "https://192.168.1.20/hook",
    "https://172.16.0.1/hook",
    "https://169.254.169.254/latest",  # link-local (cloud metadata)
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "https://0.0.0.0/hook",
    "https://100.64.0.1/hook",  # shared address space (CGNAT)
    "https://224.0.0.1/hook",  # multicast
    "https://no-such-host.invalid/hook",  # does not resolve
    "https://user:pw@1.1.1.1/hook",  # credentials in the URL
    "https:///hook",
    "https://1.1.1.1:99999/hook",  # bad port
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_naming_the_url_field(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(ServiceError) as caught:
        check_webhook_url(url)
    assert caught.value.code == "invalid" and set(caught.value.errors) == {"url"}


def test_a_public_https_address_is_admitted(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    assert check_webhook_url("https://1.1.1.1/hook") == ["1.1.1.1"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "https://10.0.0.5/hook", "http://localhost/hook", "https://[::1]/hook"]
)
def test_allow_private_admits_http_and_private_addresses(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    assert check_webhook_url(url)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "https://no-such-host.invalid/hook"])
def test_allow_private_still_refuses_other_schemes_and_unknown_hosts(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with pytest.raises(ServiceError):
        check_webhook_url(url)
