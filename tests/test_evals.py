"""course_utils.evals: generation order, JSON scoring, intervals, answer matching."""

import json
import re

import pytest
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from course_utils import evals


def ticket_row(record: dict) -> dict:
    return {"messages": [{"role": "user", "content": "ticket"},
                         {"role": "assistant", "content": json.dumps(record)}]}


def test_prompt_messages_hold_back_the_reference():
    row = ticket_row({"a": 1})
    assert evals.prompt_messages(row) == [{"role": "user", "content": "ticket"}]
    assert evals.reference(row) == '{"a": 1}'
    with pytest.raises(ValueError, match="no assistant turn"):
        evals.reference({"id": "x", "messages": [{"role": "user", "content": "q"}]})


@pytest.mark.parametrize("text, ok", [('{"a": 1}', True), ('  {"a": 1}\n', True),
                                      ('```json\n{"a": 1}\n```', False), ('[1]', False),
                                      ('Sure! {"a": 1}', False), ('', False)])
def test_json_parsing_is_strict(text, ok):
    assert (evals.parse_json_record(text) is not None) is ok


def test_score_json_counts_fields_and_exact_match():
    rows = [ticket_row({"category": "billing", "priority": "low"}),
            ticket_row({"category": "shipping", "priority": "high"}),
            ticket_row({"category": "returns", "priority": "normal"})]
    predictions = ['{"category": "billing", "priority": "low"}',
                   '{"category": "shipping", "priority": "low"}',
                   'not json']
    scores = evals.score_json(predictions, rows)
    assert scores.valid == [True, True, False]
    assert scores.fields == {"category": [True, True, False], "priority": [True, False, False]}
    assert scores.exact == [True, False, False]
    assert scores.metrics["exact match"].hits == 1 and "1/3 = 33%" in str(scores)


def test_score_json_rejects_unpaired_lists():
    with pytest.raises(ValueError, match="2 predictions for 1 rows"):
        evals.score_json(["{}", "{}"], [ticket_row({"a": 1})])


def test_bootstrap_interval_brackets_the_rate_and_repeats():
    flags = [1] * 30 + [0] * 10
    low, high = evals.bootstrap_ci(flags)
    assert low < 0.75 < high and 0.55 < low and high < 0.9
    assert evals.bootstrap_ci(flags) == (low, high)
    assert evals.bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert evals.bootstrap_ci([]) == (0.0, 0.0)


def test_interval_narrows_with_more_rows():
    small = evals.rate([True, False] * 5)
    large = evals.rate([True, False] * 100)
    assert (large.high - large.low) < (small.high - small.low)


@pytest.mark.parametrize("hits,n", [(0, 60), (60, 60), (23, 60), (1, 7), (55, 60), (0, 1), (137, 200)])
def test_rate_intervals_match_statsmodels(hits, n):
    for method, theirs in (("wilson", "wilson"), ("exact", "beta")):
        low, high = evals.INTERVALS[method](hits, n)
        want_low, want_high = proportion_confint(hits, n, alpha=0.05, method=theirs)
        assert low == pytest.approx(want_low, abs=1e-9)
        assert high == pytest.approx(want_high, abs=1e-9)


def test_rate_intervals_are_not_zero_width_at_the_ends():
    for flags in ([True] * 60, [False] * 60):
        for method in evals.INTERVALS:
            metric = evals.rate(flags, method=method)
            assert metric.high - metric.low > 0.04, (method, metric)
            assert 0.0 <= metric.low <= metric.value <= metric.high <= 1.0
    assert str(evals.rate([True] * 60)) == "60/60 = 100% [94%, 100%]"
    assert evals.wilson_interval(0, 0) == (0.0, 1.0)


def test_rate_intervals_refuse_impossible_counts():
    with pytest.raises(ValueError, match="0 <= hits <= n"):
        evals.wilson_interval(5, 3)
    with pytest.raises(ValueError, match="unknown interval method 'bootstrap'"):
        evals.rate([True], method="bootstrap")


