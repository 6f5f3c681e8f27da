"""course_utils.runs: a run is trained once per key, reloaded after that, retrained when the
key changes, and a damaged or half-written entry is never used."""

import copy
import json

import pytest
import torch

from course_utils import data, evals, models, runs, train


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


# ---------------------------------------------------------------------------- the course's runs

def test_the_course_runs_stop_on_validation_except_in_smoke():
    names = list(runs.COURSE_RUNS)
    assert [n for n in names if n.startswith("tickets/lora-seed")] == [
        "tickets/lora-seed0", "tickets/lora-seed1", "tickets/lora-seed2"]
    seeds = {runs.COURSE_RUNS[n].settings["seed"] for n in names if "seed" in n}
    assert seeds == {0, 1, 2}
    for name, recipe in runs.COURSE_RUNS.items():
        if "/sweep-" in name or "/data-" in name:
            continue  # chapter 03's short sweeps and 01's data runs: checked below
        cpu = recipe.settings_for("cpu")
        assert cpu["max_epochs"] > 1 and cpu["patience"] >= 1 and "max_steps" not in cpu, name
        smoke = recipe.settings_for("smoke")
        assert smoke["max_steps"] == 4 and "max_epochs" not in smoke and "patience" not in smoke
    seeded = [runs.COURSE_RUNS[n] for n in names if "seed" in n]
    assert all(r.lora == seeded[0].lora for r in seeded)  # the seeds differ in the seed only
    assert all({**r.settings, "seed": 0} == {**seeded[0].settings, "seed": 0} for r in seeded)


def test_chapter_03s_sweeps_change_one_setting_at_a_time_and_never_see_test():
    sweeps = {n: r for n, r in runs.COURSE_RUNS.items() if "/sweep-" in n}
    ticket_lora = runs.COURSE_RUNS["tickets/lora-seed0"].lora
    assert len(sweeps) == 8 and runs.sweep_name() in sweeps  # 4 ranks, 3 rates, 3 alphas
    for name, recipe in sweeps.items():
        assert "test" not in recipe.heldout, name  # they choose settings: validation only
        assert recipe.lora.rslora and recipe.lora.dropout == ticket_lora.dropout
        assert recipe.settings_for("cpu")["max_steps"] == 40
        assert recipe.settings_for("smoke")["max_steps"] == 4
    centre = sweeps[runs.sweep_name()].lora
    assert centre.scale == ticket_lora.scale  # alpha 8 with rsLoRA at r=16: the ticket LoRA's 2
    ranks = [n for n, r in sweeps.items() if r.heldout == ("val",)]
    assert sorted(sweeps[n].lora.r for n in ranks) == list(runs.SWEEP_RANKS)
    # rsLoRA: the scale falls as 1/sqrt(r), so a first step moves W the same at every rank
    assert {round(sweeps[n].lora.scale * sweeps[n].lora.r ** 0.5, 6) for n in ranks} == {8.0}


def test_chapter_01s_data_runs_differ_in_their_rows_only():
    recipes = {n: r for n, r in runs.COURSE_RUNS.items() if "/data-" in n}
    assert sorted(recipes) == ["tickets/data-100", "tickets/data-25", "tickets/data-400",
                               "tickets/data-400-noisy"]
    assert len({(r.lora, tuple(r.settings.items())) for r in recipes.values()}) == 1
    train_split = data.load_split("tickets", "train")
    rows = {n: r.train_rows(train_split) for n, r in recipes.items()}
    assert [len(rows[f"tickets/data-{n}"]) for n in runs.DATA_SIZES] == [25, 100, 400]
    assert rows["tickets/data-400"][:25] == rows["tickets/data-25"]  # nested: sizes add rows
    clean, noisy = rows["tickets/data-400"], rows["tickets/data-400-noisy"]
    assert [r["messages"][:-1] for r in clean] == [r["messages"][:-1] for r in noisy]
    changed = [(json.loads(a["messages"][-1]["content"]), json.loads(b["messages"][-1]["content"]))
               for a, b in zip(clean, noisy) if a != b]
    assert len(changed) == 160  # 40 % of 400
    for before, after in changed:  # a wrong category and priority; nothing else touched
        assert after["category"] != before["category"] and after["priority"] != before["priority"]
        assert {k: v for k, v in after.items() if k not in ("category", "priority")} == {
            k: v for k, v in before.items() if k not in ("category", "priority")}
    assert "test" not in recipes["tickets/data-400-noisy"].heldout


