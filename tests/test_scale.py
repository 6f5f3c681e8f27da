"""Past one device (course_utils.scale, chapter 08): real processes, on this machine's CPUs."""

import pytest

from course_utils import memory, scale

TINY = memory.Shape("tiny-llama", hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2,
                    vocab=256)


def test_two_fsdp_processes_hold_what_the_calculator_predicts():
    """FSDP2 over gloo: each of 2 ranks holds half the weights, gradients and AdamW state,
    to the byte, as memory.estimate(..., devices=2, sharding='fsdp') says."""
    reports = scale.measure_fsdp_shards(TINY, processes=2)
    predicted = memory.estimate(TINY, "full", precision="fp32", devices=2, sharding="fsdp")
    assert [r["rank"] for r in reports] == [0, 1] and {r["world"] for r in reports} == {2}
    for report in reports:
        assert report["weights"] == predicted.weights == TINY.n_params * 4 / 2
        assert report["gradients"] == predicted.gradients
        assert report["optimizer"] == predicted.optimizer == TINY.n_params * 8 / 2
    assert reports[0]["loss"] != reports[1]["loss"]  # each rank trained on its own batch


def test_bad_process_counts_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        scale.measure_fsdp_shards(TINY, processes=0)


# ---------------------------------------------------------------------------- one recipe, N processes

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_recipe(tiny_model, tmp_path_factory):
    """A config training a LoRA on a saved 2-layer model: 4 steps of 8 tickets."""
    from course_utils import data
    folder = tmp_path_factory.mktemp("scale")
    model, tokenizer = tiny_model
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    data.write_jsonl(data.load_split("tickets", "train")[:32], folder / "train.jsonl")
    config = folder / "config.yaml"
    config.write_text(f"model: {folder / 'model'}\ntrain: {folder / 'train.jsonl'}\n"
                      f"output: {folder / 'out'}\nlora: {{r: 4, alpha: 8, dropout: 0.0}}\n"
                      f"max_steps: 4\nbatch_size: 8\nlearning_rate: 2.0e-2\nmax_length: 256\n")
    return folder, config