def test_holm_matches_statsmodels():
    p_values = [0.01, 0.04, 0.03, 0.005, 0.5, 0.04]
    _, want, _, _ = multipletests(p_values, alpha=0.05, method="holm")
    assert evals.holm(p_values) == pytest.approx(list(want), abs=1e-12)
    assert evals.holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evals.holm([1.5])


def test_sign_test_matches_scipy():
    for wins, losses in ((22, 12), (17, 5), (0, 9), (30, 31)):
        want = binomtest(wins, wins + losses, 0.5).pvalue
        assert evals.sign_test(wins, losses) == pytest.approx(want, rel=1e-9)


def test_field_tests_adjust_each_field_for_the_others():
    a = {"priority": [False] * 40, "product": [True] * 30 + [False] * 10}
    b = {"priority": [True] * 12 + [False] * 28, "product": [True] * 31 + [False] * 9}
    result = evals.field_tests(a, b)
    raw = [result.tests[f].p_value for f in a]
    assert list(result.adjusted.values()) == evals.holm(raw)
    assert result.adjusted["priority"] == pytest.approx(2 * raw[0])  # the smaller p, times 2
    assert "Holm p" in str(result) and "priority" in str(result)
    with pytest.raises(ValueError, match="same references"):
        evals.field_tests(a, {"priority": a["priority"]})


def test_contains_any_is_case_and_space_insensitive():
    assert evals.contains_any("Returns are accepted within  45 DAYS.", ["45 days"])
    assert not evals.contains_any("Returns within 30 days.", ["45 days", "45-day"])
    correct, metric = evals.score_contains(["Paris.", "Lyon"], [{"accept": ["paris"]}] * 2)
    assert correct == [True, False] and metric.hits == 1


def test_generate_keeps_input_order_across_batches(real_model):
    model, tokenizer = real_model
    questions = ["What is the capital of France?",
                 "Please tell me, in a few words, what the capital city of Japan is.",
                 "What is the capital of Germany?"]
    rows = [{"messages": [{"role": "user", "content": q}]} for q in questions]
    answers = evals.generate(model, tokenizer, rows, max_new_tokens=20, batch_size=2, show=False)
    assert "Paris" in answers[0] and "Tokyo" in answers[1] and "Berlin" in answers[2]
    assert tokenizer.padding_side == "right"  # restored after generating


def test_generate_runs_on_a_tiny_model(tiny_model, capsys):
    model, tokenizer = tiny_model
    rows = [{"messages": [{"role": "user", "content": "hi"}]}] * 3
    answers = evals.generate(model, tokenizer, rows, max_new_tokens=5)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert "generated 3 answers" in capsys.readouterr().out


def test_prompt_tokens_grow_with_the_prompt(real_model):
    _, tokenizer = real_model
    short = [{"role": "user", "content": "hi"}]
    longer = [{"role": "system", "content": "Be brief. " * 20}, *short]
    counts = evals.prompt_tokens(tokenizer, [short, longer])
    assert 0 < counts[0] < counts[1]


def broken(reply: str, greeting: str | None = None) -> list[str]:
    return [rule for rule, kept in evals.voice_rules(reply, greeting).items() if not kept]


def test_house_voice_checker_catches_each_rule():
    good = ("Hi Maria,\n\nThanks for getting in touch. I'll send a new label within 1 working day."
            f"\n\n{evals.VOICE_SIGN_OFF}")
    assert broken(good) == []
    assert "greeting" in broken(good.replace("Hi Maria,", "Dear Maria,"))
    assert "sign-off" in broken(good.replace(evals.VOICE_SIGN_OFF, "- Brightbrew Support"))
    assert "no exclamation mark" in broken(good.replace("touch.", "touch!"))
    assert "no banned phrase" in broken(
        good.replace("Thanks for getting in touch.", "Unfortunately, that broke."))
    assert "next step with a timeframe" in broken(
        good.replace("within 1 working day", "soon"))
    assert "2-4 sentences" in broken(good.replace("Thanks for getting in touch. ", ""))
    assert "no emoji" in broken(good.replace("touch.", "touch 🙂."))
    assert "at most 60 words" in broken(good.replace("touch.", "touch" + " and more" * 30 + "."))


