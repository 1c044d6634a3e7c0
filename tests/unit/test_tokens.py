from __future__ import annotations

from idp.tokens import TokenDigester, derive_key, new_token


def test_digests_are_keyed_and_purpose_bound() -> None:
    token = new_token()
    one = TokenDigester(derive_key(b"a" * 32, "token-digest"))
    two = TokenDigester(derive_key(b"b" * 32, "token-digest"))
    digest = one.digest(token, purpose="refresh-token")
    assert token not in digest and len(digest) == 64
    assert one.matches(token, digest, purpose="refresh-token")
    assert not one.matches(token, digest, purpose="access-token")
    assert not two.matches(token, digest, purpose="refresh-token")
    assert not one.matches(token + "x", digest, purpose="refresh-token")


def test_new_tokens_are_long_and_distinct() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 for t in tokens)
