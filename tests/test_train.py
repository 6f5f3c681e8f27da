"""course_utils.train: LoRA and full SFT runs on a tiny model, measured and recorded."""

import copy

import pytest
import torch

from course_utils import data, env, models, train


def rows(n: int = 6) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"ticket {i}"},
                          {"role": "assistant", "content": '{"category": "billing"}'}]}
            for i in range(n)]


def test_lora_run_records_losses_throughput_and_memory(tiny_model):
    model, tokenizer = tiny_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train.sft(model, tokenizer, rows(), rows(2), lora=train.LoraSettings(r=4, alpha=8),
                       profile="smoke", max_steps=3, batch_size=2, eval_every=3, show=False)
    steps, losses = result.losses("train_loss")
    assert steps == [1, 2, 3] and all(loss > 0 for loss in losses)
    assert result.losses("val_loss")[0] == [3]
    assert result.train_tokens > 0 and result.tokens_per_second > 0 and result.peak_memory_mb > 0
    assert result.settings["lora"]["r"] == 4 and result.settings["learning_rate"] == 1e-3
    assert type(result.model).__name__.startswith("Peft")
    trainable = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # the caller's model is untouched: a copy was trained
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "3 steps" in str(result)


def answer_rows(answer: str, n: int, start: int = 0) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"ticket {i}"},
                          {"role": "assistant", "content": answer}]} for i in range(start, start + n)]


def test_early_stopping_keeps_the_best_validation_model(tiny_model):
    model, tokenizer = tiny_model
    # training teaches one answer, validation wants another: validation loss first falls (the
    # chat format is shared), then turns up (about step 20 here) as the answer is learned
    train_rows = answer_rows("alpha alpha alpha", 8)
    val_rows = answer_rows("zebra quokka walrus", 4, 100)
    result = train.sft(model, tokenizer, train_rows, val_rows, lora=None, profile="smoke",
                       max_epochs=40, batch_size=4, learning_rate=1e-2, patience=2,
                       eval_every=1, show=False)
    steps, val_losses = result.losses("val_loss")
    assert result.settings["max_steps"] == 80 and result.steps < 80  # stopped early
    best = steps[val_losses.index(min(val_losses))]
    assert result.best_step == best and steps[-1] == best + 2  # two evaluations, no new best
    again = train.sft(result.model, tokenizer, train_rows, val_rows, lora=None, profile="smoke",
                      max_steps=1, learning_rate=1e-12, eval_every=1, batch_size=4, show=False)
    assert again.losses("val_loss")[1][0] == pytest.approx(min(val_losses), rel=1e-3)  # best kept
    assert f"kept the model of step {best}" in str(result)


def test_early_stopping_settings_are_checked(tiny_model):
    model, tokenizer = tiny_model
    with pytest.raises(ValueError, match="pass val_rows too"):
        train.sft(model, tokenizer, rows(), patience=2, show=False)
    with pytest.raises(ValueError, match="give one positive limit"):
        train.sft(model, tokenizer, rows(), rows(2), max_epochs=2, max_steps=3, show=False)
    with pytest.raises(ValueError, match="at least 1"):
        train.sft(model, tokenizer, rows(), rows(2), patience=0, show=False)
    settings = train.sft_settings(model, rows(10), profile="smoke", batch_size=2, max_epochs=3,
                                  patience=2)
    assert settings["max_steps"] == 15 and settings["eval_every"] == 2  # twice an epoch


