"""The SLA policy file: a bad ``sla.toml`` is refused with the file and the key named;
a good one layers community, category and top-level limits over the defaults."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.settings import SettingsError, settings_from_mapping
from callcenter.tickets import sla_setup
from ticketing.sla_policy import SLA_FILE, SlaPolicyError, load_policy

BAD: list[tuple[str, str, list[str]]] = [
    # (what, file text, what the message must name besides the file)
    ("zero minutes", "[normal]\nresponse = 0\n", ["normal.response", "1-86400", "0"]),
    ("a string", "[communities.hupan.normal]\nred_light = \"120\"\n",
     ["[communities.hupan]", "normal.red_light", "'120'"]),
    ("a float", "[emergency]\nescalation = 90.5\n", ["emergency.escalation"]),
    ("a boolean limit", "[normal]\nresponse = true\n", ["normal.response"]),
    ("over 60 days", "[normal]\nescalation = 100000\n", ["normal.escalation", "100000"]),
    ("an unknown limit", "[normal]\nreply = 10\n", ["normal.reply", "unknown limit"]),
    ("an unknown priority", "[urgent]\nresponse = 5\n", ["urgent", "unknown key"]),
    ("an unknown category", "[categories.plumbin]\nworking_time = true\n",
     ["categories.plumbin", "unknown category"]),
    ("working_time not a bool", "[categories.sanitation]\nworking_time = \"yes\"\n",
     ["categories.sanitation", "working_time"]),
    ("top-level working_time", "working_time = true\n", ["working_time", "per category"]),
    ("a community's unknown category",
     "[communities.hupan.categories.gardening]\nworking_time = true\n",
     ["[communities.hupan]", "categories.gardening"]),
    ("a priority not a table", "normal = 15\n", ["normal", "expected a table"]),
    ("communities not tables", "communities = 3\n", ["communities"]),
    ("not TOML", "[normal\nresponse = 15\n", ["not valid TOML"]),
    # complaint grades (tests/ticketing/test_complaint_grades.py)
    ("an unknown grade", "[complaint.urgent]\nresponse = 5\n", ["complaint.urgent", "unknown grade"]),
    ("a grade's unknown limit", "[complaint.major]\nreply = 5\n",
     ["complaint.major.reply", "unknown limit"]),
    ("a grade's zero minutes", "[complaint.major]\nresponse = 0\n",
     ["complaint.major.response", "1-86400"]),
    ("a community grade's string", "[communities.hupan.complaint.major]\nescalation = \"4h\"\n",
     ["[communities.hupan]", "complaint.major.escalation", "'4h'"]),
    ("complaint not tables", "complaint = 5\n", ["complaint", "expected tables"]),
    ("a grade not a table", "[complaint]\nmajor = 5\n", ["complaint.major", "expected a table"]),
    ("grades inside a category", "[categories.complaint.complaint.major]\nresponse = 5\n",
     ["categories.complaint", "complaint: unknown key"]),
]


@pytest.mark.parametrize(("what", "text", "named"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_names_the_file_and_the_key(tmp_path: Path, what: str, text: str,
                                                named: list[str]) -> None:
    path = tmp_path / SLA_FILE
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SlaPolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    for part in named:
        assert part in message, (part, message)


def test_the_server_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / SLA_FILE).write_text("[normal]\nred_light = -5\n", encoding="utf-8")
    settings = settings_from_mapping({"data_dir": str(data)})
    with pytest.raises(SettingsError) as err:
        sla_setup(settings)
    assert err.value.key == "sla"
    assert str(data / SLA_FILE) in str(err.value)
    assert "normal.red_light" in str(err.value)


def test_no_file_is_the_defaults_and_a_file_layers_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / SLA_FILE
    defaults = load_policy(path)  # absent
    normal = defaults.limits("hupan", "plumbing", "normal")
    assert (normal.response, normal.red_light, normal.escalation, normal.working_time) == (
        timedelta(minutes=15), timedelta(hours=2), timedelta(hours=24), False)
    urgent = defaults.limits(None, "gas", "emergency")
    assert (urgent.response, urgent.red_light, urgent.escalation) == (
        timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=4))
    path.write_text("""
[normal]
response = 20
[categories.sanitation]
working_time = true
normal = { escalation = 2880 }
[communities.hupan.normal]
response = 10
[communities.hupan.categories.sanitation]
working_time = false
""", encoding="utf-8")
    policy = load_policy(path)
    assert policy.source == str(path)
    # top level, then the category, then the community, then its category
    assert policy.limits("binjiang", "plumbing", "normal").response == timedelta(minutes=20)
    other = policy.limits("binjiang", "sanitation", "normal")
    assert (other.response, other.escalation, other.working_time) == (
        timedelta(minutes=20), timedelta(hours=48), True)
    hupan = policy.limits("hupan", "sanitation", "normal")
    assert (hupan.response, hupan.red_light, hupan.escalation, hupan.working_time) == (
        timedelta(minutes=10), timedelta(hours=2), timedelta(hours=48), False)
    # emergencies keep their own defaults where the file names only [normal]
    assert policy.limits("hupan", "sanitation", "emergency").response == timedelta(minutes=5)