def test_voice_greeting_must_name_the_customer_when_told_who():
    reply = f"Hi Maria,\n\nThanks. It ships within 2 days.\n\n{evals.VOICE_SIGN_OFF}"
    assert broken(reply, "Hi Maria,") == []
    assert broken(reply, "Hi Grace,") == ["greeting"]
    assert "sign-off" in broken("Hi Maria,")  # one line: no sign-off, no crash


def test_score_voice_reads_the_expected_greeting_from_the_reference():
    rows = [{"chosen": [{"role": "assistant", "content": "Hi Maria,\n\nx\n\n— Brightbrew Support"}]},
            {"messages": [{"role": "user", "content": "q"},
                          {"role": "assistant", "content": "Hi there,\n\ny"}]}]
    good = f"Thanks for waiting. It ships today.\n\n{evals.VOICE_SIGN_OFF}"
    scores = evals.score_voice([f"Hi Maria,\n\n{good}", f"Hi Maria,\n\n{good}"], rows)
    assert scores.in_voice == [True, False] and scores.rules["greeting"] == [True, False]
    assert scores.metrics["in house voice (all rules)"].hits == 1
    with pytest.raises(ValueError, match="pair up"):
        evals.score_voice(["x"], rows)


def test_time_calls_times_each_chat_alone(tiny_model):
    model, tokenizer = tiny_model
    chats = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    seconds = evals.time_calls(model, tokenizer, chats, max_new_tokens=2)
    assert len(seconds) == 3 and all(s > 0 for s in seconds)


# ---------------------------------------------------------------------------- chapter 06

def test_sign_test_matches_the_binomial_by_hand():
    assert evals.sign_test(0, 0) == 1.0
    assert evals.sign_test(6, 1) == pytest.approx(2 * (1 + 7) / 2 ** 7)  # 0.125, chapter 04
    assert evals.sign_test(1, 6) == evals.sign_test(6, 1)
    assert evals.sign_test(5, 5) == 1.0  # capped: both tails overlap at the centre
    assert evals.sign_test(10, 0) == pytest.approx(2 / 2 ** 10)
    with pytest.raises(ValueError, match="non-negative"):
        evals.sign_test(-1, 2)


def test_paired_test_counts_only_the_rows_where_the_systems_disagree():
    a = [True] * 20 + [True] * 2 + [False] * 9 + [False] * 9
    b = [True] * 20 + [False] * 2 + [True] * 9 + [False] * 9
    result = evals.paired_test(a, b)
    assert (result.n, result.a_hits, result.b_hits) == (40, 22, 29)
    assert (result.only_a, result.only_b) == (2, 9)
    assert result.diff == pytest.approx(7 / 40)
    assert result.p_value == pytest.approx(evals.sign_test(9, 2))
    assert result.low <= result.diff <= result.high
    assert "McNemar" in str(result) and "only B right on 9" in str(result)
    # the same rates on unrelated rows would not be significant; paired, they are
    assert result.p_value < 0.07


def test_paired_test_refuses_rows_that_do_not_pair_up():
    with pytest.raises(ValueError, match="same rows"):
        evals.paired_test([True, False], [True])
    with pytest.raises(ValueError, match="no rows"):
        evals.paired_test([], [])


def test_forgetting_names_the_probes_that_flipped():
    result = evals.forgetting([True, True, True, False], [True, False, False, True],
                              ids=["p1", "p2", "p3", "p4"])
    assert result.forgotten == ["p2", "p3"] and result.gained == ["p4"]
    assert (result.before.hits, result.after.hits) == (3, 2)
    assert "2 forgotten, 1 newly right" in str(result)
    with pytest.raises(ValueError, match="one id per probe"):
        evals.forgetting([True], [True], ids=["a", "b"])