def test_a_course_run_loads_its_splits_and_scores_n_eval_rows(tiny_model, cache, monkeypatch):
    calls = {}

    def fake_sft(name, model, tokenizer, train_rows, val_rows, heldout, **kwargs):
        calls.update(name=name, train=len(train_rows), val=len(val_rows),
                     heldout={k: len(v) for k, v in heldout.items()}, kwargs=kwargs)
        return "run"

    monkeypatch.setattr(runs, "sft", fake_sft)
    model, tokenizer = tiny_model
    assert runs.course_run("tickets/full", model, tokenizer, profile="smoke", show=False) == "run"
    assert calls["train"] == len(data.load_split("tickets", "train"))
    assert calls["val"] == 8  # validation too is cut to n_eval in smoke
    assert calls["heldout"] == {"val": 8, "test": 8}  # the smoke profile's n_eval
    assert calls["kwargs"]["lora"] is None and calls["kwargs"]["max_steps"] == 4
    with pytest.raises(KeyError, match="tickets/lora-seed0"):
        runs.course_run("tickets/lora", model, tokenizer, profile="smoke")


def test_course_runs_list_and_unknown_names(capsys):
    from course_utils import cli
    assert cli.main(["runs", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in [*runs.COURSE_RUNS, runs.LADDER, runs.VOICE, runs.STUDENT])
    assert cli.main(["runs", "tickets/nope"]) == 2
    assert "no run 'tickets/nope'" in capsys.readouterr().err


def test_generated_answers_are_cached_by_prompt_and_model(tiny_model, cache, capsys):
    model, tokenizer = tiny_model
    chats = [[{"role": "user", "content": f"ticket {i}"}] for i in range(3)]
    settings = dict(max_new_tokens=3, batch_size=2, profile="smoke")
    first = runs.generate("tickets/zero-shot/test", model, tokenizer, chats, **settings)
    assert len(first) == 3 and "loaded from the cache" not in capsys.readouterr().out
    assert runs.generate("tickets/zero-shot/test", model, tokenizer, chats, **settings) == first
    assert "3 answers of tickets/zero-shot/test" in capsys.readouterr().out
    other = chats[:2] + [[{"role": "user", "content": "another ticket"}]]
    runs.generate("tickets/zero-shot/test", model, tokenizer, other, **settings)
    assert "loaded from the cache" not in capsys.readouterr().out  # a new prompt: generated
    entries = list((cache / "runs" / "smoke" / "tickets--zero-shot--test").iterdir())
    assert len(entries) == 2
    for entry in entries:  # damaged: reported, generated again
        (entry / "answers.json").write_text("[]")
    assert runs.generate("tickets/zero-shot/test", model, tokenizer, chats, **settings) == first
    assert "the entry is unusable" in capsys.readouterr().out
    assert runs.generate("tickets/zero-shot/test", model, tokenizer, chats, **settings) == first
    assert "loaded from the cache" in capsys.readouterr().out


def test_an_exported_run_carries_its_heldout_scores_into_the_registry(tiny_model, cache, tmp_path):
    from course_utils import evals, serve
    run = cached_run(tiny_model)
    score = evals.rate([True, False, True])
    folder = run.export(tmp_path / "export", heldout={"exact match": score})
    assert train.read_metadata(folder)["heldout"]["exact match"]["hits"] == 2
    assert runs.check_entry(run.directory, json.loads((run.directory / "manifest.json").read_text())["key"]) is None
    registry = serve.Registry(tmp_path / "registry")
    assert registry.register(folder, "tickets") == 1
    assert registry.versions("tickets")[0]["heldout"]["exact match"]["n"] == 3


def test_the_ladder_chooses_k_and_the_best_rung_on_validation(tiny_model, monkeypatch):
    from course_utils import evals
    asked = []

    def fake_generate(name, model, tokenizer, chats, **settings):
        """Right answers for k=3 and k=5 on validation and for "constrained" everywhere; the
        rest answer nonsense. The retrieved prompts' references are the rows' own."""
        asked.append(name)
        rung, split = name.split("/")[1], name.split("/")[2]
        rows = data.take(data.load_split("tickets", split), 8)
        right = rung in ("retrieved-k3", "retrieved-k5", "constrained")
        return [evals.reference(r) if right else "no" for r in rows][: len(chats)]

    monkeypatch.setattr(runs, "generate", fake_generate)
    model, tokenizer = tiny_model
    ladder = runs.ticket_ladder(model, tokenizer, profile="smoke", show=False)
    assert ladder.best_k == 3  # a tie between 3 and 5 goes to the shorter prompt
    assert ladder.best == "retrieved"  # tied with "constrained" on validation: the cheaper rung
    assert list(ladder.answers) == ["nearest-ticket", "zero-shot", "few-shot", "retrieved",
                                    "constrained"]
    assert all(set(a) == {"val", "test"} for a in ladder.answers.values())
    assert sorted(asked) == sorted(
        [f"tickets/retrieved-k{k}/val" for k in runs.RETRIEVED_K] +
        [f"tickets/{rung}/{split}" for rung in ("zero-shot", "few-shot", "constrained")
         for split in ("val", "test")] + ["tickets/retrieved/test"])
    assert sum(ladder.scores("test")["constrained"].exact) == 8


def test_the_measured_speed_comes_from_the_newest_trained_entry(tmp_path, monkeypatch):
    """Answer-only entries (a prompt's answers) train nothing: the estimate skips them."""
    import os
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    trained = tmp_path / "runs" / "cpu" / "a-run" / "0123" / "model"
    trained.mkdir(parents=True)
    (trained / "course_adapter.json").write_text(json.dumps({"train": {"tokens_per_second": 187.5}}))
    (trained.parent / "manifest.json").write_text("{}")
    answers = tmp_path / "runs" / "cpu" / "answers" / "4567"
    answers.mkdir(parents=True)
    (answers / "manifest.json").write_text("{}")
    os.utime(trained.parent / "manifest.json", (1, 1))  # older than the answers' entry
    assert runs.measured_tokens_per_second("cpu") == 187.5
    assert runs.measured_tokens_per_second("smoke") is None


DISTILL = dict(profile="smoke", max_steps=2, batch_size=2, max_new_tokens=4, temperature=2.0,
               hard_weight=0.5)


def distilled(teacher, tokenizer, **changes):
    return runs.distill("tickets/student", models.fewer_layers(teacher, 1), tokenizer, rows(),
                        teacher, rows(2, 10), {"test": rows(3, 20)}, show=False,
                        **{**DISTILL, **changes})


def test_a_distilled_student_is_trained_once_then_loaded(tiny_model, cache):
    teacher, tokenizer = tiny_model
    first = distilled(teacher, tokenizer)
    second = distilled(teacher, tokenizer)
    assert not first.cached and second.cached and second.digest == first.digest
    assert second.predictions == first.predictions and len(second.predictions["test"]) == 3
    assert second.model.config.num_hidden_layers == 1  # the student, not its teacher
    assert second.metadata["settings"]["method"] == "distill"
    assert second.metadata["settings"]["temperature"] == 2.0
    batch = torch.tensor([tokenizer("ticket 20").input_ids])
    with torch.no_grad():
        assert torch.allclose(second.model(batch).logits, first.model(batch).logits, atol=1e-5)


def test_a_distilled_student_is_keyed_by_its_teacher_and_its_loss(tiny_model, cache):
    teacher, tokenizer = tiny_model
    first = distilled(teacher, tokenizer)
    assert not distilled(teacher, tokenizer, hard_weight=1.0).cached
    other = copy.deepcopy(teacher)
    with torch.no_grad():  # the same student start (layer 0 kept), another teacher
        other.model.layers[1].mlp.down_proj.weight.add_(0.1)
    retaught = runs.distill("tickets/student", models.fewer_layers(teacher, 1), tokenizer, rows(),
                            other, rows(2, 10), {"test": rows(3, 20)}, show=False, **DISTILL)
    assert not retaught.cached and retaught.digest != first.digest
    with pytest.raises(ValueError, match="does not take inplace"):
        distilled(teacher, tokenizer, inplace=True)


def test_the_student_cuts_keep_the_first_and_last_layer_and_drop_one_block_or_every_third():
    cuts = runs.student_cuts(30, 20)
    assert list(cuts) == ["evenly spaced", "drop 1-10", "drop 6-15", "drop 10-19", "drop 14-23",
                          "drop 19-28"]
    assert all(len(keep) == 20 and keep[0] == 0 and keep[-1] == 29 for keep in cuts.values())
    assert cuts["drop 6-15"] == [*range(6), *range(16, 30)]
    assert cuts["evenly spaced"] == sorted({round(i * 29 / 19) for i in range(20)})
    with pytest.raises(ValueError, match="keep 2 to 29 layers"):
        runs.student_cuts(30, 30)


def test_the_cuts_drift_is_measured_once_and_the_least_drifting_cut_is_chosen(five_layer_model, cache,
                                                                           capsys):
    teacher, tokenizer = five_layer_model
    first = runs.cut_drift(teacher, tokenizer, rows(3), "smoke", n_student=3)
    assert set(first) == set(runs.student_cuts(5, 3)) and all(v > 0 for v in first.values())
    assert "loaded from the cache" not in capsys.readouterr().out
    assert runs.cut_drift(teacher, tokenizer, rows(3), "smoke", n_student=3) == first
    assert "loaded from the cache" in capsys.readouterr().out
    least = min(first, key=first.get)
    assert runs.best_cut(first, 5, 3) == runs.student_cuts(5, 3)[least]
    assert runs.best_cut({"evenly spaced": 1.0, "drop 1-2": 0.5}, 5, 3) == [0, 3, 4]


def test_the_teachers_labels_become_rows_and_unparsable_ones_are_named():
    pool = [{"id": f"u{i}", "messages": [{"role": "system", "content": "Triage."},
                                          {"role": "user", "content": f"ticket {i}"}]}
            for i in range(3)]
    kept, dropped = runs.labelled_rows(pool, ['{"category": "billing"}', "not json",
                                              '{"category": "account"}'])
    assert [r["id"] for r in kept] == ["u0", "u2"] and dropped == ["u1"]
    assert kept[1]["messages"][-1] == {"role": "assistant", "content": '{"category": "account"}'}
    assert kept[1]["messages"][:2] == pool[2]["messages"]
    with pytest.raises(ValueError):  # a label per row, or it is refused
        runs.labelled_rows(pool, ["{}"])


# ---------------------------------------------------------------------------- chapter 04's DPO

def voice_pairs(n: int = 4, start: int = 0) -> list[dict]:
    return [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"question {i}"}],
             "chosen": [{"role": "assistant", "content": "Hi there,\n\nThanks. Done today.\n\n— Brightbrew Support"}],
             "rejected": [{"role": "assistant", "content": "no"}]} for i in range(start, start + n)]


