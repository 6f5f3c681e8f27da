"""Tests of course_utils.decide: the chapter 00 checklist and cost calculator (no model, fast)."""

import pytest

from course_utils import decide as dc
from course_utils.decide import (ALL_MUST_BE_TRUE, WHEN_NOT_TO_BOTHER, CallPricing, Comparison,
                                 Cost, Verdict, break_even_calls_per_month,
                                 compare_api_vs_finetuned, decide, per_call_cost, training_cost)

ALL_TRUE = {item.key: True for item in ALL_MUST_BE_TRUE}
# Hand-computed example: big = (2000 x 2.50 + 200 x 10.00) / 1e6 = 0.005 + 0.002 = 0.007 a call;
# small = (250 x 0.20 + 200 x 0.60) / 1e6 = 0.00005 + 0.00012 = 0.00017 a call.
BIG = CallPricing("big API", 2000, 200, 2.50, 10.00)
SMALL = CallPricing("tuned small", 250, 200, 0.20, 0.60)


# --- the checklist ------------------------------------------------------------------------------

def test_checklist_has_five_and_five_with_unique_keys():
    keys = [item.key for item in (*ALL_MUST_BE_TRUE, *WHEN_NOT_TO_BOTHER)]
    assert len(ALL_MUST_BE_TRUE) == 5 and len(WHEN_NOT_TO_BOTHER) == 5
    assert len(set(keys)) == 10
    assert all(item.question.endswith("?") and item.do_instead for item in
               (*ALL_MUST_BE_TRUE, *WHEN_NOT_TO_BOTHER))
    assert "RAG" in {i.key: i for i in WHEN_NOT_TO_BOTHER}["wants_facts"].do_instead


def test_all_true_and_no_flags_says_fine_tune():
    verdict = decide(ALL_TRUE)
    assert isinstance(verdict, Verdict)
    assert verdict.fine_tune and verdict.reasons == []
    assert verdict.next_step == dc.FINE_TUNE_NEXT_STEP
    assert str(verdict).startswith("Verdict: fine-tune.")
    # red flags given explicitly as False change nothing
    assert decide({**ALL_TRUE, **{i.key: False for i in WHEN_NOT_TO_BOTHER}}).fine_tune


@pytest.mark.parametrize("item", ALL_MUST_BE_TRUE, ids=lambda item: item.key)
def test_each_unmet_condition_blocks(item):
    left_out = {key: value for key, value in ALL_TRUE.items() if key != item.key}
    for answers in ({**ALL_TRUE, item.key: False}, left_out):
        verdict = decide(answers)  # answered False, or left out: both count as unmet
        assert not verdict.fine_tune
        assert verdict.reasons == [f"condition not met ({item.key}): {item.question}"]
        assert verdict.next_step == item.do_instead
        assert item.key in str(verdict) and "do not fine-tune" in str(verdict)


@pytest.mark.parametrize("item", WHEN_NOT_TO_BOTHER, ids=lambda item: item.key)
def test_each_red_flag_blocks_with_its_alternative(item):
    verdict = decide({**ALL_TRUE, item.key: True})
    assert not verdict.fine_tune
    assert len(verdict.reasons) == 1
    assert item.key in verdict.reasons[0] and item.do_instead in verdict.reasons[0]
    assert verdict.next_step == item.do_instead


def test_red_flags_come_before_unmet_conditions():
    verdict = decide({"wants_facts": True})
    assert len(verdict.reasons) == 6
    assert verdict.reasons[0].startswith("red flag (wants_facts)")
    assert verdict.next_step.startswith("Use retrieval (RAG)")


def test_empty_answers_means_no():
    verdict = decide({})
    assert not verdict.fine_tune and len(verdict.reasons) == 5


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(ValueError) as error:
        decide({**ALL_TRUE, "have_a_gpu": True})
    message = str(error.value)
    assert "'have_a_gpu'" in message
    assert all(item.key in message for item in (*ALL_MUST_BE_TRUE, *WHEN_NOT_TO_BOTHER))


def test_non_bool_answer_is_refused():
    with pytest.raises(TypeError, match="wants_facts"):
        decide({"wants_facts": "no"})


# --- money --------------------------------------------------------------------------------------