def test_rows_alone_give_a_converged_run_outside_smoke(tiny_model, capsys):
    """Given only rows, sft trains the profile's max_epochs (3 in cpu and gpu), stopping early
    on validation loss when there are validation rows; smoke keeps its few max_steps; any
    limit the caller gives wins."""
    model, _ = tiny_model
    for name in ("cpu", "gpu"):
        alone = train.sft_settings(model, rows(64), profile=name)
        batch = env.PROFILES[name].batch_size
        assert alone["max_epochs"] == 3 and alone["patience"] is None
        assert alone["max_steps"] == 3 * -(-64 // batch)
        with_val = train.sft_settings(model, rows(64), profile=name, validation=True)
        assert with_val["patience"] == train.DEFAULT_PATIENCE
        assert with_val["eval_every"] == max(1, -(-64 // batch) // 2)  # twice an epoch
    smoke = train.sft_settings(model, rows(64), profile="smoke", validation=True)
    assert smoke["max_steps"] == env.PROFILES["smoke"].max_steps and smoke["patience"] is None
    chosen = train.sft_settings(model, rows(64), profile="cpu", max_steps=5, validation=True)
    assert chosen["max_steps"] == 5 and chosen["patience"] is None and chosen["max_epochs"] is None
    # the default is said out loud when it applies (here in a quick run: batch 16, 1 epoch)
    tiny = env.PROFILES["cpu"].scaled(max_epochs=1, batch_size=16)
    result = train.sft(model, tiny_model[1], rows(16), rows(4), lora=None, profile=tiny)
    assert result.settings["patience"] == train.DEFAULT_PATIENCE and result.steps == 1
    assert "stopping when the validation loss has not improved" in capsys.readouterr().out


def test_training_leaves_no_temporary_folders(tiny_model, tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's own temp dir
    model, tokenizer = tiny_model
    lora = train.LoraSettings(r=4, alpha=8)
    train.sft(model, tokenizer, rows(), rows(2), lora=lora, profile="smoke", max_steps=2,
              batch_size=2, patience=1, eval_every=1, show=False)  # checkpoints included
    result = train.sft(model, tokenizer, rows(), lora=lora, profile="smoke", max_steps=1,
                       batch_size=2, show=False)
    pairs = [{"prompt": [{"role": "user", "content": f"q{i}"}],
              "chosen": [{"role": "assistant", "content": "yes"}],
              "rejected": [{"role": "assistant", "content": "no"}]} for i in range(4)]
    train.dpo(result.model, tokenizer, pairs, lora=lora, profile="smoke", max_steps=1,
              batch_size=2, show=False)
    train.distill(model, tokenizer, rows(), model, profile="smoke", max_steps=1, batch_size=2,
                  show=False)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_loss_falls_when_repeating_one_answer(tiny_model):
    model, tokenizer = tiny_model
    result = train.sft(model, tokenizer, rows(4), lora=None, profile="smoke", max_steps=20,
                       batch_size=4, learning_rate=1e-2, show=False)
    losses = result.losses("train_loss")[1]
    assert losses[-1] < losses[0] * 0.7, losses
    assert result.settings["lora"] is None


def test_training_sees_only_assistant_tokens(tiny_model):
    _, tokenizer = tiny_model
    dataset = train._dataset(rows(1), tokenizer, max_length=64)
    rendered = data.render(rows(1)[0], tokenizer)
    labels = dataset["labels"][0]
    assert labels == rendered.labels and labels.count(-100) < len(labels)
    taught = tokenizer.decode([t for t in labels if t != -100])
    assert taught == '{"category": "billing"}<|im_end|>'


def test_empty_training_set_is_refused(tiny_model):
    with pytest.raises(ValueError, match="at least one training row"):
        train.sft(*tiny_model, [], profile="smoke", show=False)


def test_assistant_token_loss_matches_the_models_own_loss(tiny_model):
    """The trainer's loss projects only the loss-carrying positions; the value must not change."""
    model, tokenizer = tiny_model
    rendered = [data.render(row, tokenizer) for row in rows(3)]
    width = max(len(r.input_ids) for r in rendered)
    pad = lambda values, fill: [v + [fill] * (width - len(v)) for v in values]  # noqa: E731
    batch = {"input_ids": torch.tensor(pad([r.input_ids for r in rendered], 0)),
             "attention_mask": torch.tensor(pad([[1] * len(r.input_ids) for r in rendered], 0)),
             "labels": torch.tensor(pad([r.labels for r in rendered], -100))}
    ours = train._assistant_token_loss(model, batch)
    theirs = model(**batch).loss
    assert torch.allclose(ours, theirs, atol=1e-5), (ours, theirs)


def test_padding_free_batches_train_like_padded_ones(tiny_model):
    model, tokenizer = tiny_model
    runs = [train.sft(model, tokenizer, rows(4), lora=train.LoraSettings(r=4, alpha=8),
                      profile="smoke", max_steps=2, batch_size=4, padding_free=packed, show=False)
            for packed in (True, False)]
    packed, padded = (run.losses()[1] for run in runs)
    assert packed == pytest.approx(padded, rel=1e-4)


class StopAt:
    """A callback that interrupts training after a given step, like a kernel interrupt would."""

    def __new__(cls, step: int):
        from transformers import TrainerCallback

        class Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise KeyboardInterrupt(f"interrupted after step {step}")
        return Stop()


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_model, tmp_path):
    model, tokenizer = tiny_model
    settings = dict(lora=train.LoraSettings(r=4, alpha=8, dropout=0.0), profile="smoke",
                    max_steps=6, batch_size=2, show=False)
    whole = train.sft(model, tokenizer, rows(), **settings)
    with pytest.raises(KeyboardInterrupt):
        train.sft(model, tokenizer, rows(), output_dir=tmp_path, save_every=2,
                  callbacks=(StopAt(3),), **settings)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    resumed = train.sft(model, tokenizer, rows(), output_dir=tmp_path, save_every=2,
                        resume=True, **settings)
    assert resumed.losses()[0] == [1, 2, 3, 4, 5, 6]  # steps 1-2 come from the checkpoint
    assert resumed.losses()[1] == pytest.approx(whole.losses()[1], rel=1e-4)
    lora = {k: v for k, v in whole.model.state_dict().items() if "lora_" in k}
    again = resumed.model.state_dict()
    assert lora and all(torch.allclose(v, again[k], atol=1e-5) for k, v in lora.items())
    assert 0 < resumed.train_tokens < whole.train_tokens  # this session trained steps 3-6 only


def test_checkpoints_need_a_folder(tiny_model):
    with pytest.raises(ValueError, match="output_dir"):
        train.sft(*tiny_model, rows(), profile="smoke", save_every=2, show=False)


def test_resume_without_a_checkpoint_starts_from_zero(tiny_model, tmp_path, capsys):
    result = train.sft(*tiny_model, rows(), profile="smoke", max_steps=2, batch_size=2,
                       output_dir=tmp_path, resume=True, show=True)
    assert "no checkpoint" in capsys.readouterr().out and result.losses()[0] == [1, 2]


def test_saved_adapter_reloads_with_its_metadata(tiny_model, tmp_path):
    from course_utils import evals
    model, tokenizer = tiny_model
    result = train.sft(model, tokenizer, rows(), lora=train.LoraSettings(r=4, alpha=8),
                       profile="smoke", max_steps=2, batch_size=2, show=False)
    score = evals.rate([True, False, True, True])
    folder = train.save_adapter(result, tmp_path / "tickets-v1", heldout={"exact match": score})
    assert (folder / "adapter_model.safetensors").exists()
    assert not list(tmp_path.glob("tickets-v1.*"))  # no staging folder left behind
    reloaded, meta = train.load_adapter(folder, model=copy.deepcopy(model))  # PEFT edits it
    assert meta["data_sha256"] == data.fingerprint(rows())
    assert meta["kind"] == "lora" and meta["settings"]["lora"]["r"] == 4
    assert meta["heldout"]["exact match"]["hits"] == 3 and meta["heldout"]["exact match"]["n"] == 4
    assert meta["train"]["tokens"] == result.train_tokens and meta["versions"]["peft"]
    batch = torch.tensor([tokenizer("hello there").input_ids])
    with torch.no_grad():
        assert torch.allclose(reloaded(batch).logits, result.model(batch).logits, atol=1e-5)


def test_reading_metadata_of_a_plain_folder_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_adapter"):
        train.read_metadata(tmp_path)


def test_data_fingerprint_follows_content_and_order():
    assert data.fingerprint(rows()) == data.fingerprint(rows())
    assert data.fingerprint(rows()) != data.fingerprint(rows()[::-1])
    assert data.fingerprint(rows()) != data.fingerprint(rows(5))


def test_with_lora_starts_as_the_model_and_trains_only_adapters(tiny_model):
    model, tokenizer = tiny_model
    adapted = train.with_lora(model, train.LoraSettings(r=4, alpha=8))
    trainable, total = train.trainable_parameters(adapted)
    assert 0 < trainable < total and train.trainable_parameters(model)[0] == sum(
        p.numel() for p in model.parameters())  # the original stays plain and trainable
    batch = torch.tensor([tokenizer("hello there").input_ids])
    with torch.no_grad():
        assert torch.equal(adapted(batch).logits, model(batch).logits)  # B = 0 at the start


def test_padded_batch_masks_padding_out_of_attention_and_loss(tiny_model):
    model, tokenizer = tiny_model
    short = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    batch = train.padded_batch([rows(1)[0], short], tokenizer)
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert lengths[0] > lengths[1] and batch["input_ids"].shape[1] == lengths[0]
    assert (batch["labels"][1, lengths[1]:] == -100).all()
    alone = train.padded_batch([short], tokenizer)
    with torch.no_grad():  # padding changes nothing: the short row's loss is the same alone
        padded_loss = model(**{k: v[1:] for k, v in batch.items()}).loss
        assert torch.allclose(padded_loss, model(**alone).loss, atol=1e-5)


def test_release_memory_runs_anywhere():
    train.release_memory()
    assert train.rss_mb() > 0


def pairs(n: int = 4) -> list[dict]:
    return [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"question {i}"}],
             "chosen": [{"role": "assistant", "content": "Hi! Happy to help."}],
             "rejected": [{"role": "assistant", "content": "no"}]} for i in range(n)]


