"""Should you fine-tune at all? The chapter's decision checklist and cost calculator.

Introduced in notebooks/00_decide.ipynb ("When to fine-tune, and when not").

The checklist is plain data (ALL_MUST_BE_TRUE, WHEN_NOT_TO_BOTHER) and `decide()` is a pure
function over it. The cost calculator works in any currency: you type in the prices, nothing is
fetched. Both widgets fall back to plain text when no notebook front end is attached (pytest,
nbval, CI, a terminal), and both paths show the same `str()` of the same result.
"""

from __future__ import annotations

import html
import math
import numbers
import textwrap
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .env import is_headless

# ---------------------------------------------------------------------------------------------
# 1. The decision checklist
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist line: the key used in `answers`, its question, and what to do instead."""

    key: str
    question: str
    do_instead: str


ALL_MUST_BE_TRUE: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        "tried_prompt_and_rag",
        "Have you tried a careful prompt and retrieval (RAG) and measured that they fall short?",
        "Write a careful prompt, add examples and retrieval, and score them on held-out rows.",
    ),
    ChecklistItem(
        "needs_consistent_behaviour",
        "Do you need a style, tone or output format that instructions alone do not give reliably?",
        "If instructions already give the behaviour you need, keep the prompt: it is cheaper.",
    ),
    ChecklistItem(
        "narrow_repeatable_task",
        "Is the job one narrow task done the same way many times (classify, reformat, one voice)?",
        "Narrow the job down to one repeatable task before you think about training.",
    ),
    ChecklistItem(
        "have_real_dataset",
        "Do you have clean input/output examples that look like the real job, hundreds not dozens?",
        "Collect and clean real input/output examples; meanwhile use a few as few-shot examples.",
    ),
    ChecklistItem(
        "volume_pays_off",
        "At your volume, would a small tuned model cost less than a big model with a long prompt?",
        "Run the cost calculator on your own prices and volume; at low volume the big model wins.",
    ),
)

WHEN_NOT_TO_BOTHER: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        "wants_facts",
        "Is the goal for the model to know your documents, prices or policies?",
        "Use retrieval (RAG): keep the model as it is and put the right text in the prompt.",
    ),
    ChecklistItem(
        "few_examples",
        "Do you have only a handful of examples (a few dozen or fewer)?",
        "Use few-shot prompting with what you have; collect a few hundred clean examples first.",
    ),
    ChecklistItem(
        "no_serious_prompt",
        "Are you reaching for training before you have written and tested a serious prompt?",
        "Write and test a careful prompt first: it costs nothing and changes in minutes.",
    ),
    ChecklistItem(
        "wants_smarter",
        "Do you hope fine-tuning will make the model smarter in general?",
        "Try a bigger or newer base model: fine-tuning narrows a model to a task.",
    ),
    ChecklistItem(
        "need_keeps_changing",
        "Does the need keep changing (new products, rules or formats)?",
        "Keep the changing part in a prompt or a RAG index, which you edit instead of retraining.",
    ),
)

FINE_TUNE_NEXT_STEP = (
    "Build the dataset, hold some rows back, and check on them that a fine-tune beats your best "
    "prompt (chapters 01 to 06)."
)


def _wrap(text: str, indent: str = "    ", width: int = 92) -> str:
    """Wrap one paragraph of a plain-text report, indenting its continuation lines."""
    return textwrap.fill(text, width=width, subsequent_indent=indent, break_on_hyphens=False)


@dataclass
class Verdict:
    """The checklist's answer: fine-tune or not, why, and what to do next."""

    fine_tune: bool
    reasons: list[str] = field(default_factory=list)
    next_step: str = ""

    def __str__(self) -> str:
        """A readable plain-text report: the verdict, one reason per line, the next step."""
        if self.fine_tune:
            lines = ["Verdict: fine-tune. Every condition holds and no red flag is raised."]
        else:
            lines = ["Verdict: do not fine-tune (yet). Stay on prompting and RAG.", "Why:"]
            lines += [_wrap(f"  - {reason}") for reason in self.reasons]
        lines.append(_wrap(f"Next step: {self.next_step}"))
        return "\n".join(lines)


