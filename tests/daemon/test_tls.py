"""``test+tls://`` to a libvirtd listening with TLS, certificates made by certtool
(ipyvirt.testing.pki): each way a certificate can be wrong is one line saying which.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ipyvirt.connection import ConnectFailed, open_libvirt
from ipyvirt.testing.libvirtd import Libvirtd
from ipyvirt.testing.pki import Pki

from kernel import Kernel
from transport import one_line

pytestmark = [pytest.mark.daemon]


@pytest.fixture(scope="module")
def pki(tls_host: None) -> Iterator[Pki]:
    p = Pki().make()
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def other_ca(tls_host: None) -> Iterator[Pki]:
    """A CA the daemon does not trust."""
    p = Pki(name="another CA").make()
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def daemon(pki: Pki) -> Iterator[Libvirtd]:
    with Libvirtd(tls=pki.server) as d:
        yield d


def refusal(uri: str) -> str:
    with pytest.raises(ConnectFailed) as failed:
        open_libvirt(uri, True).close()
    return one_line(str(failed.value), uri)


def test_the_right_certificates_open_an_encrypted_connection(daemon: Libvirtd, pki: Pki) -> None:
    conn = open_libvirt(daemon.tls_uri(pki.client()), False)
    try:
        assert conn.isEncrypted() == 1 and conn.isSecure() == 1
        assert [d.name() for d in conn.listAllDomains()] == ["test"]
    finally:
        conn.close()


def test_an_expired_client_certificate(daemon: Libvirtd, pki: Pki) -> None:
    where = pki.client("expired", expired=True)
    assert refusal(daemon.tls_uri(where)) == (
        f"the client certificate {where}/clientcert.pem has expired: make a new one, signed "
        "by the daemon's CA, and put it there"
    )


def test_a_wrong_ca_for_the_daemon(daemon: Libvirtd, pki: Pki, other_ca: Pki) -> None:
    """The client trusts another CA (and holds a certificate of that CA's)."""
    where = other_ca.client("elsewhere")
    assert refusal(daemon.tls_uri(where)) == (
        f"the daemon's certificate does not verify against the CA in {where} (another CA "
        "signed it, or it is not for this host name): put the CA that signed the daemon's "
        "certificate there as cacert.pem"
    )


def test_a_client_certificate_of_another_ca(daemon: Libvirtd, pki: Pki, other_ca: Pki) -> None:
    """The client's own certificate is not signed by the CA it names."""
    where = other_ca.client("mixed", trust=pki)
    said = refusal(daemon.tls_uri(where))
    assert said.startswith(
        f"the client certificate {where}/clientcert.pem is not signed by the CA in "
        f"{where}/cacert.pem ("
    ), said


def test_the_daemon_refuses_a_ca_it_does_not_trust(
    daemon: Libvirtd, pki: Pki, other_ca: Pki
) -> None:
    """The client trusts both CAs, its certificate is the other's: the daemon says no."""
    where = other_ca.client("both", trust=pki)
    (where / "cacert.pem").write_text(pki.ca_cert.read_text() + other_ca.ca_cert.read_text())
    assert refusal(daemon.tls_uri(where)) == (
        f"the daemon refused the client certificate in {where}: it must be signed by a CA "
        "the daemon trusts (its ca_file) and be valid now"
    )


def test_no_certificates_where_pkipath_says(daemon: Libvirtd, tmp_path: Path) -> None:
    assert refusal(daemon.tls_uri(tmp_path)) == (
        f"no certificate at {tmp_path}/cacert.pem: a pkipath dir holds cacert.pem, "
        "clientcert.pem and clientkey.pem; name yours with ?pkipath=DIR"
    )


@pytest.mark.kernel
def test_virt_connect_over_tls_in_a_kernel(
    daemon: Libvirtd, pki: Pki, other_ca: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = daemon.tls_uri(pki.client())
    expired = daemon.tls_uri(pki.client("expired", expired=True))
    wrong_ca = daemon.tls_uri(other_ca.client("elsewhere"))
    # as the README says: libvirt's own warning about the CA goes nowhere, ipyvirt's line stays
    monkeypatch.setenv("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null")
    kernel = Kernel()
    try:
        kernel.execute("%load_ext ipyvirt").ok()
        opened = kernel.execute(f"%virt connect {uri}", 60).ok()
        assert opened.result.endswith(" read-only open>"), opened.result
        listing = kernel.execute("%virt list").ok()
        assert any(line.split()[:1] == ["test"] for line in listing.result.splitlines())
        for bad, says in ((expired, "has expired"), (wrong_ca, "does not verify against")):
            refused = kernel.execute(f"%virt connect {bad} --name bad", 60)
            message = refused.stderr.strip()
            assert message.startswith(f"UsageError: cannot connect to {bad}: the "), message
            assert says in message and "\n" not in message, message
    finally:
        kernel.shutdown()
