"""planner.secrets: a secret is found and masked in every encoding a rendering may give it."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
import yaml

from planner.plan import redact_values
from planner.secrets import MASK, find, scrub, spellings, too_short

SECRETS = ['pa"ss-word-1', "pa\\ss-word-1", "pässwörd-123", "p@ss/w rd+1", "emoji-\U0001f511-key"]


def _encodings(secret: str) -> dict[str, str]:
    """The secret embedded in text the way each output format carries it."""
    return {
        "raw": f"x {secret} y",
        "json": json.dumps({"a": f"x{secret}y"}),
        "json-unicode": json.dumps({"a": f"x{secret}y"}, ensure_ascii=False),
        "json-in-json": json.dumps({"a": json.dumps(["eu", secret])}),
        "yaml": yaml.safe_dump({"a": f"x{secret}y"}, default_style='"'),
        "yaml-plain": yaml.safe_dump({"a": f"x{secret}y"}, allow_unicode=True),
        "url": f"redis://host/{quote(secret, safe='')}?q=1",
        "url-path": f"redis://host/{quote(secret)}",
        "url-plus": f"https://h/?t={quote_plus(secret)}",
        "base64": base64.b64encode(f"token={secret}\n".encode()).decode(),
        "base64-offset-1": base64.b64encode(f"t={secret}".encode()).decode(),
        "base64-offset-2": base64.b64encode(f"tk={secret}".encode()).decode(),
        "base64-urlsafe": base64.urlsafe_b64encode(f"ab{secret}".encode()).decode(),
    }


@pytest.mark.parametrize("secret", SECRETS)
def test_every_encoding_is_found_and_masked(secret: str) -> None:
    for name, text in _encodings(secret).items():
        assert find({"spec": [text]}, [secret]), name
        masked = scrub(text, [secret])
        assert MASK in masked, name
        assert not any(spelling in masked for spelling in spellings(secret)), name


def test_a_body_without_the_secret_is_clean_and_names_stay_intact() -> None:
    body = {"metadata": {"name": "ml-prod-risk-scores"}, "spec": {"args": ["echo", "hello"]}}
    assert not find(body, ["long-secret-1"])
    assert redact_values(body, {"long-secret-1"}) == body


def test_keys_are_searched_and_masked_too() -> None:
    assert find({"data": {"pässwörd-123": "x"}}, ["pässwörd-123"])
    assert redact_values({"data": {"k-pässwörd-123": 1}}, {"pässwörd-123"}) == {"data": {f"k-{MASK}": 1}}


def test_short_values_are_too_short_to_mask() -> None:
    assert too_short("risk") and too_short("1234567") and not too_short("12345678")