def _check_answers(answers: Mapping[str, bool]) -> None:
    """Raise if `answers` holds a key the checklist does not know, or a value that is not a bool."""
    valid_keys = [item.key for item in (*ALL_MUST_BE_TRUE, *WHEN_NOT_TO_BOTHER)]
    for key, value in answers.items():
        if key not in valid_keys:
            raise ValueError(f"unknown checklist key {key!r}; valid keys: {', '.join(valid_keys)}")
        if not isinstance(value, bool):
            raise TypeError(f"answers[{key!r}] must be True or False, got {value!r}")


def decide(answers: Mapping[str, bool]) -> Verdict:
    """Fine-tune only if every ALL_MUST_BE_TRUE answer is True and no WHEN_NOT_TO_BOTHER one is.

    A key missing from `answers` counts as False: an unanswered condition is unmet, an unanswered
    red flag is absent. An unknown key raises ValueError listing the valid keys.
    """
    _check_answers(answers)
    unmet = [item for item in ALL_MUST_BE_TRUE if not answers.get(item.key, False)]
    flags = [item for item in WHEN_NOT_TO_BOTHER if answers.get(item.key, False)]
    reasons = [f"red flag ({i.key}): {i.question} Instead: {i.do_instead}" for i in flags]
    reasons += [f"condition not met ({item.key}): {item.question}" for item in unmet]
    if not reasons:
        return Verdict(fine_tune=True, reasons=[], next_step=FINE_TUNE_NEXT_STEP)
    return Verdict(fine_tune=False, reasons=reasons, next_step=(flags + unmet)[0].do_instead)


def has_frontend() -> bool:
    """True inside a live Jupyter or Colab kernel with ipywidgets; False in tests, CI or a shell."""
    if is_headless():  # PYTEST_CURRENT_TEST (pytest, nbval) or COURSE_HEADLESS is set
        return False
    try:
        from IPython import get_ipython
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    kinds = {cls.__name__ for cls in type(shell).__mro__}
    return "ZMQInteractiveShell" in kinds or type(shell).__module__.startswith("google.colab")


def _show_text(output: Any, text: str) -> None:
    """Replace what an ipywidgets Output area shows with `text` (works in ipywidgets 7 and 8)."""
    output.outputs = ()
    output.append_stdout(text + "\n")


def _decision_panel(answers: Mapping[str, bool]) -> tuple[Any, dict[str, Any], Any]:
    """Build the checklist: one Checkbox per item and an Output that re-renders the verdict."""
    import ipywidgets as widgets

    boxes: dict[str, Any] = {}
    rows: list[Any] = []
    sections = (("All of these must be true (tick those that are)", ALL_MUST_BE_TRUE),
                ("When not to bother (tick any that apply)", WHEN_NOT_TO_BOTHER))
    for title, items in sections:
        rows.append(widgets.HTML(f"<b>{html.escape(title)}</b>"))
        for item in items:
            box = widgets.Checkbox(value=answers.get(item.key, False), description="",
                                   indent=False, layout=widgets.Layout(width="28px"))
            label = widgets.HTML(f"{html.escape(item.question)} <code>{item.key}</code>")
            boxes[item.key] = box
            rows.append(widgets.HBox([box, label]))
    output = widgets.Output()

    def render(_change: Any = None) -> None:
        _show_text(output, str(decide({key: box.value for key, box in boxes.items()})))

    for box in boxes.values():
        box.observe(render, names="value")
    render()
    return widgets.VBox([*rows, output]), boxes, output


def decision_widget(answers: Mapping[str, bool] | None = None) -> Verdict:
    """Tick boxes for the checklist in a notebook; plain-text verdict when headless. Returns it."""
    answers = dict(answers or {})
    verdict = decide(answers)
    _show(str(verdict), lambda: _decision_panel(answers)[0])
    return verdict


def _show(text: str, build_panel: Callable[[], Any]) -> None:
    """Display the widget panel with a live front end; print the same report as text without."""
    if not has_frontend():
        print(text)
        return
    from IPython.display import display

    display(build_panel())


# ---------------------------------------------------------------------------------------------
# 2. The cost calculator: any currency, prices typed in by the learner
# ---------------------------------------------------------------------------------------------