def test_dpo_records_margins_and_accuracy_with_the_adapter_as_reference(tiny_model):
    model, tokenizer = tiny_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train.dpo(model, tokenizer, pairs(), pairs(2), lora=train.LoraSettings(r=4, alpha=8),
                       profile="smoke", max_steps=3, batch_size=2, learning_rate=1e-2,
                       eval_every=3, show=False)
    assert result.losses("train_loss")[0] == [1, 2, 3]
    margins = result.losses("margin")[1]
    # step 1 is scored before any update: policy = reference (adapter B = 0), margin 0
    assert margins[0] == pytest.approx(0.0, abs=1e-6) and margins[-1] > 0
    assert result.losses("val_preference_accuracy")[0] == [3]
    assert result.train_tokens > 0 and result.peak_memory_mb > 0
    assert result.settings["method"] == "dpo" and result.settings["beta"] == 0.1
    assert type(result.model).__name__.startswith("Peft")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_dpo_on_an_sft_adapter_uses_the_sft_model_as_reference(tiny_model):
    model, tokenizer = tiny_model
    sft = train.sft(model, tokenizer, rows(), lora=train.LoraSettings(r=4, alpha=8),
                    profile="smoke", max_steps=2, batch_size=2, learning_rate=1e-2, show=False)
    result = train.dpo(sft.model, tokenizer, pairs(), lora=train.LoraSettings(r=4, alpha=8),
                       profile="smoke", max_steps=1, batch_size=2, show=False)
    # merged SFT model = reference; the fresh adapter starts equal to it: margin 0 at step 1
    assert result.losses("margin")[1][0] == pytest.approx(0.0, abs=1e-6)
    assert type(sft.model).__name__.startswith("Peft")  # the SFT result itself is untouched