def test_cost_formatting_and_conversion():
    assert str(Cost(123456, "NGN")) == "NGN 123,456.00"
    assert str(Cost(1234.5)) == "USD 1,234.50"
    assert str(Cost(0.00575, "usd")) == "USD 0.00575"  # under a cent: 3 significant digits
    assert str(Cost(-0.0)) == "USD 0.00"
    assert str(Cost(-17.5)) == "USD -17.50"
    naira = Cost(4.5).to("NGN", 1500)
    assert naira == Cost(6750.0, "NGN") and str(naira) == "NGN 6,750.00"
    with pytest.raises(ValueError, match="rate"):
        Cost(1.0).to("NGN", -3)
    with pytest.raises(ValueError, match="currency"):
        Cost(1.0, " ")


def test_training_cost():
    cost = training_cost(gpu_hours=2.5, price_per_gpu_hour=1200, currency="NGN", runs=3)
    assert cost.currency == "NGN" and cost.amount == pytest.approx(9000.0)
    assert training_cost(4, 0.75).amount == pytest.approx(3.0)


def test_per_call_cost_by_hand():
    cost = per_call_cost(2000, 200, 2.50, 10.00, "USD")
    assert cost.amount == pytest.approx(0.007)
    assert BIG.per_call().amount == pytest.approx(0.007)
    small = SMALL.per_call("eur")
    assert small.currency == "EUR" and small.amount == pytest.approx(0.00017)


def test_break_even_month_by_hand():
    # 100,000 calls: big 700.00 a month; small 17.00 + 83.00 hosting = 100.00; savings 600.00.
    # One-off 1,500: cumulative savings 600, 1,200, 1,800 -> paid back in month 3.
    result = compare_api_vs_finetuned(100_000, BIG, SMALL, fine_tune_one_off=1500,
                                      hosting_per_month=83, currency="USD", months=12)
    assert isinstance(result, Comparison)
    assert result.api_monthly.amount == pytest.approx(700.0)
    assert result.finetuned_monthly.amount == pytest.approx(100.0)
    assert result.monthly_savings.amount == pytest.approx(600.0)
    assert result.api_total.amount == pytest.approx(8400.0)
    assert result.finetuned_total.amount == pytest.approx(1500 + 1200.0)
    assert result.break_even_month == 3
    text = str(result)
    assert "month 3" in text and "USD 8,400.00" in text and "big API" in text
    # exactly 2.5 months of savings with a zero one-off: month 1; exact multiple: that month
    assert compare_api_vs_finetuned(100_000, BIG, SMALL, 0, 83).break_even_month == 1
    assert compare_api_vs_finetuned(100_000, BIG, SMALL, 1800, 83).break_even_month == 3


def test_never_breaks_even_and_late_break_even():
    # 10,000 calls: big 70.00 a month; small 1.70 + 83.00 hosting = 84.70 -> never pays back
    never = compare_api_vs_finetuned(10_000, BIG, SMALL, 1500, 83)
    assert never.monthly_savings.amount == pytest.approx(-14.70)
    assert never.break_even_month is None and "never" in str(never)
    late = compare_api_vs_finetuned(100_000, BIG, SMALL, 9000, 83, months=12)
    assert late.break_even_month == 15 and "after the 12-month horizon" in str(late)


def test_break_even_calls_per_month_by_hand():
    # (1,200 / 12 + 83) / (0.007 - 0.00017) = 183 / 0.00683 = 26,793.6 -> 26,794 calls
    calls = break_even_calls_per_month(BIG, SMALL, fine_tune_one_off=1200, hosting_per_month=83)
    assert calls == 26_794
    assert compare_api_vs_finetuned(calls, BIG, SMALL, 1200, 83).break_even_month <= 12
    assert compare_api_vs_finetuned(calls - 1, BIG, SMALL, 1200, 83).finetuned_total.amount > \
        compare_api_vs_finetuned(calls - 1, BIG, SMALL, 1200, 83).api_total.amount
    assert break_even_calls_per_month(SMALL, BIG, 1200, 83) is None  # tuned call costs more