def _check_non_negative(values: Mapping[str, Any], where: str = "") -> None:
    """Raise ValueError naming the argument and value unless each is a finite number >= 0."""
    suffix = f" (in {where})" if where else ""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {value!r}{suffix}")
        if not 0 <= value < math.inf:  # also rejects NaN
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}{suffix}")


def _currency_code(currency: str) -> str:
    """Normalise a currency code ('ngn ' -> 'NGN'); raise if it is empty."""
    if not isinstance(currency, str) or not currency.strip():
        raise ValueError(f"currency must be a code such as 'USD' or 'NGN', got {currency!r}")
    return currency.strip().upper()


def _format_amount(amount: float) -> str:
    """Two decimals with thousands separators; three significant digits below one cent."""
    amount = amount + 0.0  # turns -0.0 into 0.0
    if amount == 0 or abs(amount) >= 0.01:
        return f"{amount:,.2f}"
    decimals = 2 - math.floor(math.log10(abs(amount)))
    return f"{amount:,.{decimals}f}"


def _ceil(value: float) -> int:
    """Round up, but treat a float a hair above a whole number (2.0000000001) as that number."""
    nearest = round(value)
    return nearest if math.isclose(value, nearest, rel_tol=1e-9, abs_tol=1e-9) else math.ceil(value)


@dataclass(frozen=True)
class Cost:
    """An amount of money in one currency; prints as 'NGN 123,456.00'."""

    amount: float
    currency: str = "USD"

    def __post_init__(self) -> None:
        """Normalise the currency code."""
        object.__setattr__(self, "currency", _currency_code(self.currency))

    def __str__(self) -> str:
        """The code, then the amount with thousands separators."""
        return f"{self.currency} {_format_amount(self.amount)}"

    def to(self, currency: str, rate: float) -> Cost:
        """This cost in `currency`, where `rate` is how many units of it one unit of ours buys."""
        _check_non_negative({"rate": rate})
        if rate == 0:
            raise ValueError("rate must be > 0, got 0")
        return Cost(self.amount * rate, currency)


def training_cost(gpu_hours: float, price_per_gpu_hour: float, currency: str = "USD",
                  runs: int = 1) -> Cost:
    """GPU-hours per run x price per GPU-hour x runs (count the failed and tuning runs too)."""
    _check_non_negative({"gpu_hours": gpu_hours, "price_per_gpu_hour": price_per_gpu_hour,
                         "runs": runs})
    return Cost(gpu_hours * price_per_gpu_hour * runs, currency)


def per_call_cost(input_tokens: int, output_tokens: int, price_in_per_million: float,
                  price_out_per_million: float, currency: str = "USD") -> Cost:
    """The price of one call: tokens in and out, each at its price per million tokens."""
    _check_non_negative({"input_tokens": input_tokens, "output_tokens": output_tokens,
                         "price_in_per_million": price_in_per_million,
                         "price_out_per_million": price_out_per_million})
    amount = (input_tokens * price_in_per_million + output_tokens * price_out_per_million) / 1e6
    return Cost(amount, currency)


@dataclass(frozen=True)
class CallPricing:
    """One way to answer a call: a model's tokens per call and its prices per million tokens."""

    name: str
    input_tokens: int
    output_tokens: int
    price_in_per_million: float
    price_out_per_million: float

    def __post_init__(self) -> None:
        """Refuse negative tokens or prices, naming this pricing."""
        _check_non_negative({"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                             "price_in_per_million": self.price_in_per_million,
                             "price_out_per_million": self.price_out_per_million},
                            where=f"CallPricing {self.name!r}")

    def per_call(self, currency: str = "USD") -> Cost:
        """The cost of one call at these prices."""
        return per_call_cost(self.input_tokens, self.output_tokens, self.price_in_per_million,
                             self.price_out_per_million, currency)


def _tokens(pricing: CallPricing) -> str:
    """'2,000 / 150': the input and output tokens of one call."""
    return f"{pricing.input_tokens:,.0f} / {pricing.output_tokens:,.0f}"