DPO = dict(lora=train.LoraSettings(r=4, alpha=8), profile="smoke", max_steps=2, batch_size=2,
           max_new_tokens=4, beta=0.1, learning_rate=1e-2)


def test_a_dpo_run_is_trained_once_then_loaded_on_the_merged_sft_model(tiny_model, cache):
    model, tokenizer = tiny_model
    sft = train.sft(model, tokenizer, rows(), lora=train.LoraSettings(r=4, alpha=8),
                    profile="smoke", max_steps=2, batch_size=2, learning_rate=1e-2, show=False)
    first = runs.dpo("voice/dpo-test", sft.model, tokenizer, voice_pairs(), voice_pairs(2, 10),
                     {"val": rows(3, 20)}, show=False, **DPO)
    second = runs.dpo("voice/dpo-test", sft.model, tokenizer, voice_pairs(), voice_pairs(2, 10),
                      {"val": rows(3, 20)}, show=False, **DPO)
    assert not first.cached and second.cached and second.digest == first.digest
    assert second.predictions == first.predictions and len(second.predictions["val"]) == 3
    assert second.metadata["settings"]["method"] == "dpo" and second.metadata["settings"]["beta"] == 0.1
    assert second.losses("margin")[1][0] == pytest.approx(0.0, abs=1e-6)  # starts at its reference
    assert second.losses("reward_chosen")[0] == second.losses("margin")[0]
    drift = train.kl_from_reference(second.model, tokenizer, rows(3, 20))
    assert drift == pytest.approx(train.kl_from_reference(first.model, tokenizer, rows(3, 20)), abs=1e-5)
    with second.model.disable_adapter():  # the reference is the SFT model, merged
        batch = torch.tensor([tokenizer("ticket 20").input_ids])
        with torch.no_grad():
            assert torch.allclose(second.model(batch).logits, sft.model(batch).logits, atol=1e-4)
    assert not runs.dpo("voice/dpo-test", sft.model, tokenizer, voice_pairs(), voice_pairs(2, 10),
                        {"val": rows(3, 20)}, show=False, **{**DPO, "beta": 0.5}).cached
    with pytest.raises(ValueError, match="does not take inplace"):
        runs.dpo("voice/dpo-test", sft.model, tokenizer, voice_pairs(), show=False, inplace=True, **DPO)


