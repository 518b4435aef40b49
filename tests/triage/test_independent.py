"""Triage on transcripts written from the guide alone (independent.jsonl, never
edited to fit the rules), clean and with seeded ASR noise; matching by sound;
the noise generator itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypinyin import Style, lazy_pinyin

from ticketing.triage import triage
from ticketing.triage.evaluate import load_rows, main, score
from ticketing.triage.noise import add_noise, changed_share, near_syllables
from ticketing.triage.pinyin import SoundIndex, by_sound, fold, heard_as, is_han

INDEPENDENT = Path(__file__).parent.parent / "fixtures" / "triage" / "independent.jsonl"
ROWS = load_rows(INDEPENDENT)


def test_the_clean_independent_set_meets_the_targets() -> None:
    s = score(ROWS)
    assert s.fn == 0, "every emergency must be paged"
    assert s.emergency_precision >= 0.95
    for key in ("category", "building", "unit", "room"):
        assert s.accuracy(key) >= 0.95, (key, s.accuracy(key))


TUNED_SEEDS = (1, 2, 3)
HELD_OUT_SEEDS = tuple(range(4, 14))  # never looked at line by line while tuning
OTHER_SETS = ("dev.jsonl", "holdout.jsonl", "holdout_emergency.jsonl")


@pytest.mark.parametrize("seed", TUNED_SEEDS)
def test_at_20_percent_noise_emergencies_are_paged(seed: int) -> None:
    """Each tuned seed on its own (measured 0.983 / 0.983 / 0.983 paged, precision
    0.983 / 0.967 / 0.983, category 0.914 / 0.944 / 0.928)."""
    s = score(ROWS, rate=0.2, seed=seed)
    assert s.emergency_recall >= 0.95, s.emergency_recall
    assert s.recall_with_listen >= 0.98, s.recall_with_listen
    assert s.emergency_precision >= 0.95, s.emergency_precision
    assert s.accuracy("category") >= 0.9, s.accuracy("category")


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_at_20_percent_noise_on_held_out_seeds(seed: int) -> None:
    """Seeds not tuned on, each on its own (measured paged 0.915–1.000, mean 0.968;
    paged or listen ≥ 0.983; precision ≥ 0.922; category ≥ 0.905)."""
    s = score(ROWS, rate=0.2, seed=seed)
    assert s.emergency_recall >= 0.91, s.emergency_recall
    assert s.recall_with_listen >= 0.98, s.recall_with_listen
    assert s.emergency_precision >= 0.92, s.emergency_precision
    assert s.accuracy("category") >= 0.9, s.accuracy("category")


def test_at_20_percent_noise_paged_recall_averaged_over_held_out_seeds() -> None:
    recalls = [score(ROWS, rate=0.2, seed=seed).emergency_recall for seed in HELD_OUT_SEEDS]
    assert sum(recalls) / len(recalls) >= 0.965, recalls


@pytest.mark.parametrize("seed", TUNED_SEEDS + HELD_OUT_SEEDS)
def test_at_10_percent_noise_emergencies_are_paged(seed: int) -> None:
    s = score(ROWS, rate=0.1, seed=seed)  # measured paged ≥ 0.949, precision ≥ 0.952
    assert s.emergency_recall >= 0.94 and s.emergency_precision >= 0.95, (
        s.emergency_recall, s.emergency_precision)


@pytest.mark.parametrize("name", OTHER_SETS)
def test_the_other_sets_page_every_emergency_clean_and_most_under_noise(name: str) -> None:
    rows = load_rows(INDEPENDENT.parent / name)
    clean = score(rows)
    assert clean.fn == 0 and clean.emergency_precision >= 0.95
    assert clean.accuracy("category") >= 0.95
    for rate in (0.1, 0.2):
        for seed in TUNED_SEEDS:
            s = score(rows, rate=rate, seed=seed)  # measured paged ≥ 0.938, precision ≥ 0.957
            assert s.emergency_recall >= 0.93 and s.emergency_precision >= 0.95, (
                rate, seed, s.emergency_recall, s.emergency_precision)
            assert s.recall_with_listen == 1.0


@pytest.mark.parametrize(("text", "category"), [
    ("我 家 卫生间 楼水 了", "plumbing"),          # 漏水, lou shui
    ("整 栋 楼 都 停店 了", "electrical"),          # 停电, ting dian
    ("电题 坏 了 一直 不 动", "elevator"),          # 电梯, dian ti
    ("燃汽 表 坏 了", "gas"),                       # 燃气, ran qi
])
def test_a_lexicon_word_heard_as_a_sound_alike_still_counts(text: str, category: str) -> None:
    assert triage(text).category == category


def test_a_building_wide_power_cut_heard_as_a_homophone_is_paged() -> None:
    result = triage("整 栋 楼 都 停店 了 三 栋")
    assert (result.emergency, result.category, result.building) == (True, "electrical", "3")


@pytest.mark.parametrize(("heard", "word"), [
    ("一下", "以下"), ("的水", "滴水"), ("可以", "可疑"), ("店提", "电梯"),
])
def test_short_words_do_not_match_too_much(heard: str, word: str) -> None:
    """A misheard grammatical word, or a two-character stretch sharing no character
    with the word, is not respelled: 一下 is not 以下."""
    index = SoundIndex([word])
    assert index.repair(heard).text == heard


def test_a_sound_alike_sharing_a_character_is_respelled() -> None:
    index = SoundIndex(["漏水", "电梯"])
    repair = index.repair("楼上楼水了电题坏了")
    assert repair.text == "楼上漏水了电梯坏了"
    assert repair.exact == (("楼水", "漏水"), ("电题", "电梯"))


def test_merged_sounds_fold_together() -> None:
    assert fold("zhang") == fold("zan") and fold("nian") == fold("lian")
    assert fold("shi") != fold("xi")
    assert by_sound("停电") == by_sound("亭店") and by_sound("停电") != by_sound("停站")
    assert by_sound("层", near=True) == by_sound("陈", near=True)  # ceng / chen


def test_an_emergency_matched_only_by_sound_is_unsure_not_paged() -> None:
    result = triage("楼 上 冒 出 好 多 言")  # 言 for 烟 (yan): no word of the rule as written
    assert result.category == "fire" and result.emergency is False
    assert result.unsure and "火情" in result.unsure_reason
    assert not triage("楼 上 冒 出 好 多 烟").unsure  # paged, not unsure


def test_a_sound_match_anchored_by_a_word_heard_as_written_is_paged() -> None:
    """"电梯 … 有 任 在 里面": 电梯 is heard as written, only 任 (人, ren) by sound."""
    result = triage("电梯 停 了 有 任 在 里面 喊 救命")
    assert (result.emergency, result.category, result.unsure) == (True, "elevator", False)


@pytest.mark.parametrize("text", [
    "喂 电梯 停 了 有 人 在 里面 喊 救命",  # 喂 sounds like 未, and is not a negation
    "五 楼 好像 有 煤气 威 飘 出来",  # 煤气 sounds like 没气
])
def test_a_negator_only_by_sound_does_not_negate(text: str) -> None:
    assert triage(text).emergency is True


@pytest.mark.parametrize("text", [
    "楼道 烟感 响 了 不丝 着火 就是 告诉 你们 一下",  # 不 是, 是 heard as 丝
    "烟感 一直 响 没有 烟 也 昧友 着火",  # 没有 heard as 昧友
    "烟感 一直 响 但是 没有 着火 也 眉 看到 研",  # 没 看到 烟
    "烟感 一直 在 响 没有 冒烟 也 没有 着火 四 栋",  # 火四 is not 火势 here
])
def test_a_misheard_negation_still_negates(text: str) -> None:
    assert triage(text).emergency is False


@pytest.mark.parametrize(("text", "category"), [
    ("厨房 燃气灶 的 开关 坏 了 关 不 上 一直 在 漏 起", "gas"),  # 漏气, 气 heard as 起
    ("化粪池 满 了 污髓 从 井 里 冒 出来 流 进 一 楼", "plumbing"),  # 污水, shui as sui
    ("楼上 的 水管 脱诺 了 水 一直 往 我 家 流", "plumbing"),  # 脱落, luo as nuo
])
def test_a_sound_match_with_a_word_of_its_rule_half_heard_is_paged(text: str, category: str) -> None:
    result = triage(text)
    assert (result.emergency, result.category) == (True, category)


def test_a_sound_match_the_caller_smelt_is_paged() -> None:
    result = triage("刚 闻到 一股 稍 塑料 的 味道")  # 烧 heard as 稍 (shao)
    assert (result.emergency, result.category) == (True, "fire")
    assert triage("一股 稍 塑料 的 味道").unsure  # not paged: someone listens


def test_a_particle_heard_by_sound_is_read_back() -> None:
    result = triage("卧室 里 全 肆 烟 呛 得 不行")  # 是 (shi) heard as 肆 (si)
    assert (result.emergency, result.category) == (True, "fire")


def test_a_sound_match_is_anchored_only_by_a_word_of_its_own_rule() -> None:
    """停电 is a word of the power-cut rule, not of the flooding one that 水 … 盐 (淹)
    matches by sound."""
    result = triage("建议 物业 提前 发 停水 停电 的 通知 这盐 大家 好 准备")
    assert result.emergency is False


def test_a_word_heard_as_needs_half_its_characters_as_written() -> None:
    assert heard_as("漏起", "漏气") and heard_as("污髓", "污水", near=True)
    assert not heard_as("污髓", "污水")  # sui is shui only as a merged sound
    assert not heard_as("毛促", "冒出", near=True)  # no character as written
    assert not heard_as("的水", "滴水")  # a grammatical character


def test_the_sound_index_does_not_depend_on_the_order_of_its_words() -> None:
    words = ["漏水", "楼道", "水管", "在漏", "漏气", "电梯", "电梯厅"]
    text = "我们这楼的税管在漏起电题厅"
    assert len({SoundIndex(order).repair(text) for order in (words, words[::-1],
                                                             sorted(words))}) == 1


def test_noise_is_seeded() -> None:
    text = ROWS[0]["text"]
    assert add_noise(text, 0.2, 7) == add_noise(text, 0.2, 7)
    assert add_noise(text, 0.2, 7) != add_noise(text, 0.2, 8)
    assert add_noise(text, 0.0, 7) == text


@pytest.mark.parametrize("rate", [0.1, 0.2])
def test_noise_replaces_the_share_of_characters_asked_for_with_sound_alikes(rate: float) -> None:
    total_han = total_changed = 0
    for row in ROWS:
        clean = row["text"]
        noisy = add_noise(clean, rate, 3)
        assert len(noisy) == len(clean)
        han = [i for i, c in enumerate(clean) if is_han(c)]
        changed = [i for i in han if noisy[i] != clean[i]]
        assert len(changed) <= round(rate * len(han))
        assert all(noisy[i] == clean[i] for i in range(len(clean)) if i not in han)  # digits, letters, spaces
        for i in changed:
            a, b = (lazy_pinyin(c, style=Style.NORMAL)[0] for c in (clean[i], noisy[i]))
            assert b == a or b in near_syllables(a), (clean[i], noisy[i])
        total_han += len(han)
        total_changed += len(changed)
        assert changed_share(clean, noisy) == (len(changed) / len(han) if han else 0.0)
    assert abs(total_changed / total_han - rate) <= 0.01


def test_noise_rate_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        add_noise("漏水", 1.5, 1)


def test_the_evaluation_command_prints_scores_and_the_confusion_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(INDEPENDENT), "--noise", "0.2", "--seed", "1", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("## independent.jsonl, noise 20%") == 2
    assert "emergency: precision" in out and "| plumbing |" in out and "confusion" in out
    assert "accuracy: category" in out and "room" in out