def _table(rows: list[tuple[str, ...]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass(frozen=True)
class Comparison:
    """Big API model vs fine-tuned small model: monthly and total costs, savings, break-even."""

    big: CallPricing
    small: CallPricing
    calls_per_month: float
    months: int
    currency: str
    big_per_call: Cost
    small_per_call: Cost
    hosting_per_month: Cost
    fine_tune_one_off: Cost
    api_monthly: Cost
    finetuned_monthly: Cost
    api_total: Cost
    finetuned_total: Cost
    monthly_savings: Cost
    break_even_month: int | None

    def _break_even_line(self) -> str:
        """One sentence on when (or whether) the one-off fine-tune is paid back."""
        month = self.break_even_month
        if month is None:
            return ("Break-even: never. The fine-tuned route costs as much or more every month, "
                    "so the one-off is never paid back.")
        if month > self.months:
            return f"Break-even: month {month}, after the {self.months}-month horizon."
        return f"Break-even: month {month}. By then the savings have paid for the fine-tune."

    def __str__(self) -> str:
        """A plain-text table of both routes, then the savings and the break-even month."""
        none = str(Cost(0, self.currency))
        rows = [
            ("", self.big.name, self.small.name),
            ("tokens per call (in / out)", _tokens(self.big), _tokens(self.small)),
            ("cost per call", str(self.big_per_call), str(self.small_per_call)),
            ("hosting per month", none, str(self.hosting_per_month)),
            ("cost per month", str(self.api_monthly), str(self.finetuned_monthly)),
            ("one-off fine-tune", none, str(self.fine_tune_one_off)),
            (f"total over {self.months} months", str(self.api_total), str(self.finetuned_total)),
        ]
        title = (f"{self.calls_per_month:,.0f} calls a month over {self.months} months, "
                 f"in {self.currency}:")
        return "\n".join([title, _table(rows),
                          f"Monthly savings with the fine-tune: {self.monthly_savings}",
                          _wrap(self._break_even_line(), indent="")])


def _break_even_month(one_off: float, monthly_savings: float) -> int | None:
    """First month by which the savings cover the one-off cost; None if they never do."""
    if monthly_savings <= 0:
        return None
    return max(1, _ceil(one_off / monthly_savings))


def compare_api_vs_finetuned(calls_per_month: float, big: CallPricing, small: CallPricing,
                             fine_tune_one_off: float, hosting_per_month: float,
                             currency: str = "USD", months: int = 12) -> Comparison:
    """Cost of calling `big` (long prompt) vs a fine-tuned `small` (short prompt) over `months`.

    All money is in `currency`: the prices in both CallPricings, the one-off cost of the
    fine-tune (training runs plus dataset work) and the monthly hosting of the small model.
    """
    _check_non_negative({"calls_per_month": calls_per_month, "fine_tune_one_off": fine_tune_one_off,
                         "hosting_per_month": hosting_per_month})
    if isinstance(months, bool) or not isinstance(months, numbers.Integral) or months < 1:
        raise ValueError(f"months must be a whole number >= 1, got {months!r}")
    big_call, small_call = big.per_call(currency), small.per_call(currency)
    api_monthly = calls_per_month * big_call.amount
    finetuned_monthly = calls_per_month * small_call.amount + hosting_per_month
    savings = api_monthly - finetuned_monthly
    money = big_call.currency
    return Comparison(
        big=big, small=small, calls_per_month=calls_per_month, months=months, currency=money,
        big_per_call=big_call, small_per_call=small_call,
        hosting_per_month=Cost(hosting_per_month, money),
        fine_tune_one_off=Cost(fine_tune_one_off, money),
        api_monthly=Cost(api_monthly, money), finetuned_monthly=Cost(finetuned_monthly, money),
        api_total=Cost(api_monthly * months, money),
        finetuned_total=Cost(fine_tune_one_off + finetuned_monthly * months, money),
        monthly_savings=Cost(savings, money),
        break_even_month=_break_even_month(fine_tune_one_off, savings),
    )


def break_even_calls_per_month(big: CallPricing, small: CallPricing, fine_tune_one_off: float,
                               hosting_per_month: float, months: int = 12) -> int | None:
    """Fewest calls a month for the fine-tune to pay back within `months`; None if it never can."""
    _check_non_negative({"fine_tune_one_off": fine_tune_one_off,
                         "hosting_per_month": hosting_per_month})
    if isinstance(months, bool) or not isinstance(months, numbers.Integral) or months < 1:
        raise ValueError(f"months must be a whole number >= 1, got {months!r}")
    saving_per_call = big.per_call().amount - small.per_call().amount
    if saving_per_call <= 0:
        return None
    return _ceil((fine_tune_one_off / months + hosting_per_month) / saving_per_call)


@dataclass(frozen=True)
class ExamplePrices:
    """Illustrative prices for the examples: NOT current quotes. Look up today's prices."""

    note: str = ("Illustrative, not current quotes: look up today's GPU and API prices "
                 "and today's exchange rate before you decide anything.")
    gpu_hour_usd: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"T4 (16 GB)": 0.40, "A10 (24 GB)": 0.75, "A100 (80 GB)": 1.50, "H100 (80 GB)": 2.50}))
    usd_to_ngn: float = 1500.0  # an example rate: update it to today's
    big_api: CallPricing = CallPricing(  # instructions + few-shot examples + retrieved text
        "big API model (long prompt)", 2000, 150, 2.50, 10.00)
    small_finetuned: CallPricing = CallPricing(  # just the input; self-hosted, so no token price
        "fine-tuned small, self-hosted", 250, 150, 0.0, 0.0)
    hosting_per_month_usd: float = 50.0  # a small always-on server for the tuned model

    def __str__(self) -> str:
        """The note, then the example numbers."""
        gpus = [f"  {gpu}: USD {price:.2f}" for gpu, price in self.gpu_hour_usd.items()]
        return "\n".join([_wrap(self.note, indent=""), "One rented GPU hour:", *gpus,
                          f"Exchange rate example: 1 USD = {self.usd_to_ngn:,.0f} NGN (update it).",
                          f"Hosting a small model: USD {self.hosting_per_month_usd:,.2f} a month."])


