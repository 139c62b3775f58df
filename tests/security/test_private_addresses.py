"""Which addresses count as private: every IPv6 form that carries an IPv4 address inside is judged
by that IPv4 address (or refused whole where the embedding is the network's own business).

The rule (oven.capture.is_private): not globally routable unicast is private, and
- IPv4-mapped `::ffff:a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96` and 6to4
  `2002::/16` are judged by the IPv4 address inside (a NAT64 gateway or 6to4 relay forwards
  to it);
- IPv4-compatible `::a.b.c.d` (deprecated), the local-use NAT64 prefix `64:ff9b:1::/48`
  (its IPv4 position depends on the operator's prefix length) and Teredo `2001::/32` (the
  client address is obfuscated, and no capture target lives there) are private whole.
"""

from __future__ import annotations

import pytest

from oven.capture import RequestGuard, is_private

PRIVATE = [
    # IPv4
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "0.1.2.3", "192.0.2.1", "198.18.0.1", "224.0.0.1", "255.255.255.255",
    "240.0.0.1",
    # IPv6 natives
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "fe80::1%eth0",
    # IPv4-mapped and SIIT (IPv4-translated)
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0:127.0.0.1",
    "::ffff:0:192.168.0.1",
    # NAT64 well-known prefix with a private IPv4 inside
    "64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.1.2.3",
    "64:ff9b::192.168.1.1", "64:ff9b::100.64.0.1",
    # NAT64 local-use prefix: private whole
    "64:ff9b:1::7f00:1", "64:ff9b:1::808:808", "64:ff9b:1:ffff::1",
    # 6to4 with a private IPv4 inside
    "2002:7f00:1::", "2002:7f00:0001:1234::1", "2002:a9fe:a9fe::1", "2002:c0a8:101::",
    "2002:a00:1::",
    # IPv4-compatible: private whole
    "::127.0.0.1", "::7f00:1", "::10.0.0.1", "::8.8.8.8", "::5db8:d822",
    # Teredo: private whole
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::1",
]

PUBLIC = [
    "8.8.8.8", "93.184.216.34", "1.1.1.1",
    "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "64:ff9b::5db8:d822", "2002:808:808::1",
]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_and_ipv6_forms_embedding_them_are_private(address: str) -> None:
    assert is_private(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_and_forms_embedding_public_ipv4_are_public(address: str) -> None:
    assert not is_private(address)


@pytest.mark.parametrize("url", [
    "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://[::127.0.0.1]/",
    "http://[::ffff:0:7f00:1]:8080/", "http://[64:ff9b:1::1]/", "ws://[2001::1]/",
    "http://0x7f.1/", "http://2130706433/", "http://[::FFFF:7F00:1]/",
])
async def test_the_page_guard_refuses_embedded_private_addresses_in_any_spelling(
        url: str) -> None:
    async def no_dns(host: str) -> list[str]:
        raise AssertionError(f"an IP literal was looked up: {host}")

    assert await RequestGuard("public", resolver=no_dns).verdict(url) == "private_address"
