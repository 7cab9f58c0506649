"""The redactor's patterns: each secret kind caught in the spellings messages and reprs
give it, and ordinary messages left exactly as they are."""

from __future__ import annotations

import pytest

from aiotel.probes.redact import Redactor

AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"

CAUGHT = [
    (f"creds {AWS_ID} {AWS_SECRET} done", "creds [REDACTED] [REDACTED] done"),
    (f"{AWS_ID}:{AWS_SECRET}", "[REDACTED]:[REDACTED]"),
    (f"{{'key': '{AWS_ID}', 'secret': '{AWS_SECRET}'}}", "{'key': '[REDACTED]', 'secret': [REDACTED]}"),
    ("{'Authorization': 'Basic dXNlcjpwYXNz', 'Host': 'shop'}", "{'Authorization': 'Basic [REDACTED]', 'Host': 'shop'}"),
    ('{"authorization": "Digest username=\\"u\\", response=\\"6629fae4\\""}', '{"authorization": "Digest [REDACTED]"}'),
    ("[('Proxy-Authorization', 'Bearer abc.def.ghi')]", "[('Proxy-Authorization', 'Bearer [REDACTED]')]"),
    ("Authorization: Basic dXNlcjpwYXNz\nHost: shop", "Authorization: Basic [REDACTED]\nHost: shop"),
    ("b'Authorization: Basic dXNlcjpwYXNz\\r\\nHost: shop'", "b'Authorization: Basic [REDACTED]\\r\\nHost: shop'"),
    ('Authorization: Digest username="u", response="6629fae4"', "Authorization: Digest [REDACTED]"),
    ("PROXY-AUTHORIZATION=Negotiate YIIabc123", "PROXY-AUTHORIZATION=Negotiate [REDACTED]"),
    ("wrong password hunter2 for user bob", "wrong password [REDACTED] for user bob"),
    ("login failed: passwd S3cr3t!, retry", "login failed: passwd [REDACTED], retry"),
    ("pwd Tr0ub4dor&3", "pwd [REDACTED]"),
    ("Password aBcDeFgH rejected", "Password [REDACTED] rejected"),
    ("password: hunter2", "password: [REDACTED]"),
]

UNTOUCHED = [
    "Password must be at least 8 characters",
    "password incorrect for user bob",
    "the password is required",
    "Password Reset requested",
    "pwd /srv/app",  # a path after pwd: the shell's command, not a password
    f"commit 3f66b21a9c1e0d2b4f5a6c7d8e9f0a1b2c3d4e5f of {'x' * 10}",  # a hash is not an AWS secret
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "no authorization header was sent",
    "Authorization failed",
    "UPPERCASEONLYUPPERCASEONLYUPPERCASEONLY1",
]


@pytest.mark.parametrize("text, expected", CAUGHT)
def test_each_secret_kind_is_redacted(text, expected):
    assert Redactor()(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_ordinary_messages_stay_intact(text):
    assert Redactor()(text) == text


def test_an_aws_secret_far_from_any_key_id_is_left_alone():
    # a 40-character mixed-case token alone is too common (base64 ids) to redact blindly
    text = f"{AWS_ID} " + "x" * 300 + f" {AWS_SECRET}"
    assert Redactor()(text) == "[REDACTED] " + "x" * 300 + f" {AWS_SECRET}"


def test_redacting_twice_changes_nothing_more():
    redact = Redactor()
    for text, expected in CAUGHT:
        assert redact(redact(text)) == expected