EXAMPLE_PRICES = ExamplePrices()


def _converted_line(comparison: Comparison, currency: str, rate: float) -> str:
    """The headline numbers of a comparison in a second currency, at the learner's rate."""
    code = _currency_code(currency)

    def to(cost: Cost) -> str:
        return str(cost.to(code, rate))

    return _wrap(f"In {code} at 1 {comparison.currency} = {rate:,g} {code} (an example rate: use "
                 f"today's): one-off {to(comparison.fine_tune_one_off)}; per month, "
                 f"{to(comparison.api_monthly)} for the big API model vs "
                 f"{to(comparison.finetuned_monthly)} fine-tuned; savings "
                 f"{to(comparison.monthly_savings)} a month.", indent="")


def _cost_report(calls_per_month: float, big: CallPricing, small: CallPricing, gpu_hours: float,
                 price_per_gpu_hour: float, runs: int, dataset_cost: float,
                 hosting_per_month: float, currency: str, months: int, show_in: str,
                 rate: float) -> tuple[Comparison, str]:
    """The calculator's Comparison and its plain-text report, shared by widget and headless runs."""
    training = training_cost(gpu_hours, price_per_gpu_hour, currency, runs)
    _check_non_negative({"dataset_cost": dataset_cost})
    one_off = training.amount + dataset_cost
    comparison = compare_api_vs_finetuned(calls_per_month, big, small, one_off, hosting_per_month,
                                          currency, months)
    lines = [_wrap(f"Training: {gpu_hours:g} GPU-hours x {Cost(price_per_gpu_hour, currency)} "
                   f"an hour x {runs} run(s) = {training}; plus dataset work "
                   f"{Cost(dataset_cost, currency)}: one-off {comparison.fine_tune_one_off}.",
                   indent=""), "", str(comparison)]
    if show_in.strip() and show_in.strip().upper() != comparison.currency:
        lines += ["", _converted_line(comparison, show_in, rate)]
    return comparison, "\n".join(lines)


