"""Fixtures for the unit tests: the real offline model (loaded once) and a tiny one."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # unit tests never touch the network


@pytest.fixture(scope="session")
def real_model():
    """SmolLM2-135M-Instruct from the offline cache (built by `make setup`)."""
    from course_utils import load_model
    return load_model(show=False)


@pytest.fixture(scope="session")
def tiny_model(real_model):
    """A 2-layer random Llama sharing the real tokenizer: seconds to build and run."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    _, tokenizer = real_model
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer


@pytest.fixture
def five_layer_model(tiny_model):
    """A copy of the tiny model with five layers (copies of its two, alternating): enough
    depth to cut layers out of (models.fewer_layers). A fresh copy for every test."""
    import copy

    import torch
    model, tokenizer = tiny_model
    deeper = copy.deepcopy(model)
    deeper.model.layers = torch.nn.ModuleList([copy.deepcopy(deeper.model.layers[i % 2])
                                               for i in range(5)])
    for i, layer in enumerate(deeper.model.layers):
        layer.self_attn.layer_idx = i
    deeper.config.num_hidden_layers = 5
    return deeper, tokenizer
