"""TranscriberPool arguments and the Transcript value (no model needed)."""

from __future__ import annotations

import pytest

from recordings.models import find_model
from recordings.transcribe import TranscriberPool, Transcript, Word

MODEL = find_model(None)


def test_pool_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        TranscriberPool(MODEL, workers=0)
    with pytest.raises(ValueError):
        TranscriberPool(MODEL, recycle_after=0)
    with pytest.raises(ValueError):
        TranscriberPool(MODEL, start_method="fork")


def test_display_text_joins_chinese_words() -> None:
    words = (Word("我", 0.1, 0.2, 1.0), Word("家", 0.2, 0.4, 0.9))
    transcript = Transcript("我 家 厨房 漏水 了 room 302", words, 1.0, 8000, 16000)
    assert transcript.display_text == "我家厨房漏水了 room 302"
    assert Transcript("", (), 0.5, 8000, 16000).display_text == ""
    as_dict = transcript.to_dict()
    assert as_dict["words"][1] == {"word": "家", "start": 0.2, "end": 0.4, "conf": 0.9}
    assert as_dict["display_text"] == "我家厨房漏水了 room 302"