_PRICING_FIELDS = ("input_tokens", "output_tokens", "price_in_per_million", "price_out_per_million")
_LABELS = {
    "calls_per_month": "calls per month", "months": "months", "currency": "currency code",
    "input_tokens": "input tokens per call", "output_tokens": "output tokens per call",
    "price_in_per_million": "price per 1M input tokens",
    "price_out_per_million": "price per 1M output tokens", "gpu_hours": "GPU-hours per run",
    "price_per_gpu_hour": "price per GPU-hour", "runs": "training runs",
    "dataset_cost": "dataset work (one-off)", "hosting_per_month": "hosting per month",
    "show_in": "also show in (code)", "rate": "units of it per 1 of ours",
}
_COST_GROUPS = (
    ("Volume", ("calls_per_month", "months", "currency")),
    ("big", tuple(f"big.{name}" for name in _PRICING_FIELDS)),
    ("small", (*(f"small.{name}" for name in _PRICING_FIELDS), "hosting_per_month")),
    ("One-off fine-tune", ("gpu_hours", "price_per_gpu_hour", "runs", "dataset_cost")),
    ("Another currency", ("show_in", "rate")),
)


def _cost_input(name: str, value: Any) -> Any:
    """One core input widget for a calculator value: Dropdown, Text, IntText or FloatText."""
    import ipywidgets as widgets

    options = dict(description=_LABELS[name.split(".")[-1]], style={"description_width": "initial"})
    if name == "months":
        return widgets.Dropdown(options=sorted({3, 6, 12, 24, 36, value}), value=value, **options)
    if isinstance(value, str):
        return widgets.Text(value=value, **options)
    if isinstance(value, numbers.Integral):
        return widgets.IntText(value=value, **options)
    return widgets.FloatText(value=value, **options)


def _read_cost_inputs(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the widgets' current values back into keyword arguments for `_cost_report`."""
    values = {name: box.value for name, box in inputs.items() if "." not in name}
    for route in ("big", "small"):
        prices = {name: inputs[f"{route}.{name}"].value for name in _PRICING_FIELDS}
        values[route] = CallPricing(params[route].name, **prices)
    return values


def _cost_panel(params: Mapping[str, Any]) -> tuple[Any, dict[str, Any], Any]:
    """Build the calculator: one input per number and an Output re-rendered on every change."""
    import ipywidgets as widgets

    flat = {name: value for name, value in params.items() if name not in ("big", "small")}
    for route in ("big", "small"):
        flat.update({f"{route}.{name}": getattr(params[route], name) for name in _PRICING_FIELDS})
    inputs = {name: _cost_input(name, value) for name, value in flat.items()}
    output = widgets.Output()

    def render(_change: Any = None) -> None:
        try:
            text = _cost_report(**_read_cost_inputs(inputs, params))[1]
        except (ValueError, TypeError) as error:
            text = f"Check the inputs: {error}"
        _show_text(output, text)

    for box in inputs.values():
        box.observe(render, names="value")
    render()
    rows: list[Any] = [widgets.HTML(f"<i>{html.escape(EXAMPLE_PRICES.note)}</i>")]
    for title, names in _COST_GROUPS:
        heading = params[title].name if title in ("big", "small") else title
        rows += [widgets.HTML(f"<b>{html.escape(heading)}</b>"), *(inputs[n] for n in names)]
    return widgets.VBox([*rows, output]), inputs, output


def cost_widget(calls_per_month: float = 20_000, big: CallPricing = EXAMPLE_PRICES.big_api,
                small: CallPricing = EXAMPLE_PRICES.small_finetuned, gpu_hours: float = 2.0,
                price_per_gpu_hour: float = EXAMPLE_PRICES.gpu_hour_usd["A10 (24 GB)"],
                runs: int = 3, dataset_cost: float = 0.0,
                hosting_per_month: float = EXAMPLE_PRICES.hosting_per_month_usd,
                currency: str = "USD", months: int = 12, show_in: str = "NGN",
                rate: float = EXAMPLE_PRICES.usd_to_ngn) -> Comparison:
    """The cost calculator: inputs in a notebook, plain text when headless. Returns the Comparison.

    All money is in `currency` (defaults: EXAMPLE_PRICES, illustrative USD figures). `show_in`
    and `rate` (1 `currency` = `rate` units of `show_in`) add a line in a second currency.
    """
    params = dict(calls_per_month=calls_per_month, big=big, small=small, gpu_hours=gpu_hours,
                  price_per_gpu_hour=price_per_gpu_hour, runs=runs, dataset_cost=dataset_cost,
                  hosting_per_month=hosting_per_month, currency=currency, months=months,
                  show_in=show_in, rate=rate)
    comparison, text = _cost_report(**params)
    _show(text, lambda: _cost_panel(params)[0])
    return comparison
