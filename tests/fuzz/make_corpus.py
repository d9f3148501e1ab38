#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets in tests/fuzz/ (reproducibly).

    python3 tests/fuzz/make_corpus.py          # rewrites tests/fuzz/corpus/<target>/
    python3 tests/fuzz/make_corpus.py --check  # exits 1 when the committed corpus differs

Every seed is hand-made and named for what it holds: RFC 6455 §5.7 frames, fragmented
messages, control frames between fragments, close frames, framing errors; browser and
RFC 6455 §1.3 handshake requests and broken ones; UTF-8 edge cases (RFC 3629, Markus Kuhn's
stress test). Inputs follow the layouts documented in fuzz_common.hpp and at the top of each
fuzz_*.cpp:

    frame_parser  [mode] [chunk plan] [frames]   mode bit 0: client role, bits 1-3: size limit
    handshake     [limit] [chunk plan] [request] max_header_bytes = 8 * limit
    utf8          [chunk plan] [text]
    deflate       [mode] [chunk plan] [payloads]    mode bit 0: context kept, bits 1-3: limit

Python 3 standard library only.
"""

import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpus"

# --- input layout helpers ---------------------------------------------------------------


def plan(*sizes):
    """A chunk plan (fuzz_common.hpp): up to 15 chunk sizes, 0 = the rest; none = whole."""
    assert len(sizes) <= 15 and all(0 <= s <= 255 for s in sizes)
    return bytes([len(sizes)]) + bytes(sizes)


SERVER, CLIENT = 0, 1
# Index into size_limits in fuzz_frame_parser.cpp: 0, 1, 125, 126, 1000, 65535, 65536, 16 MiB.
LIMIT_0, LIMIT_1, LIMIT_125, LIMIT_126, LIMIT_1000, LIMIT_65535, LIMIT_65536, LIMIT_16M = range(8)


def mode(role, limit=LIMIT_16M):
    return bytes([role | limit << 1])


# --- RFC 6455 framing -----------------------------------------------------------------------

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # the masking key of the RFC 6455 §5.7 examples


def frame(op, payload=b"", fin=True, key=None, rsv=0, length=None):
    """One frame; `key` masks it; `length` overrides the encoded payload length."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv << 4 | op
    mask_bit = 0x80 if key is not None else 0
    if n < 126:
        header = bytes([first, mask_bit | n])
    elif n <= 0xFFFF:
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack(">Q", n)
    if key is None:
        return header + payload
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def masked(op, payload=b"", fin=True, **kw):
    return frame(op, payload, fin, key=KEY, **kw)


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def frame_parser_seeds():
    s = {}
    # RFC 6455 §5.7, as sent by a server (client role) and by a client (server role).
    s["rfc_single_unmasked_text"] = mode(CLIENT) + plan() + frame(TEXT, b"Hello")
    s["rfc_single_masked_text"] = mode(SERVER) + plan() + masked(TEXT, b"Hello")
    s["rfc_fragmented_unmasked_text"] = (
        mode(CLIENT) + plan() + frame(TEXT, b"Hel", fin=False) + frame(CONT, b"lo")
    )
    s["rfc_unmasked_ping"] = mode(CLIENT) + plan() + frame(PING, b"Hello")
    s["rfc_masked_pong"] = mode(SERVER) + plan() + masked(PONG, b"Hello")
    s["rfc_256_binary_16bit_length"] = (
        mode(CLIENT) + plan() + frame(BINARY, bytes(range(256)))
    )
    # The 64 KiB example, cut short: a 64-bit length header and the first payload bytes.
    s["rfc_64k_binary_64bit_length_truncated"] = (
        mode(CLIENT) + plan() + frame(BINARY, length=65536) + b"\x00" * 32
    )
    # The same messages in small pieces.
    s["masked_text_bytewise"] = mode(SERVER) + plan(1) + masked(TEXT, b"Hello")
    s["masked_text_split_3_5"] = mode(SERVER) + plan(3, 5) + masked(TEXT, b"Hello, world")
    s["masked_binary_split_header"] = (
        mode(SERVER) + plan(3, 1, 0) + masked(BINARY, bytes(range(200)))
    )
    s["masked_text_multibyte_split"] = (
        mode(SERVER) + plan(7, 1, 2) + masked(TEXT, "κόσμε € 𝄞 café".encode())
    )
    # Fragmented messages, control frames in between, several messages per feed.
    s["fragmented_masked_text_with_ping"] = (
        mode(SERVER)
        + plan()
        + masked(TEXT, "caf".encode(), fin=False)
        + masked(PING, b"are you there")
        + masked(CONT, "é".encode()[:1], fin=False)
        + masked(CONT, "é!".encode()[1:])
    )
    s["fragmented_masked_binary_chunked"] = (
        mode(SERVER)
        + plan(4, 9)
        + masked(BINARY, b"\x00\x01\x02", fin=False)
        + masked(CONT, b"", fin=False)
        + masked(PONG, b"")
        + masked(CONT, b"\xff" * 40)
    )
    s["three_messages_one_feed"] = (
        mode(SERVER)
        + plan()
        + masked(TEXT, b"one")
        + masked(BINARY, b"two")
        + masked(TEXT, b"")
    )
    s["long_masked_text_16bit"] = (
        mode(SERVER, LIMIT_1000) + plan(0) + masked(TEXT, b"chat message " * 20)
    )
    # Close frames.
    s["close_normal_with_reason"] = (
        mode(SERVER) + plan() + masked(CLOSE, close_payload(1000, b"bye"))
    )
    s["close_empty"] = mode(CLIENT) + plan() + frame(CLOSE)
    s["close_then_trailing_data"] = (
        mode(SERVER) + plan(5) + masked(CLOSE, close_payload(1001)) + masked(TEXT, b"late")
    )
    s["close_utf8_reason_split"] = (
        mode(SERVER) + plan(8, 1) + masked(CLOSE, close_payload(4000, "au revoir é".encode()))
    )
    s["close_one_byte_payload"] = mode(SERVER) + plan() + masked(CLOSE, b"\x03")
    s["close_code_1005_on_wire"] = mode(SERVER) + plan() + masked(CLOSE, close_payload(1005))
    s["close_invalid_reason"] = (
        mode(SERVER) + plan() + masked(CLOSE, close_payload(1000, b"\xc3\x28"))
    )
    s["close_max_reason"] = mode(CLIENT) + plan() + frame(CLOSE, close_payload(3000, b"r" * 123))
    # Framing errors.
    s["err_unmasked_to_server"] = mode(SERVER) + plan() + frame(TEXT, b"Hello")
    s["err_masked_to_client"] = mode(CLIENT) + plan() + masked(TEXT, b"Hello")
    s["err_rsv1_set"] = mode(SERVER) + plan() + masked(TEXT, b"x", rsv=4)
    s["err_unknown_opcode"] = mode(SERVER) + plan() + masked(0x3, b"x")
    s["err_ping_126_bytes"] = mode(SERVER) + plan() + masked(PING, b"p" * 126)
    s["err_fragmented_ping"] = mode(SERVER) + plan() + masked(PING, b"p", fin=False)
    s["err_continuation_first"] = mode(SERVER) + plan() + masked(CONT, b"x")
    s["err_text_inside_fragmented"] = (
        mode(SERVER) + plan() + masked(TEXT, b"a", fin=False) + masked(TEXT, b"b")
    )
    s["err_non_minimal_16bit_length"] = (
        mode(CLIENT) + plan() + bytes([0x81, 126, 0x00, 0x05]) + b"Hello"
    )
    s["err_non_minimal_64bit_length"] = (
        mode(CLIENT) + plan() + bytes([0x82, 127]) + struct.pack(">Q", 300) + b"\x00" * 8
    )
    s["err_64bit_length_msb_set"] = (
        mode(CLIENT) + plan(1) + bytes([0x82, 127]) + struct.pack(">Q", 1 << 63)
    )
    s["err_message_too_big_fragments"] = (
        mode(SERVER, LIMIT_125)
        + plan(2)
        + masked(BINARY, b"a" * 100, fin=False)
        + masked(CONT, b"b" * 26)
    )
    s["err_message_too_big_limit_0"] = mode(SERVER, LIMIT_0) + plan() + masked(BINARY, b"x")
    s["limit_1_empty_and_one_byte"] = (
        mode(SERVER, LIMIT_1) + plan() + masked(TEXT, b"") + masked(BINARY, b"z")
    )
    s["err_invalid_utf8_text"] = mode(SERVER) + plan() + masked(TEXT, b"ok \xed\xa0\x80")
    s["err_truncated_utf8_at_end"] = mode(CLIENT) + plan() + frame(TEXT, b"\xe2\x82")
    return s


