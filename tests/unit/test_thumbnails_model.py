"""The thumbnail column's rules without a kernel (ipyvirt.models.thumbnails): rows read only
while watched, each at most once an interval, words re-checked rarely, a picture sent once
per change, rows that leave the page forgotten; and the real test driver's pictures."""

from __future__ import annotations

import libvirt

from ipyvirt.models.thumbnails import Thumb, ThumbSchedule, message, read_thumbs


def pic(digest: bytes) -> Thumb:
    return Thumb(b"\x89PNG" + digest, 4, 3, digest)


def test_reads_only_while_watched_and_each_row_once_an_interval() -> None:
    s = ThumbSchedule(5.0, recheck=30.0)
    assert s.show({"a", "b"}) is True  # never read: soon
    assert s.to_read(0.0) == []  # nobody watches
    s.watch(0.0)
    assert s.to_read(0.0) == ["a", "b"]
    s.reading(["a", "b"], 0.0)
    assert s.to_read(4.9) == []
    assert s.to_read(5.0) == ["a", "b"]
    assert s.watched(12.4) and not s.watched(12.5)  # two intervals and a half after the ask
    assert s.to_read(12.5) == []


def test_a_picture_goes_once_per_change_and_a_word_is_rechecked_rarely() -> None:
    s = ThumbSchedule(5.0, recheck=30.0)
    s.show({"a", "b"})
    s.watch(0.0)
    s.reading(["a", "b"], 0.0)
    first = {"a": pic(b"1"), "b": Thumb(word="no screen", why="no screen on b")}
    assert s.got(first, 0.1) == first
    s.watch(5.0)
    assert s.to_read(5.1) == ["a"]  # b's word stands for 30 s
    assert s.got({"a": pic(b"1")}, 5.2) == {}  # the same picture: nothing to send
    assert s.got({"a": pic(b"2")}, 10.2) == {"a": pic(b"2")}
    assert s.got({"c": pic(b"1")}, 10.3) == {}  # not on the page (any more)


def test_rows_that_leave_the_page_are_forgotten() -> None:
    s = ThumbSchedule(5.0)
    s.show({"a"})
    s.watch(0.0)
    s.reading(["a"], 0.0)
    s.got({"a": pic(b"1")}, 0.1)
    assert s.show({"b"}) is True
    assert s.have == {} and s.due == {}
    assert s.show({"b"}) is True  # still unread
    s.reading(["b"], 1.0)
    assert s.show({"b"}) is False


def test_message_carries_pictures_as_buffers_and_words_inline() -> None:
    content, buffers = message({"a": pic(b"1"), "b": Thumb(word="no screen", why="why")})
    assert content == {
        "kind": "thumbs",
        "shots": [["a", 4, 3]],
        "words": {"b": ["no screen", "why"]},
    }
    assert buffers == [b"\x89PNG1"]


def test_the_test_drivers_picture_and_a_domain_gone() -> None:
    conn = libvirt.open("test:///default")
    try:
        uuid = conn.lookupByName("test").UUIDString()
        found = read_thumbs(conn, {"a": uuid, "b": "00000000-0000-0000-0000-000000000000"})
    finally:
        conn.close()
    assert (found["a"].width, found["a"].height, found["a"].word) == (1120, 832, "")
    assert len(found["a"].digest) == 16
    assert found["b"].word == "gone"
