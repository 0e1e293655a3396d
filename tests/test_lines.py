"""LineSplitter: the line splitting every backend shares, fed the way real streams arrive."""

from __future__ import annotations

from parallelcc_sdk import LineSplitter


def split(chunks: list[bytes | str]) -> list[str]:
    splitter = LineSplitter()
    lines: list[str] = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    return lines + splitter.finish()


def test_lines_across_chunks_in_order() -> None:
    assert split([b"one\ntw", b"o\n", b"", b"thr", b"ee"]) == ["one", "two", "three"]


def test_crlf_and_a_final_line_without_newline() -> None:
    assert split([b"a\r\nb\r", b"\n\r\nc"]) == ["a", "b", "", "c"]
    assert split([b"only\n"]) == ["only"]
    assert split([]) == []


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert split([b"bad \xff\xfe end\n", b"ok \xc3"]) == ["bad \ufffd\ufffd end", "ok \ufffd"]


def test_a_multibyte_character_split_between_chunks_survives() -> None:
    encoded = "日本語 é\n".encode()
    assert split([encoded[:2], encoded[2:5], encoded[5:]]) == ["日本語 é"]


def test_text_chunks_are_accepted_too() -> None:
    assert split(["héllo\nwor", "ld\r\n", "lone \ud800 surrogate"]) == [
        "héllo",
        "world",
        "lone \ufffd\ufffd\ufffd surrogate",
    ]


def test_a_ten_megabyte_line_in_small_chunks() -> None:
    # Each chunk is scanned once: 10 MB in 4 kB chunks is 2,560 feeds, not a quadratic rescan.
    chunk = b"x" * 4096
    splitter = LineSplitter()
    lines: list[str] = []
    for _ in range(10 * 1024 * 1024 // len(chunk)):
        lines += splitter.feed(chunk)
    lines += splitter.feed(b"\nafter\n")
    assert [len(line) for line in lines] == [10 * 1024 * 1024, 5]
