"""course_utils.runs: a run is trained once per key, reloaded after that, retrained when the
key changes, and a damaged or half-written entry is never used."""

import copy
import json

import pytest
import torch

from course_utils import runs, train


def rows(n: int = 6, start: int = 0) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"ticket {i}"},
                          {"role": "assistant", "content": '{"category": "billing"}'}]}
            for i in range(start, start + n)]


SETTINGS = dict(lora=train.LoraSettings(r=4, alpha=8), profile="smoke", max_steps=2,
                batch_size=2, max_new_tokens=4)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    return tmp_path


def cached_run(tiny_model, **changes):
    model, tokenizer = tiny_model
    settings = {**SETTINGS, **changes}
    return runs.sft("tickets/lora", model, tokenizer, rows(), rows(2, 10),
                    heldout={"test": rows(3, 20)}, show=False, **settings)


def test_a_run_is_trained_once_then_loaded(tiny_model, cache):
    first = cached_run(tiny_model)
    assert not first.cached and first.directory.parent.name == "tickets--lora"
    assert first.directory.parent.parent == cache / "runs" / "smoke"
    second = cached_run(tiny_model)
    assert second.cached and second.digest == first.digest
    assert second.predictions == first.predictions and len(second.predictions["test"]) == 3
    assert second.history == first.history and second.train_seconds == first.train_seconds
    batch = torch.tensor([tiny_model[1]("ticket 20").input_ids])
    with torch.no_grad():
        assert torch.allclose(second.model(batch).logits, first.model(batch).logits, atol=1e-5)
    assert "loaded from the cache" in str(second) and "test (3)" in str(second)
    assert not [p for p in first.directory.parent.iterdir() if p.name.startswith(".")]


def test_a_changed_key_trains_again(tiny_model, cache):
    first = cached_run(tiny_model)
    other_rate = cached_run(tiny_model, learning_rate=5e-4)
    assert not other_rate.cached and other_rate.digest != first.digest
    model, tokenizer = tiny_model
    other_data = runs.sft("tickets/lora", model, tokenizer, rows(5), rows(2, 10),
                          heldout={"test": rows(3, 20)}, show=False, **SETTINGS)
    assert not other_data.cached and other_data.digest not in (first.digest, other_rate.digest)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).add_(0.01)
    assert runs.weights_fingerprint(changed) != runs.weights_fingerprint(model)


def test_a_damaged_entry_is_reported_and_retrained(tiny_model, cache, capsys):
    first = cached_run(tiny_model)
    predictions = first.directory / "predictions.json"
    predictions.write_text(json.dumps({"test": ["forged", "answers", "here"]}))
    model, tokenizer = tiny_model
    again = runs.sft("tickets/lora", model, tokenizer, rows(), rows(2, 10),
                     heldout={"test": rows(3, 20)}, show=True, **SETTINGS)
    out = capsys.readouterr().out
    assert "predictions.json has changed since it was written" in out
    assert "training it now, at most 2 steps, about" in out
    assert not again.cached and again.predictions == first.predictions


def test_an_entry_without_its_manifest_is_never_used(tiny_model, cache):
    first = cached_run(tiny_model)
    (first.directory / runs.MANIFEST).unlink()
    key_problem = runs.check_entry(first.directory, {"any": "key"})
    assert "never finished" in key_problem
    assert not cached_run(tiny_model).cached


def test_a_cached_run_refuses_settings_that_would_break_it(tiny_model, cache):
    with pytest.raises(ValueError, match="does not take inplace"):
        cached_run(tiny_model, inplace=True)
    with pytest.raises(TypeError, match="cannot be part of a run's key"):
        cached_run(tiny_model, eval_every=object())


def test_the_estimate_uses_this_machines_last_run(tiny_model, cache):
    model, tokenizer = tiny_model
    settings = train.sft_settings(model, rows(), profile="smoke", max_steps=10, batch_size=2)
    _, before = runs.estimate_seconds(tokenizer, rows(), settings, "smoke")
    assert "assumed" in before
    cached_run(tiny_model)
    seconds, after = runs.estimate_seconds(tokenizer, rows(), settings, "smoke")
    assert "this machine's last run" in after and seconds > 0