def test_ab_sample_size_matches_the_textbook_formula():
    # Fleiss: 0.55 vs 0.60, alpha 0.05 two-sided, power 0.8 -> about 1,530 per arm
    n = evals.ab_sample_size(0.55, 0.60)
    assert 1500 <= n <= 1560
    assert evals.ab_sample_size(0.55, 0.60, power=0.9) > n
    assert evals.ab_sample_size(0.38, 0.55) < 200
    assert evals.ab_sample_size(0.60, 0.55) == n  # symmetric
    for bad in (dict(p_a=0.5, p_b=0.5), dict(p_a=0.0, p_b=0.5), dict(p_a=0.5, p_b=1.2)):
        with pytest.raises(ValueError):
            evals.ab_sample_size(**bad)


def test_two_proportion_test():
    assert evals.two_proportion_test(50, 100, 50, 100) == pytest.approx(1.0)
    assert evals.two_proportion_test(40, 100, 60, 100) < 0.01
    assert evals.two_proportion_test(0, 10, 0, 10) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        evals.two_proportion_test(1, 0, 1, 10)


def test_simulated_rollouts_reproduce_power_and_false_alarms():
    n = evals.ab_sample_size(0.30, 0.40)
    power = evals.simulate_ab(0.30, 0.40, n, trials=1000)
    assert 0.72 < power.b_wins < 0.88
    null = evals.simulate_ab(0.30, 0.30, n, trials=1000)
    assert null.b_wins + null.a_wins < 0.08  # about alpha = 5%, split between both sides
    assert power.b_wins + power.a_wins + power.no_call == pytest.approx(1.0)
    assert evals.simulate_ab(0.3, 0.4, 50, seed=1) == evals.simulate_ab(0.3, 0.4, 50, seed=1)


# ---------------------------------------------------------------------------- constrained decoding

def ticket_chats(n: int) -> list[list[dict]]:
    from pathlib import Path
    from course_utils import prompts
    path = Path(__file__).resolve().parent.parent / "data" / "tickets" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:n]]
    return [prompts.as_prompt(prompts.user_text(r), system=prompts.TICKET_INSTRUCTIONS)
            for r in rows]


def test_schema_constrained_generation_writes_valid_records(tiny_model):
    pytest.importorskip("xgrammar")
    from course_utils.prompts import TICKET_SCHEMA
    model, tokenizer = tiny_model
    chats = ticket_chats(2)
    free = evals.generate_from_messages(model, tokenizer, chats, max_new_tokens=80)
    assert all(evals.parse_json_record(a) is None for a in free)  # random weights: garbage
    answers = evals.generate_from_messages(model, tokenizer, chats, max_new_tokens=80,
                                           batch_size=2, json_schema=TICKET_SCHEMA)
    properties = TICKET_SCHEMA["properties"]
    for answer in answers:
        parsed = evals.parse_json_record(answer)
        assert parsed is not None, answer
        assert list(parsed) == list(properties), answer  # the schema's key order
        for key, value in parsed.items():
            if "enum" in properties[key]:
                assert value in properties[key]["enum"], answer
        assert parsed["order_id"] is None or re.fullmatch(r"BB-\d{5}", parsed["order_id"])
    assert tokenizer.padding_side == "right"


def test_schema_grammar_is_compiled_once_per_tokenizer_and_schema(tiny_model):
    pytest.importorskip("xgrammar")
    model, tokenizer = tiny_model
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}},
              "required": ["ok"], "additionalProperties": False}
    first = evals._schema_processor(model, tokenizer, schema)
    second = evals._schema_processor(model, tokenizer, schema)
    assert first is not second  # a processor serves one generate() call
    assert first.compiled_grammars[0] is second.compiled_grammars[0]
    [answer] = evals.generate_from_messages(model, tokenizer, [[{"role": "user", "content": "?"}]],
                                            max_new_tokens=12, json_schema=schema)
    assert evals.parse_json_record(answer) in ({"ok": True}, {"ok": False}), answer