def test_dpo_names_a_malformed_pair(tiny_model):
    bad = pairs(2)
    bad[1]["chosen"] = "Hi! Happy to help."
    with pytest.raises(ValueError, match=r"pair 1 \(p1\): chosen"):
        train.dpo(*tiny_model, bad, profile="smoke", show=False)


def moved_adapter(tiny_model):
    """A LoRA copy of the tiny model whose adapter is no longer zero (as if trained)."""
    model, _ = tiny_model
    adapted = train.with_lora(model, train.LoraSettings(r=4, alpha=8, dropout=0.0))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return adapted


def test_course_dpo_loss_equals_trls(tiny_model):
    _, tokenizer = tiny_model
    policy = moved_adapter(tiny_model)
    batch = pairs(3)
    batch[1]["rejected"] = [{"role": "assistant", "content": "A much longer and different reply."}]
    trl_loss = train.dpo_loss(policy, tokenizer, batch, beta=0.3, implementation="trl")
    ours = train.dpo_loss(policy, tokenizer, batch, beta=0.3, implementation="course")
    assert trl_loss["loss"] != pytest.approx(0.6931, abs=1e-3)  # the adapter moved the policy
    for key in ("loss", "margin", "accuracy"):
        assert ours[key] == pytest.approx(trl_loss[key], rel=1e-4, abs=1e-5), key