@pytest.mark.parametrize("call, name, value", [
    (lambda: training_cost(-2, 1.0), "gpu_hours", "-2"),
    (lambda: training_cost(2, -1.5), "price_per_gpu_hour", "-1.5"),
    (lambda: training_cost(2, 1.0, runs=-1), "runs", "-1"),
    (lambda: per_call_cost(-10, 5, 1, 1), "input_tokens", "-10"),
    (lambda: per_call_cost(10, 5, 1, -0.5), "price_out_per_million", "-0.5"),
    (lambda: CallPricing("x", 10, -5, 1, 1), "output_tokens", "-5"),
    (lambda: compare_api_vs_finetuned(-1, BIG, SMALL, 0, 0), "calls_per_month", "-1"),
    (lambda: compare_api_vs_finetuned(1, BIG, SMALL, -100, 0), "fine_tune_one_off", "-100"),
    (lambda: compare_api_vs_finetuned(1, BIG, SMALL, 0, -9), "hosting_per_month", "-9"),
    (lambda: compare_api_vs_finetuned(1, BIG, SMALL, 0, 0, months=0), "months", "0"),
    (lambda: training_cost(float("nan"), 1.0), "gpu_hours", "nan"),
])
def test_negative_inputs_are_refused_by_name(call, name, value):
    with pytest.raises(ValueError) as error:
        call()
    assert name in str(error.value) and value in str(error.value)


def test_non_numbers_are_refused():
    with pytest.raises(TypeError, match="gpu_hours"):
        training_cost("4", 1.0)


def test_example_prices_are_labelled_illustrative():
    text = str(dc.EXAMPLE_PRICES)
    assert "Illustrative, not current quotes" in text and "look up today's" in text
    assert dc.EXAMPLE_PRICES.usd_to_ngn > 0 and "H100 (80 GB)" in dc.EXAMPLE_PRICES.gpu_hour_usd


# --- the widgets: headless and with a (pretend) front end ---------------------------------------

def test_has_frontend_is_false_under_pytest():
    assert dc.has_frontend() is False


def test_decision_widget_headless_prints_plain_text(capsys):
    verdict = dc.decision_widget({**ALL_TRUE, "wants_facts": True})
    printed = capsys.readouterr().out
    assert printed == str(verdict) + "\n"
    assert not verdict.fine_tune and "red flag (wants_facts)" in printed
    assert dc.decision_widget().fine_tune is False
    with pytest.raises(ValueError, match="nope"):
        dc.decision_widget({"nope": True})


def test_cost_widget_headless_prints_plain_text(capsys):
    result = dc.cost_widget(calls_per_month=100_000, big=BIG, small=SMALL, gpu_hours=10,
                            price_per_gpu_hour=50, runs=3, dataset_cost=0, hosting_per_month=83,
                            show_in="NGN", rate=1500)
    printed = capsys.readouterr().out
    assert isinstance(result, Comparison) and result.break_even_month == 3
    assert str(result) in printed
    assert "USD 1,500.00" in printed and "NGN 2,250,000.00" in printed  # one-off in naira
    default = dc.cost_widget()  # the illustrative defaults run too
    assert str(default) in capsys.readouterr().out


def test_decision_widget_with_frontend_builds_and_rerenders(monkeypatch):
    monkeypatch.setattr(dc, "has_frontend", lambda: True)
    assert dc.decision_widget(ALL_TRUE).fine_tune is True
    panel, boxes, output = dc._decision_panel(ALL_TRUE)
    assert set(boxes) == {i.key for i in (*ALL_MUST_BE_TRUE, *WHEN_NOT_TO_BOTHER)}
    assert output.outputs[-1]["text"] == str(decide(ALL_TRUE)) + "\n"
    boxes["wants_facts"].value = True  # ticking a red flag re-renders the verdict
    assert output.outputs[-1]["text"] == str(decide({**ALL_TRUE, "wants_facts": True})) + "\n"
    assert len(output.outputs) == 1


def test_cost_widget_with_frontend_builds_and_rerenders(monkeypatch):
    monkeypatch.setattr(dc, "has_frontend", lambda: True)
    result = dc.cost_widget(calls_per_month=100_000, big=BIG, small=SMALL, gpu_hours=10,
                            price_per_gpu_hour=50, runs=3, hosting_per_month=83)
    assert result.break_even_month == 3
    params = dict(calls_per_month=100_000, big=BIG, small=SMALL, gpu_hours=10.0,
                  price_per_gpu_hour=50.0, runs=3, dataset_cost=0.0, hosting_per_month=83.0,
                  currency="USD", months=12, show_in="", rate=1.0)
    panel, inputs, output = dc._cost_panel(params)
    assert "month 3" in output.outputs[-1]["text"]
    inputs["calls_per_month"].value = 10_000  # too few calls: never pays back
    assert "never" in output.outputs[-1]["text"]
    inputs["small.price_in_per_million"].value = -1.0  # bad input: message, not a traceback
    assert "Check the inputs" in output.outputs[-1]["text"]
    assert "price_in_per_million" in output.outputs[-1]["text"]
