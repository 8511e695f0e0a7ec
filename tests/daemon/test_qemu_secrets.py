"""The explorer's secrets tab against a real secret driver: the test driver has none, the
tests' QEMU daemon links libvirt's (``Libvirtd(qemu=True)``). Each secret shows its usage
type and id, never its value: the kernel never calls ``secretGetValue``. A secret defined or
undefined by another connection reaches the view by libvirt's secret lifecycle events, with
no cell running."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from ipyvirt.testing.libvirtd import Libvirtd

from kernel import Kernel

pytestmark = [pytest.mark.qemu, pytest.mark.daemon, pytest.mark.kernel]

# Every call of secretGetValue in the kernel goes through libvirtmod (libvirt-python's C
# module): counted, then let through
SETUP = """
%load_ext ipyvirt
import libvirtmod, ipyvirt
from ipyvirt.widgets import Explorer
_value_reads = []
_get_value = libvirtmod.virSecretGetValue
def _counted(*args):
    _value_reads.append(len(args))
    return _get_value(*args)
libvirtmod.virSecretGetValue = _counted
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


@pytest.fixture
def secrets(qemu_daemon: Libvirtd) -> Iterator[libvirt.virConnect]:
    """A read-write connection of this process (another than the kernel's) to the QEMU
    driver; the secrets defined on it are gone after the test (ephemeral: none is written
    to /etc/libvirt/secrets)."""
    c = libvirt.open(qemu_daemon.qemu_uri)
    before = {s.UUIDString() for s in c.listAllSecrets()}
    yield c
    for s in c.listAllSecrets():
        if s.UUIDString() not in before:
            s.undefine()
    c.close()


def secret_xml(usage: str) -> str:
    head = "<secret ephemeral='yes' private='no'><description>ipyvirt test</description>"
    return f"{head}{usage}</secret>"


def rows(kernel: Kernel, comm_id: str, since: int) -> list[list[dict[str, Any]]]:
    """Every list of secrets the kernel sent the secrets view after its first *since*
    messages between cells, in order."""
    out = []
    for m in kernel.between[since:]:
        content = m["content"]
        if m["msg_type"] != "comm_msg" or content.get("comm_id") != comm_id:
            continue
        data = content["data"].get("state", {}).get("data")
        if data and "secrets" in data:
            out.append(data["secrets"])
    return out


def wait_for_secrets(
    kernel: Kernel, comm_id: str, ok: Any, what: str, since: int = 0
) -> list[dict[str, Any]]:
    """The first list of secrets sent to the view after message *since* that *ok* accepts,
    with no cell running (60 s: a failure, not a speed test)."""
    deadline = time.monotonic() + 60
    while True:
        found = next((r for r in rows(kernel, comm_id, since) if ok(r)), None)
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"{what}: {rows(kernel, comm_id, since)}"
        kernel.drain(0.2)


def by_uuid(found: list[dict[str, Any]], uuid_: str) -> dict[str, Any] | None:
    return next((s for s in found if s["uuid"] == uuid_), None)


def test_secrets_show_their_usage_never_their_value_and_follow_events(
    qemu_daemon: Libvirtd, kernel: Kernel, secrets: libvirt.virConnect
) -> None:
    tag = uuid.uuid4().hex[:8]
    path = f"/var/lib/libvirt/images/ipyvirt-test-{tag}.img"
    value = f"not-to-be-read-{tag}".encode()
    volume_key = secrets.secretDefineXML(
        secret_xml(f"<usage type='volume'><volume>{path}</volume></usage>")
    )
    volume_key.setValue(value)
    kernel.execute(f"ex = Explorer(ipyvirt.Connection(uri={qemu_daemon.qemu_uri!r}))").ok()
    comm_id = kernel.value("ex.secrets.model_id")
    kernel.between.clear()
    kernel.send_custom(comm_id, {"do": "hello"})  # what the view says when its tab shows
    shown = wait_for_secrets(
        kernel, comm_id, lambda r: by_uuid(r, volume_key.UUIDString()), "the volume's secret"
    )
    assert by_uuid(shown, volume_key.UUIDString()) == {
        "uuid": volume_key.UUIDString(),
        "usage_type": "volume",
        "usage_id": path,
        "ephemeral": True,
        "private": False,
        "description": "ipyvirt test",
    }
    assert kernel.value("ex.secrets.live") == "live: libvirt's secret events"

    # defined by another connection: on screen with no cell running
    since = len(kernel.between)
    ceph = secrets.secretDefineXML(
        secret_xml(f"<usage type='ceph'><name>ipyvirt-test-{tag}</name></usage>")
    )
    shown = wait_for_secrets(
        kernel,
        comm_id,
        lambda r: by_uuid(r, ceph.UUIDString()),
        "the secret defined elsewhere",
        since,
    )
    made = by_uuid(shown, ceph.UUIDString())
    assert made is not None
    assert (made["usage_type"], made["usage_id"]) == ("ceph", f"ipyvirt-test-{tag}")
    # undefined by another connection: gone from the view, the other one stays
    gone = ceph.UUIDString()
    since = len(kernel.between)
    ceph.undefine()
    wait_for_secrets(
        kernel,
        comm_id,
        lambda r: by_uuid(r, gone) is None and by_uuid(r, volume_key.UUIDString()),
        "the secret undefined elsewhere",
        since,
    )

    # the value never crossed: not read in the kernel, not in any message to the view
    assert kernel.value("len(_value_reads)") == 0
    assert kernel.value("ex.secrets.reads") >= 3  # the first read and one per event
    sent = json.dumps([m["content"] for m in kernel.between], default=str)
    assert value.decode() not in sent
    kernel.execute("ex.close()").ok()