def voice_row(i: int, reply: str = "Hi Maria,\n\nThanks for your message. The refund reaches "
              "you within 2 working days.\n\n— Brightbrew Support") -> dict:
    return {"id": f"v{i}", "sentiment": "neutral",
            "messages": [{"role": "system", "content": "You are Brightbrew Support."},
                         {"role": "user", "content": f"Where is my refund?\n\nMaria {i}"},
                         {"role": "assistant", "content": reply}]}


def test_own_mistake_pairs_look_only_at_the_selection_rules():
    rows_ = [voice_row(i) for i in range(3)]
    house = rows_[0]["messages"][-1]["content"]
    answers = [house,  # keeps everything: no pair
               house.replace("days.", "days!"),  # breaks a held-out rule only: no pair
               house.replace("Hi Maria,", "Dear customer,")]  # breaks the greeting: a pair
    assert "no exclamation mark" in evals.VOICE_HELD_OUT_RULES and "greeting" in evals.VOICE_SELECTION_RULES
    pairs = runs.own_mistake_pairs(rows_, answers)
    assert [p["id"] for p in pairs] == ["v2"]
    assert pairs[0]["chosen"] == rows_[2]["messages"][-1:] and pairs[0]["prompt"] == rows_[2]["messages"][:2]
    assert pairs[0]["rejected"][0]["content"].startswith("Dear customer,")
    every_rule = runs.own_mistake_pairs(rows_, answers, rules=tuple(evals.voice_rules(house)))
    assert [p["id"] for p in every_rule] == ["v1", "v2"]


def test_the_rules_split_in_two_halves_each_rule_once():
    assert not set(evals.VOICE_HELD_OUT_RULES) & set(evals.VOICE_SELECTION_RULES)
    assert set(evals.VOICE_HELD_OUT_RULES) | set(evals.VOICE_SELECTION_RULES) == set(
        evals.voice_rules("Hi there,"))


def test_the_voice_sweep_has_a_lower_rate_control_and_never_sees_test():
    rates = [rate for _, rate in runs.VOICE_DPO_GRID]
    assert rates[-1] * 10 <= min(rates[:-1])  # the control: a tenth of the lowest rate at most
    assert len({beta for beta, _ in runs.VOICE_DPO_GRID}) >= 2  # beta is chosen, not copied
    assert runs.dpo_steps("smoke") == 2 and runs.dpo_steps("cpu") == 20
    assert runs.voice_dpo_name(0.1, 5e-4) == "voice/dpo-own-b0.1-lr0.0005"