def test_completion_logps_sum_the_completion_tokens_only(tiny_model):
    model, tokenizer = tiny_model
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]])
    inputs = {"input_ids": ids, "attention_mask": torch.tensor([[1] * 5, [1, 1, 1, 0, 0]]),
              "completion_mask": torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])}
    with torch.no_grad():
        got = train.completion_logps(model, inputs)
        logps = model(input_ids=ids, attention_mask=inputs["attention_mask"]).logits.log_softmax(-1)
    expected = [sum(logps[0, t - 1, ids[0, t]] for t in (2, 3, 4)),
                sum(logps[1, t - 1, ids[1, t]] for t in (1, 2))]
    assert got.tolist() == pytest.approx([float(e) for e in expected], rel=1e-5)


def test_dpo_refuses_a_prompt_that_fills_max_length(tiny_model):
    long = pairs(2)
    long[1]["prompt"] = [{"role": "user", "content": "word " * 300}]
    with pytest.raises(ValueError, match=r"1 pair\(s\).*1 \(p1, \d+ tokens\).*max_length="):
        train.dpo(*tiny_model, long, profile="smoke", max_length=64, show=False)


def test_dpo_loss_needs_a_lora_model(tiny_model):
    with pytest.raises(ValueError, match="LoRA model"):
        train.dpo_loss(*tiny_model, pairs(1))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_dpo_step_in_two_halves_gives_the_one_pass_gradient(tiny_model, dropout):
    """train.dpo backpropagates the chosen and the rejected replies separately (half the
    activation memory): the gradient must equal one backward through the whole DPO loss."""
    model, tokenizer = tiny_model
    policy = train.with_lora(model, train.LoraSettings(r=4, alpha=8, dropout=dropout))
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    batch_pairs = pairs(3)
    batch_pairs[2]["rejected"] = [{"role": "assistant", "content": "A longer, other reply."}]
    trainer = train._dpo_trainer(policy, tokenizer, batch_pairs, 0.3, "course")
    net, batch = trainer.model, train._collated(trainer, batch_pairs)
    for module in net.modules():  # TRL switches dropout off for DPO (disable_dropout=True);
        if isinstance(module, torch.nn.Dropout):  # a learner may turn it back on
            module.p = dropout

    def gradients():
        return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

    torch.manual_seed(7)
    net.zero_grad()
    trainer.training_step(net, batch)
    split = gradients()
    # one pass: both halves with gradients at once, from the same random state (dropout)
    torch.manual_seed(7)
    net.zero_grad()
    halves = train._chosen_and_rejected(batch)
    with torch.no_grad(), net.disable_adapter():
        reference = torch.cat([train.completion_logps(net, h) for h in halves])
    net.train()
    policy_logps = torch.cat([train.completion_logps(net, h) for h in halves])
    chosen, rejected = (policy_logps - reference).chunk(2)
    torch.nn.functional.logsigmoid(0.3 * (chosen - rejected)).mean().neg().backward()
    joint = gradients()
    assert split.keys() == joint.keys() and len(split) > 0
    for name in split:
        torch.testing.assert_close(split[name], joint[name], rtol=1e-4, atol=1e-6)


def test_packed_sequences_score_as_if_padded(tiny_model):
    """Packing the sequences of a batch end to end (positions restarting at 0) must not let
    one sequence see another: the same log-probs as the padded batch."""
    model, _ = tiny_model
    batch = {"input_ids": torch.tensor([[5, 6, 7, 8, 9], [15, 16, 17, 0, 0], [25, 26, 27, 28, 0]]),
             "attention_mask": torch.tensor([[1] * 5, [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]),
             "completion_mask": torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0]])}
    packed = train._packed(batch)
    assert packed["input_ids"].tolist() == [[5, 6, 7, 8, 9, 15, 16, 17, 25, 26, 27, 28]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3]]
    with torch.no_grad():
        torch.testing.assert_close(train.completion_logps(model, packed),
                                   train.completion_logps(model, batch), rtol=1e-5, atol=1e-5)


