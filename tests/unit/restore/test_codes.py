"""Restoration code 1: at least 64 random bits, grouped for reading, typed leniently."""

from __future__ import annotations

import math
import re

from idp.restore.codes import CODE1_ALPHABET, CODE1_LENGTH, new_code1, normalise_code1


def test_code1_has_at_least_64_bits_from_an_unambiguous_alphabet() -> None:
    assert len(set(CODE1_ALPHABET)) == len(CODE1_ALPHABET) == 32
    assert not set("01OI") & set(CODE1_ALPHABET)
    assert CODE1_LENGTH * math.log2(len(CODE1_ALPHABET)) >= 64


def test_code1_is_grouped_in_fours_and_random() -> None:
    codes = {new_code1() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}", code), code


def test_code1_as_typed_is_normalised() -> None:
    assert normalise_code1(" abcd-efgh jkLM-npqr\n") == "ABCDEFGHJKLMNPQR"
    assert normalise_code1("ABCDEFGHJKLMNPQR") == "ABCDEFGHJKLMNPQR"