# --- HTTP handshake -------------------------------------------------------------------------


def request(*lines, end=b"\r\n"):
    return b"".join(line.encode("latin-1") + end for line in lines) + end


RFC_REQUEST = request(
    "GET /chat HTTP/1.1",
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Origin: http://example.com",
    "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13",
)
CHROME_REQUEST = request(
    "GET /?room=lobby HTTP/1.1",
    "Host: 127.0.0.1:8080",
    "Connection: Upgrade",
    "Pragma: no-cache",
    "Cache-Control: no-cache",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Upgrade: websocket",
    "Origin: http://127.0.0.1:8080",
    "Sec-WebSocket-Version: 13",
    "Accept-Encoding: gzip, deflate, br",
    "Accept-Language: en-US,en;q=0.9",
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
)
FIREFOX_REQUEST = request(
    "GET /chat HTTP/1.1",
    "Host: localhost:9000",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Accept: */*",
    "Accept-Language: en-US,en;q=0.5",
    "Accept-Encoding: gzip, deflate, br",
    "Sec-WebSocket-Version: 13",
    "Origin: http://localhost:9000",
    "Sec-WebSocket-Protocol: wschat.v1",
    "Sec-WebSocket-Extensions: permessage-deflate",
    "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
    "Connection: keep-alive, Upgrade",
    "Sec-Fetch-Dest: empty",
    "Sec-Fetch-Mode: websocket",
    "Sec-Fetch-Site: same-origin",
    "Pragma: no-cache",
    "Cache-Control: no-cache",
    "Upgrade: websocket",
)
SAFARI_REQUEST = request(
    "GET /ws HTTP/1.1",
    "Host: example.test",
    "Origin: https://example.test",
    "Sec-WebSocket-Key: 9/7BbSbu7ZEG7NXm1GH/ig==",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Extensions: permessage-deflate",
    "User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
)
MINIMAL = [
    "GET / HTTP/1.1",
    "Host: h",
    "Upgrade: websocket",
    "Connection: upgrade",
    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
    "Sec-WebSocket-Version: 13",
]


def limit(n):
    """The limit byte for max_header_bytes of at least n."""
    return bytes([min(255, (n + 7) // 8)])


def handshake_seeds():
    s = {}
    big = limit(2040)
    s["rfc6455_sample_request"] = big + plan() + RFC_REQUEST
    s["chrome_request"] = big + plan() + CHROME_REQUEST
    s["firefox_request_chunked"] = big + plan(17, 3, 64) + FIREFOX_REQUEST
    s["safari_request_bytewise"] = big + plan(1) + SAFARI_REQUEST
    s["rfc_request_then_frame"] = big + plan(50, 0) + RFC_REQUEST + masked(TEXT, b"Hello")
    s["minimal_exact_limit"] = limit(len(request(*MINIMAL))) + plan() + request(*MINIMAL)
    s["minimal_bare_lf"] = big + plan(9) + request(*MINIMAL, end=b"\n")
    s["minimal_crlf_split"] = big + plan(15, 1, 1) + request(*MINIMAL)
    s["too_large_small_limit"] = limit(64) + plan() + RFC_REQUEST
    s["limit_zero"] = b"\x00" + plan() + request(*MINIMAL)
    s["plain_http_get"] = big + plan() + request("GET /index.html HTTP/1.1", "Host: h")
    s["http10_upgrade"] = big + plan() + request("GET / HTTP/1.0", *MINIMAL[1:])
    s["post_upgrade"] = big + plan() + request("POST / HTTP/1.1", *MINIMAL[1:])
    s["missing_host"] = big + plan() + request(MINIMAL[0], *MINIMAL[2:])
    s["version_8"] = big + plan() + request(*MINIMAL[:-1], "Sec-WebSocket-Version: 8")
    s["key_15_bytes"] = big + plan() + request(
        *MINIMAL[:4], "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", MINIMAL[5]
    )
    s["key_non_canonical_padding"] = big + plan() + request(
        *MINIMAL[:4], "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAB==", MINIMAL[5]
    )
    s["duplicate_key"] = big + plan() + request(*MINIMAL, MINIMAL[4])
    s["connection_list_mixed_case"] = big + plan() + request(
        *MINIMAL[:2], "UPGRADE: WebSocket", "connection: Keep-Alive ,\tUPGRADE", *MINIMAL[4:]
    )
    s["split_upgrade_headers"] = big + plan() + request(
        *MINIMAL, "Upgrade: h2c", "Connection: close", "Sec-WebSocket-Protocol: a, b,, c"
    )
    s["obs_fold_rejected"] = big + plan() + request(*MINIMAL[:2], " folded: x", *MINIMAL[2:])
    s["space_before_colon"] = big + plan() + request(*MINIMAL[:2], "Upgrade : websocket")
    s["value_with_tab_and_utf8"] = big + plan() + request(
        *MINIMAL, "X-Name:\tJos\xc3\xa9\tM\xfcller "
    )
    s["cr_injection_in_value"] = big + plan() + (
        request(*MINIMAL)[:-2] + b"X-Evil: a\rSet-Cookie: x=1\r\n\r\n"
    )
    s["lf_injection_in_target"] = big + plan() + b"GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n"
    s["nul_in_value"] = big + plan() + request(*MINIMAL[:2], "X: a\x00b")
    s["blank_line_first"] = big + plan() + b"\r\n" + request(*MINIMAL)
    s["incomplete_head"] = big + plan(4) + request(*MINIMAL)[:-2]
    s["many_headers"] = big + plan(0) + request("GET / HTTP/1.1", *["X: y"] * 101)
    return s


# --- UTF-8 ----------------------------------------------------------------------------------


def utf8_seeds():
    s = {}
    whole = plan()
    s["ascii"] = whole + b"Hello, world"
    s["ascii_long_run"] = whole + b"a" * 70 + "é".encode() + b"b" * 9
    s["greek_kosme_bytewise"] = plan(1) + "κόσμε".encode()
    s["cafe_split_in_code_point"] = plan(4, 1) + "café".encode()
    s["boundaries_2_3_4_bytes"] = whole + "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff".encode()
    s["emoji_split_every_3"] = plan(3) + "💬🙂👍🏽".encode()
    s["bom_and_nonchars"] = whole + "\ufeff\ufffe\uffff".encode()
    s["multibyte_at_word_boundary"] = plan(8, 0) + b"1234567" + "€".encode() + b"x" * 60
    s["multibyte_at_block_boundary"] = plan(64, 0) + b"y" * 63 + "𝄞".encode() + b"z" * 8
    s["nul_and_del"] = whole + b"\x00\x7f"
    s["overlong_slash_2"] = whole + b"\xc0\xaf"
    s["overlong_slash_3"] = whole + b"\xe0\x80\xaf"
    s["overlong_slash_4"] = whole + b"\xf0\x80\x80\xaf"
    s["overlong_max_3"] = whole + b"\xe0\x9f\xbf"
    s["overlong_max_4"] = whole + b"\xf0\x8f\xbf\xbf"
    s["c1_lead"] = whole + b"\xc1\xbf"
    s["surrogate_high"] = whole + b"\xed\xa0\x80"
    s["surrogate_low"] = whole + b"\xed\xbf\xbf"
    s["surrogate_pair"] = whole + b"\xed\xa0\x80\xed\xb0\x80"
    s["last_before_surrogates"] = whole + b"\xed\x9f\xbf"
    s["above_max_f4_90"] = whole + b"\xf4\x90\x80\x80"
    s["f5_lead"] = whole + b"\xf5\x80\x80\x80"
    s["fe_ff"] = whole + b"\xfe\xff"
    s["lone_continuation"] = whole + b"a\x80b"
    s["truncated_3_of_4"] = whole + b"\xf0\x9f\x92"
    s["truncated_then_ascii"] = plan(2) + b"\xe2\x82a"
    s["valid_then_invalid_late"] = plan(5, 0) + "κόσμε".encode() + b"\xed\xa0\x80" + b"q" * 20
    return s


# --- permessage-deflate -------------------------------------------------------------------------

# Index into size_limits in fuzz_deflate.cpp: 0, 1, 125, 1000, 4096, 65536, 1 MiB, 16 MiB.
DEFLATE_LIMIT_125, DEFLATE_LIMIT_4096, DEFLATE_LIMIT_1M = 2, 4, 6

# Raw deflate streams with the sync flush's 00 00 FF FF removed (RFC 7692 §7.2.1), written once
# with zlib and kept as bytes so the corpus does not depend on the zlib at hand.
HELLO = bytes.fromhex("f248cdc9c90700")  # RFC 7692 §7.2.3.1
HELLO_AGAIN = bytes.fromhex("f200110000")  # §7.2.3.2: refers back to the first
STORED_HELLO = bytes.fromhex("000500faff48656c6c6f00")  # §7.2.3.3: a stored block
FINAL_HELLO = bytes.fromhex("f348cdc9c907000000")  # §7.2.3.5: BFINAL set, then padding
JSON_ENVELOPE = bytes.fromhex(
    "aa562aa92c4855b252ca4d2d2e4e4c4f55d2514a2bcacf050a24e6642683b825a91525406e466a4e4ebe0232599e"
    "5f9493a2540b00")
# About 200 KB of zeros in 213 bytes: a decompression bomb against any lower limit.
ZEROS_200K = bytes.fromhex("ecc13101000000c2a0f54f6d067fa0") + bytes(195) + bytes.fromhex("80d700")


def deflate_mode(context_kept, limit):
    return bytes([(limit << 1) | (1 if context_kept else 0)])


def deflate_seeds():
    s = {}
    s["rfc7692_hello"] = deflate_mode(False, DEFLATE_LIMIT_125) + plan() + HELLO
    s["rfc7692_hello_twice_with_context"] = (
        deflate_mode(True, DEFLATE_LIMIT_125) + plan(len(HELLO), 0) + HELLO + HELLO_AGAIN)
    s["rfc7692_stored_block"] = deflate_mode(False, DEFLATE_LIMIT_125) + plan() + STORED_HELLO
    s["rfc7692_final_block"] = deflate_mode(False, DEFLATE_LIMIT_125) + plan() + FINAL_HELLO
    s["json_envelope"] = deflate_mode(False, DEFLATE_LIMIT_4096) + plan() + JSON_ENVELOPE
    s["bomb_over_limit"] = deflate_mode(False, DEFLATE_LIMIT_4096) + plan() + ZEROS_200K
    s["bomb_under_limit"] = deflate_mode(False, DEFLATE_LIMIT_1M) + plan() + ZEROS_200K
    s["corrupt_block_type"] = deflate_mode(False, DEFLATE_LIMIT_125) + plan() + b"\xff\xff\xff"
    s["empty_messages"] = deflate_mode(True, DEFLATE_LIMIT_125) + plan(1, 1, 1) + b"\x00\x00\x00"
    # The same bytes are read as a Sec-WebSocket-Extensions value too.
    for name, offer in [
        ("offer_chromium", b"permessage-deflate; client_max_window_bits"),
        ("offer_windows", b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"),
        ("offer_no_context", b"permessage-deflate; server_no_context_takeover; "
                             b"client_no_context_takeover"),
        ("offer_two", b"permessage-deflate; server_max_window_bits=8, permessage-deflate"),
        ("offer_quoted", b'permessage-deflate; client_max_window_bits="12", x-other; a=b'),
        ("offer_duplicate", b"permessage-deflate; server_no_context_takeover; "
                            b"server_no_context_takeover"),
        ("offer_malformed", b'permessage-deflate; a="b'),
    ]:
        s[name] = deflate_mode(False, DEFLATE_LIMIT_4096) + plan() + offer
    return s


# --- writing ----------------------------------------------------------------------------------

TARGETS = {
    "frame_parser": frame_parser_seeds,
    "handshake": handshake_seeds,
    "utf8": utf8_seeds,
    "deflate": deflate_seeds,
}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for target, seeds in TARGETS.items():
        directory = ROOT / target
        wanted = seeds()
        present = {p.name for p in directory.glob("*")} if directory.is_dir() else set()
        for name in sorted(present - set(wanted)):
            stale.append("%s/%s (not generated)" % (target, name))
            if not check:
                (directory / name).unlink()
        for name, data in sorted(wanted.items()):
            path = directory / name
            if path.is_file() and path.read_bytes() == data:
                continue
            stale.append("%s/%s" % (target, name))
            if not check:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
    if check:
        for name in stale:
            print("corpus out of date: " + name, file=sys.stderr)
        if stale:
            print("run: python3 tests/fuzz/make_corpus.py", file=sys.stderr)
            return 1
        print("corpus up to date")
        return 0
    total = sum(len(seeds()) for seeds in TARGETS.values())
    print("wrote %d seeds under %s (%d changed)" % (total, ROOT, len(stale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