def test_missing_xgrammar_says_how_to_install_it(tiny_model, monkeypatch):
    import sys
    model, tokenizer = tiny_model
    monkeypatch.setitem(sys.modules, "xgrammar", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install xgrammar==0\.2\.8"):
        evals.generate_from_messages(model, tokenizer, [[{"role": "user", "content": "hi"}]],
                                     max_new_tokens=2, json_schema={"type": "object"})


def test_importing_course_utils_does_not_import_xgrammar():
    import subprocess
    import sys
    code = ("import sys, course_utils, course_utils.evals, course_utils.prompts; "
            "sys.exit('xgrammar' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_voice_tone_and_misreads():
    assert evals.voice_tone("Hi Ann,\n\nThanks for the kind words. ...") == "praise"
    assert evals.voice_tone("Hi Ann,\n\nI'm sorry about the trouble. ...") == "apology"
    assert evals.voice_tone("Hi Ann,\n\nThanks for your message. ...") == "plain"
    replies = ["Thanks for the kind words.", "I'm sorry about that.", "Thanks for the kind words.",
               "Thanks for your message."]
    assert evals.misreads(replies, ["negative", "positive", "positive", "negative"]) == [
        True, True, False, False]  # praise to an unhappy customer, sorry to a happy one
    with pytest.raises(ValueError, match="unknown sentiment 'angry'"):
        evals.misreads(["x"], ["angry"])
    with pytest.raises(ValueError, match="pair up"):
        evals.misreads(["x", "y"], ["neutral"])


def test_voice_scores_keep_a_subset_of_rules():
    good = ("Hi Maria,\n\nThanks for your message. The refund reaches you within 2 working "
            "days.\n\n— Brightbrew Support")
    rows = [{"messages": [{"role": "user", "content": "?"}, {"role": "assistant", "content": good}]}] * 2
    scores = evals.score_voice([good, good.replace("days.", "days!")], rows)
    assert scores.keeps(evals.VOICE_SELECTION_RULES) == [True, True]
    assert scores.keeps(evals.VOICE_HELD_OUT_RULES) == [True, False]
    with pytest.raises(KeyError, match="no voice rule 'politeness'"):
        scores.keeps(["politeness"])


def test_the_voice_judge_learns_chosen_from_rejected_and_reads_only_the_body():
    def pair(i):
        return {"chosen": [{"role": "assistant", "content": f"Hi A,\nThanks, I have sent it, it arrives within {i} days.\n— S"}],
                "rejected": [{"role": "assistant", "content": f"Hi A,\nDear valued customer we apologize, ticket {i} is noted.\n— S"}]}
    judge = evals.VoiceJudge([pair(i) for i in range(20)])
    assert judge.trained_on == 40
    assert judge.in_voice(["X\nThanks, I have sent it, it arrives within 3 days.\nY",
                           "X\nDear valued customer we apologize, it is noted.\nY"]) == [True, False]
    assert evals.reply_body("Hi A,\nbody\n— S") == "body" and evals.reply_body("one line") == "one line"
    assert evals.agreement([True, False, True], [True, True, True]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        evals.VoiceJudge([])


def test_parting_finds_where_two_answers_part_and_how_close_it_was(real_model):
    model, tokenizer = real_model
    messages = [{"role": "user", "content": "Name three colours."}]
    ours = evals.generate_from_messages(model, tokenizer, [messages], max_new_tokens=8)[0]
    assert evals.parting(model, tokenizer, messages, ours, ours) is None
    ids = tokenizer(ours, add_special_tokens=False)["input_ids"]
    theirs = tokenizer.decode(ids[:3]) + " zebra"
    found = evals.parting(model, tokenizer, messages, ours, theirs)
    assert found.position == 3 and found.ours == tokenizer.decode(ids[3:4])
    assert found.theirs == " zebra" and found.logit_gap > 0  # greedy picked ours: the top logit
    assert "after 3 tokens" in str(found)
    # an answer that stopped where the other went on parts at its end-of-text token
    ended = evals.parting(model, tokenizer, messages, tokenizer.decode(ids[:3]), ours)
    assert ended.position == 3 and ended.ours == tokenizer.eos_token