def _train(config, output, launcher: str | None = None) -> None:
    """`course train` in one process, or under accelerate launch with configs/accelerate/<launcher>.yaml."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    environment.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", COURSE_HEADLESS="1")
    if launcher is None:
        command = [sys.executable, "-m", "course_utils.cli"]
    else:
        command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file",
                   str(root / "configs" / "accelerate" / f"{launcher}.yaml"), "--num_processes=2",
                   f"--main_process_port={_free_port()}", "-m", "course_utils.cli"]
    done = subprocess.run([*command, "train", "--config", str(config), "--output", str(output)],
                          capture_output=True, text=True, timeout=600, env=environment, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 process(es)" in done.stdout if launcher else "on 1 process(es)" in done.stdout


@pytest.fixture(scope="module")
def one_process(tiny_recipe):
    folder, config = tiny_recipe
    _train(config, folder / "one")
    return folder / "one"


@pytest.mark.parametrize("launcher", ["ddp", "fsdp"])
def test_two_processes_train_the_same_steps_as_one(tiny_recipe, tiny_model, one_process, launcher):
    """The same config, batch and seed on 1 process and on 2 (accelerate launch with the
    repo's DDP or FSDP2 config, over gloo): the loss at every step within 1 %, the adapters
    alike, the same greedy answers from the reloaded adapter."""
    import copy
    import torch
    from course_utils import data, evals, train
    folder, config = tiny_recipe
    _train(config, folder / launcher, launcher)
    one, two = (train.read_metadata(f)["train"]["history"] for f in (one_process, folder / launcher))
    one, two = ([h["train_loss"] for h in run if "train_loss" in h] for run in (one, two))
    assert len(one) == len(two) == 4
    assert one[-1] < one[0] - 0.05  # it learned something, so a wrong gradient would show
    for a, b in zip(one, two):
        assert abs(a - b) <= 0.01 * abs(a), (one, two)
    model, tokenizer = tiny_model
    reloaded = {name: train.load_adapter(f, model=copy.deepcopy(model))[0]
                for name, f in (("one", one_process), ("two", folder / launcher))}
    weights = {name: {k: v for k, v in m.state_dict().items() if "lora_" in k}
               for name, m in reloaded.items()}
    assert weights["one"].keys() == weights["two"].keys() and weights["one"]
    for key, value in weights["one"].items():
        torch.testing.assert_close(weights["two"][key], value, rtol=1e-3, atol=1e-5)
    rows = data.load_split("tickets", "val")[:4]
    answers = {name: evals.generate(m, tokenizer, rows, max_new_tokens=8, show=False)
               for name, m in reloaded.items()}
    assert answers["one"] == answers["two"]


def test_a_batch_that_does_not_split_over_the_processes_is_refused(monkeypatch):
    from course_utils import train
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match=r"batch_size 8 does not split over 3 processes.*e\.g\. 9"):
        train._split_over_processes(8)
    assert train._split_over_processes(9) == {"accelerator_config": {"split_batches": True}}
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert train._split_over_processes(8) == {}
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        train.processes()


@pytest.mark.parametrize("text, message", [
    ("model: m\ntrain: t\noutput: o\nlr: 0.1\n", r"config.yaml:4: unknown key 'lr'; the keys are model"),
    ("model: m\ntrain: t\noutput: o\nlearning_rate: 1e-3\n",
     r"config.yaml:4: learning_rate is '1e-3'; it must be float or int \(YAML reads 1e-3 as text.*0\.001"),
    ("model: m\ntrain: t\noutput: o\nbatch_size: true\n", r"config.yaml:4: batch_size is True; it must be int"),
    ("model: m\ntrain: t\noutput: o\nlora: {r: 4, rank: 8}\n", r"config.yaml:4: lora has no setting 'rank'"),
    ("model: m\noutput: o\n", r"config.yaml: no 'train'; add e.g. 'train: data/tickets/train.jsonl'"),
    ("model: m\ntrain: [t\n", r"config.yaml:3:1: not valid YAML"),
    ("- model\n", r"config.yaml: a training config is a mapping"),
    ("model: m\ntrain: t\noutput: o\nbackend: mpi\n", r"config.yaml:4: backend 'mpi' is not one of gloo, nccl"),
    # DPO (method: dpo) takes its own keys
    ("method: dpo\nmodel: m\ntrain: t\noutput: o\npatience: 2\n",
     r"config.yaml:5: patience is for method: sft, and this config trains with dpo \(DPO trains max_steps"),
    ("model: m\ntrain: t\noutput: o\nbeta: 0.1\n", r"config.yaml:4: beta is for method: dpo, and this config trains with sft"),
    ("method: ppo\nmodel: m\ntrain: t\noutput: o\n", r"config.yaml:1: method 'ppo' is not one of sft, dpo"),
    ("method: dpo\nmodel: m\nstart_from: s\ntrain: t\noutput: o\n",
     r"config.yaml:2: model and start_from both name the model.*remove model"),
])
def test_bad_training_configs_say_where_and_how_to_fix(tmp_path, text, message):
    from course_utils import scale
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(scale.ConfigError, match=message):
        scale.read_train_config(path)


def test_course_train_exits_2_on_a_bad_config_and_1_on_bad_data(tmp_path, capsys):
    from course_utils import cli
    assert cli.main(["train", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"messages": [\n')
    config = tmp_path / "c.yaml"
    config.write_text(f"model: smollm2-135m\ntrain: {tmp_path / 'bad.jsonl'}\noutput: {tmp_path / 'o'}\n")
    assert cli.main(["train", "--config", str(config)]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_the_repo_configs_read_and_name_files_that_exist():
    from pathlib import Path
    from course_utils import scale
    root = Path(__file__).resolve().parents[1]
    configs = sorted((root / "configs" / "train").glob("*.yaml"))
    assert configs
    for path in configs:
        config = scale.read_train_config(path)
        for split in ("train", "val"):
            if split in config:
                assert (root / config[split]).is_file(), (path, config[split])
    for name in ("ddp.yaml", "fsdp.yaml", "deepspeed_zero3.json"):
        assert (root / "configs" / "accelerate" / name).is_file()


def test_nccl_on_a_machine_without_cuda_is_refused_before_anything_starts(tmp_path, monkeypatch):
    import torch
    from course_utils import scale
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = tmp_path / "config.yaml"
    path.write_text("model: m\ntrain: t\noutput: o\nbackend: nccl\n")
    with pytest.raises(scale.ConfigError, match=r"config.yaml:4: backend 'nccl' needs NVIDIA GPUs.*use 'gloo'"):
        scale.read_train_config(path)
    path.write_text("model: m\ntrain: t\noutput: o\nbackend: gloo\n")
    assert scale.read_train_config(path)["backend"] == "gloo"


def test_the_launch_command_and_a_missing_launcher(tmp_path, monkeypatch):
    import shutil
    import sys
    from course_utils import scale
    command = scale.launch_command("c.yaml", 2, "fsdp", output="out")
    assert command[1:3] == ["launch", "--config_file"] and command[3].endswith("configs/accelerate/fsdp.yaml")
    assert command[4:] == ["--num_processes=2", "-m", "course_utils.cli", "train", "--config", "c.yaml",
                           "--output", "out"]
    with pytest.raises(scale.ConfigError, match="strategy 'zero'"):
        scale.launch_command("c.yaml", 2, "zero")
    with pytest.raises(scale.ConfigError, match="launch 2 or more"):
        scale.launch_command("c.yaml", 1)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no accelerate beside it
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(scale.ConfigError, match=r"`accelerate`\) is not installed.*torchrun"):
        scale.launch_command("c.yaml", 2)


def test_course_train_refuses_a_batch_the_processes_cannot_split_before_launching(tmp_path, capsys):
    from course_utils import cli
    config = tmp_path / "c.yaml"
    config.write_text("model: smollm2-135m\ntrain: data/tickets/train.jsonl\noutput: o\nbatch_size: 7\n")
    assert cli.main(["train", "--config", str(config), "--processes", "2"]) == 2
    error = capsys.readouterr().err
    assert "c.yaml: batch_size 7 does not split over 2 processes" in error and "e.g. 8" in error


# ---------------------------------------------------------------------------- DPO, the same way

@pytest.fixture(scope="module")
def dpo_recipe(tiny_recipe, one_process):
    """A DPO config refining the one-process SFT adapter on 24 house-voice pairs: 3 steps of 8."""
    from course_utils import data
    folder, _ = tiny_recipe
    data.write_jsonl(data.load_split("voice", "pairs_train")[:24], folder / "pairs.jsonl")
    config = folder / "dpo.yaml"
    config.write_text(f"method: dpo\nstart_from: {one_process}\ntrain: {folder / 'pairs.jsonl'}\n"
                      f"output: {folder / 'dpo-out'}\nlora: {{r: 4, alpha: 8, dropout: 0.0}}\n"
                      f"beta: 0.5\nmax_steps: 3\nbatch_size: 8\nlearning_rate: 5.0e-2\n"
                      f"max_length: 512\n")
    return folder, config


@pytest.mark.parametrize("launcher", ["ddp", "fsdp"])
def test_dpo_on_two_processes_takes_the_steps_of_one(dpo_recipe, launcher):
    """train.dpo under accelerate launch, with the repo's DDP or FSDP2 config: each process
    collates its own 4 of each step's 8 pairs; the loss at every step within 1 % of one
    process, and the adapters alike."""
    import torch
    from course_utils import train
    folder, config = dpo_recipe
    if not (folder / "dpo-one").exists():
        _train(config, folder / "dpo-one")
    _train(config, folder / f"dpo-{launcher}", launcher)
    runs = [train.read_metadata(folder / f"dpo-{name}") for name in ("one", launcher)]
    one, two = ([h["train_loss"] for h in run["train"]["history"] if "train_loss" in h]
                for run in runs)
    assert len(one) == len(two) == 3
    assert one[-1] < one[0] - 0.05  # it learned (the first step's loss is log 2 in both)
    for a, b in zip(one, two):
        assert abs(a - b) <= 0.01 * abs(a), (one, two)
    assert runs[0]["settings"]["method"] == "dpo" and runs[0]["settings"]["beta"] == 0.5
    weights = [{k: v for k, v in train.load_adapter(folder / f"dpo-{name}")[0].state_dict().items()
                if "lora_" in k} for name in ("one", launcher)]
    assert weights[0].keys() == weights[1].keys() and weights[0]
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=1e-3, atol=1e-5)


def test_course_train_names_the_line_of_a_bad_pair_and_a_missing_start(tmp_path, capsys):
    import json
    from course_utils import cli, data
    pairs = data.load_split("voice", "pairs_train")[:3]
    del pairs[1]["rejected"]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    config = tmp_path / "c.yaml"
    config.write_text(f"method: dpo\nmodel: smollm2-135m\ntrain: {tmp_path / 'pairs.jsonl'}\n"
                      f"output: {tmp_path / 'o'}\n")
    assert cli.main(["train", "--config", str(config)]) == 1
    assert f"pairs.jsonl:2 ({pairs[1]['id']}): rejected missing" in capsys.readouterr().err
    config.write_text(f"method: dpo\nstart_from: {tmp_path / 'no-sft'}\ntrain: {tmp_path / 'pairs.jsonl'}\n"
                      f"output: {tmp_path / 'o'}\n")
    del pairs[1]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    assert cli.main(["train", "--config", str(config)]) == 2
    assert "start_from: " in (error := capsys.readouterr().err) and "train the SFT config first" in error