def test_distillation_loss_is_the_kl_divergence_and_zero_for_a_copy():
    torch.manual_seed(0)
    teacher, student = torch.randn(5, 11), torch.randn(5, 11)
    expected = torch.nn.functional.kl_div(student.log_softmax(-1), teacher.log_softmax(-1),
                                          log_target=True, reduction="batchmean")
    assert train.distillation_loss(student, teacher).item() == pytest.approx(expected.item(), rel=1e-5)
    assert train.distillation_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    hot = train.distillation_loss(student, teacher, temperature=2.0)
    soft = torch.nn.functional.kl_div((student / 2).log_softmax(-1), (teacher / 2).log_softmax(-1),
                                      log_target=True, reduction="batchmean") * 4
    assert hot.item() == pytest.approx(soft.item(), rel=1e-5)


def test_fewer_layers_keeps_first_and_last_and_still_generates(five_layer_model):
    deeper, tokenizer = five_layer_model
    smaller = models.fewer_layers(deeper, 3)
    assert len(smaller.model.layers) == 3 and smaller.config.num_hidden_layers == 3
    assert smaller.model.layers[0].self_attn.layer_idx == 0
    torch.testing.assert_close(smaller.model.layers[2].mlp.up_proj.weight,
                               deeper.model.layers[4].mlp.up_proj.weight)
    assert len(deeper.model.layers) == 5  # the original is untouched
    ids = torch.tensor([[5, 6, 7]])
    out = smaller.generate(input_ids=ids, max_new_tokens=4, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
    assert out.shape == (1, 7)
    with pytest.raises(ValueError, match="has 5 layers"):
        models.fewer_layers(deeper, 6)


def test_fewer_layers_keeps_the_layers_named(five_layer_model):
    deeper, _ = five_layer_model
    with torch.no_grad():
        for i, layer in enumerate(deeper.model.layers):
            layer.mlp.up_proj.weight.fill_(float(i))
    smaller = models.fewer_layers(deeper, keep=[0, 1, 4])  # layers 2 and 3 cut out
    assert [layer.mlp.up_proj.weight[0, 0].item() for layer in smaller.model.layers] == [0, 1, 4]
    assert [layer.self_attn.layer_idx for layer in smaller.model.layers] == [0, 1, 2]
    assert smaller.config.num_hidden_layers == 3 and smaller.course_source.endswith("layers: 0, 1, 4)")
    for bad in ([], [1, 0], [0, 0, 1], [0, 5]):
        with pytest.raises(ValueError, match="once each, in increasing order"):
            models.fewer_layers(deeper, keep=bad)
    with pytest.raises(ValueError, match="n_layers=2 but keep names 3"):
        models.fewer_layers(deeper, 2, keep=[0, 1, 4])
    with pytest.raises(ValueError, match="needs n_layers"):
        models.fewer_layers(deeper)


def test_drift_is_zero_for_the_teacher_itself_and_is_the_distillation_loss_of_a_cut(five_layer_model):
    deeper, tokenizer = five_layer_model
    cut = models.fewer_layers(deeper, keep=[0, 1, 4])
    found = train.drift(deeper, {"itself": copy.deepcopy(deeper), "cut": cut}, tokenizer,
                        rows(3), batch_size=2)
    assert found["itself"] == pytest.approx(0.0, abs=1e-6) and found["cut"] > 1e-4
    batch = train.padded_batch(rows(1), tokenizer)  # one row: its mean is the loss's mean
    keep = batch["labels"][0, 1:] != -100
    with torch.no_grad():
        by_loss = train.distillation_loss(cut(input_ids=batch["input_ids"]).logits[0, :-1][keep],
                                          deeper(input_ids=batch["input_ids"]).logits[0, :-1][keep])
    assert train.drift(deeper, {"cut": cut}, tokenizer, rows(1))["cut"] == pytest.approx(float(by_loss), rel=1e-4)


def test_distill_moves_the_student_towards_the_teacher(tiny_model):
    teacher, tokenizer = tiny_model
    student = models.fewer_layers(teacher, 1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = train.distill(student, tokenizer, rows(8), teacher, rows(2), profile="smoke",
                           max_steps=6, batch_size=4, learning_rate=3e-3, eval_every=6,
                           show=False)
    _, losses = result.losses("train_loss")
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert result.losses("val_loss")[0] == [6]
    assert result.train_tokens > 0 and result.peak_memory_mb > 0
    assert result.settings["method"] == "distill" and result.settings["temperature"] == 1.0
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert len(student.model.layers) == 1  # trained a copy: the given student is untouched


def test_distill_stops_early_and_keeps_the_best_validation_student(tiny_model):
    """distill trains to convergence as sft does: epochs, early stopping on validation, best kept."""
    teacher, tokenizer = tiny_model
    train_rows = answer_rows("alpha alpha alpha", 8)
    val_rows = answer_rows("zebra quokka walrus", 4, 100)
    result = train.distill(models.fewer_layers(teacher, 1), tokenizer, train_rows, teacher,
                           val_rows, profile="smoke", temperature=2.0, hard_weight=0.5,
                           max_epochs=40, batch_size=4, learning_rate=1e-2, patience=2,
                           eval_every=1, show=False)
    steps, val_losses = result.losses("val_loss")
    assert result.settings["max_steps"] == 80 and result.steps < 80  # stopped early
    assert result.best_step == steps[val_losses.index(min(val_losses))]
    assert result.settings["hard_weight"] == 0.5 and result.settings["patience"] == 2


def test_distill_leaves_the_teacher_trainable_and_in_its_mode(tiny_model):
    """The teacher is often the learner's own model (chapter 05): freezing it in place left
    it untrainable for any later fine-tune (and broke later tests sharing this fixture)."""
    teacher, tokenizer = tiny_model
    teacher = copy.deepcopy(teacher).train()
    train.distill(models.fewer_layers(teacher, 1), tokenizer, rows(4), teacher, max_steps=1,
                  batch_size=4, show=False)
    assert teacher.training
    assert all(p.requires_grad for p in teacher.parameters())


def test_distill_refuses_a_teacher_with_another_vocabulary(tiny_model):
    from transformers import LlamaConfig, LlamaForCausalLM
    model, tokenizer = tiny_model
    other = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=1))
    with pytest.raises(ValueError, match=r"teacher's vocabulary \(100 tokens\)"):
        train.distill(model, tokenizer, rows(2), other, show=False)


