"""The domain view's rules without a kernel: libvirt's reasons in one line, what define
checks before libvirt, a snapshot's XML, a job's progress and its completion in words, and a
real read of test:///default's domain."""

from __future__ import annotations

import re
import time

import libvirt
import pytest

from ipyvirt.models import domain_view as dv


def test_a_schema_error_is_one_line_without_the_schemas_path() -> None:
    message = (
        "XML document failed to validate against schema: Unable to validate doc against "
        "/usr/share/libvirt/schemas/domain.rng\nExtra element vcpu in interleave\n"
        "Element domain failed to validate content\n"
    )
    assert dv.one_line(message) == (
        "XML document failed to validate against schema: Extra element vcpu in interleave; "
        "Element domain failed to validate content"
    )
    assert dv.one_line("domain 'test' already exists") == "domain 'test' already exists"
    assert dv.one_line(None) == "libvirt gave no reason"


def test_define_refuses_another_name_and_leaves_bad_xml_to_libvirt() -> None:
    assert dv.check_name("<domain><name>test</name></domain>", "test") == ""
    assert dv.check_name("<domain><name>x</name></domain>", "test").startswith(
        "the XML names domain 'x', this view is of 'test': keep <name>test</name>"
    )
    assert dv.check_name("<domain><name>test", "test") == ""  # libvirt says where it breaks


def test_a_snapshots_xml_escapes_what_the_user_typed() -> None:
    assert dv.snapshot_xml("", "") == "<domainsnapshot></domainsnapshot>"
    assert dv.snapshot_xml(" a<b ", "x & y") == (
        "<domainsnapshot><name>a&lt;b</name><description>x &amp; y</description></domainsnapshot>"
    )


@pytest.mark.parametrize(
    ("stats", "shown"),
    [
        (None, {"text": "n/a: this driver has no virDomainGetJobStats"}),
        ({"type": 0}, {"text": "no job running"}),
        (
            # what virDomainGetJobStats gives during a save (QEMU), by its field names
            {
                "type": 1,
                "operation": 2,
                "data_total": 4 * 2**30,
                "data_processed": 2**30,
                "data_remaining": 3 * 2**30,
                "time_elapsed": 2500,
                "time_remaining": 7000,
            },
            {
                "text": "save job running, 1.0 GiB of 4.0 GiB, 2.5 s elapsed, about 7 s left",
                "percent": 25.0,
                "processed": 2**30,
                "remaining": 3 * 2**30,
                "total": 4 * 2**30,
            },
        ),
        (
            {"type": 2, "time_elapsed": 1000},
            {
                "text": "a job running, 1.0 s elapsed",
                "percent": None,
                "processed": None,
                "remaining": None,
                "total": None,
            },
        ),
    ],
)
def test_a_jobs_progress_in_words(stats: dict[str, int] | None, shown: dict[str, object]) -> None:
    assert dv.job_progress(stats) == shown


def test_a_completed_job_in_one_line() -> None:
    at = time.mktime((2026, 12, 1, 21, 0, 5, 0, 0, -1))
    params = {"operation": 5, "time_elapsed": 12345, "data_total": 2**31}
    assert dv.completed_text(params, at) == (
        "outgoing migration job completed at 21:00:05, after 12.3 s, 2.0 GiB moved"
    )
    assert dv.completed_text({}, at) == "job completed at 21:00:05"


def test_a_read_of_the_test_driver() -> None:
    libvirt.registerErrorHandler(lambda *a: None, None)
    conn = libvirt.open("test:///default")
    # a domain of this test's own: test:///default is shared by the whole process
    xml = re.sub(r"<uuid>.*</uuid>", "", conn.lookupByName("test").XMLDesc())
    dom = conn.defineXML(re.sub(r"<name>.*</name>", "<name>dv-unit</name>", xml))
    try:
        dom.create()
        reading = dv.read_domain(conn, "dv-unit")
        assert reading.details is not None
        assert dv.overview(reading.details)["vcpus"] == "2 of 2"
        assert reading.definition.startswith("<domain type='test'>")  # no id: not live
        assert reading.xml.startswith("<domain type='test' id=")
        assert dv.snapshot_rows(reading.details) == []
        poll = dv.poll_domain(conn, "dv-unit")
        assert poll.job is None  # the test driver has no virDomainGetJobStats
        assert poll.sample is not None and poll.sample.source == "per-domain calls"
        assert dv.read_domain(conn, "nope").details is None
    finally:
        dom.destroy()
        dom.undefine()
        conn.close()
