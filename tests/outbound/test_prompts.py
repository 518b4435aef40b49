"""Every sound the survey and the reminder play has its Chinese text, so
``callcenter prompts build`` renders it (a prompt without one would be silence)."""

from __future__ import annotations

from dataclasses import fields

from callcenter.outbound import fee_call, survey_call
from callcenter.paging import page_call


def test_every_survey_and_reminder_prompt_has_its_text() -> None:
    survey = {getattr(survey_call.SurveyPrompts(), f.name)
              for f in fields(survey_call.SurveyPrompts) if f.name != "category_prefix"}
    survey |= {survey_call.SurveyPrompts().category_prefix + c
               for c in survey_call.SURVEY_CATEGORIES}
    assert survey <= set(survey_call.PROMPT_TEXTS)
    fee = {getattr(fee_call.FeePrompts(), f.name) for f in fields(fee_call.FeePrompts)}
    assert fee <= set(fee_call.PROMPT_TEXTS)
    assert set(fee_call.PLACE_PROMPTS) <= set(page_call.PROMPT_TEXTS)
    for text in (*survey_call.PROMPT_TEXTS.values(), *fee_call.PROMPT_TEXTS.values()):
        assert text and not text.isascii()
    # the survey names the keys it reads, and 0 is "not fixed"
    menu = survey_call.PROMPT_TEXTS[survey_call.SurveyPrompts().menu]
    assert all(f"请按{k}" in menu for k in "543210")