def test_a_copy_of_a_trained_model_runs_its_own_weights(tiny_model):
    """TRL patches a trained model's forward as a closure over that very object; a deep copy
    (train.dpo copies an SFT result) must not keep running the original's weights."""
    model, tokenizer = tiny_model
    sft = train.sft(model, tokenizer, rows(), lora=train.LoraSettings(r=4, alpha=8),
                    profile="smoke", max_steps=2, batch_size=2, learning_rate=1e-2, show=False)
    dpo = train.dpo(sft.model, tokenizer, pairs(), lora=train.LoraSettings(r=4, alpha=8),
                    profile="smoke", max_steps=3, batch_size=2, learning_rate=1e-2, show=False)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        policy = dpo.model(input_ids=ids).logits
        with dpo.model.disable_adapter():
            reference = dpo.model(input_ids=ids).logits
        copied = copy.deepcopy(sft.model)
        for name, param in copied.named_parameters():
            if "lora_B" in name:
                param.mul_(3)
        assert not torch.allclose(copied(input_ids=ids).logits, sft.model(input_ids=ids).logits)
    assert not torch.allclose(policy, reference)  # the DPO adapter is in the forward pass


def test_kl_from_reference_is_zero_for_a_fresh_adapter_and_grows_with_dpo(tiny_model):
    model, tokenizer = tiny_model
    chats = [{"messages": p["prompt"] + p["chosen"]} for p in pairs(3)]
    fresh = train.with_lora(model, train.LoraSettings(r=4, alpha=8))
    assert train.kl_from_reference(fresh, tokenizer, chats) == pytest.approx(0.0, abs=1e-7)
    result = train.dpo(model, tokenizer, pairs(), lora=train.LoraSettings(r=4, alpha=8),
                       profile="smoke", max_steps=3, batch_size=2, learning_rate=5e-2, show=False)
    assert train.kl_from_reference(result.model, tokenizer, chats) > 1e-4
    with pytest.raises(ValueError, match="needs a model with a LoRA adapter"):
        train.kl_from_reference(model, tokenizer, chats)
    settings = train.dpo_settings(model, pairs(), profile="smoke", beta=0.3)
    assert settings["learning_rate"] == 5e-5 and settings["beta"] == 0.3 and settings["method"] == "dpo"
