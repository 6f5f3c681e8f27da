"""The training-memory calculator: full fine-tuning vs LoRA vs QLoRA, 135M to 70B parameters.

Introduced in notebooks/03_lora.ipynb, which checks it against the peak memory measured on
SmolLM2-135M and explains the gap.

Training memory has four parts:
- **weights**: every parameter, in its storage format (4 bytes fp32, 2 bytes bf16, 0.52 byte NF4
  with its scales; `bytes_per_parameter` lists each precision recipe);
- **gradients**: one per *trainable* parameter;
- **optimizer state**: AdamW keeps two running averages per trainable parameter;
- **activations**: what the forward pass saves for the backward pass, which grows with
  batch x sequence length and does not shrink with LoRA (the gradient still flows through
  every layer to reach the adapters).
The counts below are for Llama-style decoders (SmolLM2, Llama 3): attention with grouped
key/value heads, a SwiGLU MLP, RMSNorm, and PyTorch's fused attention (no seq x seq matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9


@dataclass(frozen=True)
class Shape:
    """The sizes of a Llama-style decoder that decide its parameter count and activations."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool = True

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of the seven linear layers in one block."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_params(self) -> int:
        """Parameters in the blocks' linear layers: what QLoRA stores in 4 bits."""
        return self.layers * sum(a * b for a, b in self.linear_shapes().values())

    @property
    def other_params(self) -> int:
        """Embeddings, the LM head when not tied, and the norms: kept in 16 or 32 bits."""
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return embeddings + (2 * self.layers + 1) * self.hidden

    @property
    def n_params(self) -> int:
        return self.linear_params + self.other_params

    def lora_params(self, r: int, targets: tuple[str, ...] | str = "all-linear") -> int:
        """Trainable parameters of rank-r LoRA adapters: r x (in + out) per adapted layer."""
        shapes = self.linear_shapes()
        names = shapes if targets == "all-linear" else targets
        return self.layers * sum(r * sum(shapes[n]) for n in names)

    def activation_bytes_per_token(self, act_bytes: int, lora: bool = False,
                                   dropout: bool = False) -> float:
        """Bytes saved for the backward pass, per token and block (no checkpointing).

        Each RMSNorm saves its input, the input times 1/rms, and its output (3 values per
        hidden unit; 2 when its weight is frozen, as under LoRA). Attention saves q, k and v
        after the rotary embedding, its output and the reshaped copy o_proj reads. The MLP
        saves the gate and up projections, SiLU(gate) and their product. LoRA dropout adds a
        dropped-out copy of each adapted layer's input, plus a one-byte mask per value.
        Checked against autograd's own record by `saved_activation_bytes` (chapter 03).
        """
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        norms = 2 * (2 if lora else 3) * h
        values = norms + (h + 2 * kv) + 2 * h + 4 * i
        extra = 0.0
        if lora and dropout:  # q, k, v, o, gate, up read h values each; down reads i
            copies = 6 * h + i
            values += copies
            extra = copies * 1  # the bool masks
        return values * act_bytes + extra


# Llama-style models from 135M to 70B parameters (shapes from their published configs).
SHAPES: dict[str, Shape] = {s.name: s for s in (
    Shape("SmolLM2-135M", 576, 1536, 30, 9, 3, 49152),
    Shape("SmolLM2-360M", 960, 2560, 32, 15, 5, 49152),
    Shape("SmolLM2-1.7B", 2048, 8192, 24, 32, 32, 49152),
    Shape("Llama-3.1-8B", 4096, 14336, 32, 32, 8, 128256, tied_embeddings=False),
    Shape("Llama-3.1-70B", 8192, 28672, 80, 64, 8, 128256, tied_embeddings=False),
)}

METHODS = ("full", "lora", "qlora")
# How N devices share the training state (estimate's `sharding`): the parts each splits N ways.
SHARDED_PARTS: dict[str, tuple[str, ...]] = {
    "ddp": (), "zero1": ("optimizer",), "zero2": ("optimizer", "gradients"),
    "zero3": ("optimizer", "gradients", "weights"), "fsdp": ("optimizer", "gradients", "weights"),
}
SHARDING = tuple(SHARDED_PARTS)

# Bytes per value in each precision recipe. Per trainable parameter: the weight as stored,
# the `cast` copy computation reads (if any), its gradient and AdamW's two averages. `frozen`:
# a weight LoRA does not train. `act`: the activations saved for the backward pass.
# - fp32: everything in 4 bytes (a CPU): 16 bytes per trainable parameter.
# - bf16: everything in bf16, AdamW's averages too ("pure" half precision): 8 bytes. Cheap,
#   but updates smaller than bf16's resolution are lost; the course does not train this way.
# - mixed: PyTorch autocast, what transformers' Trainer does with bf16=True or fp16=True and
#   what the course's full fine-tunes use on a GPU: the weights, gradients and AdamW state stay
#   fp32 (4 + 4 + 8 = 16 bytes), and autocast computes each layer from a half-precision copy of
#   its weight (2 bytes), which autograd keeps for the backward pass: 18 bytes at the peak.
#   LoRA's frozen base is loaded in half precision (2 bytes), as load_model does on a GPU.
_PRECISION = {
    "fp32": dict(weight=4, cast=0, grad=4, adam=8, frozen=4, act=4),
    "bf16": dict(weight=2, cast=0, grad=2, adam=4, frozen=2, act=2),
    "mixed": dict(weight=4, cast=2, grad=4, adam=8, frozen=2, act=2),
}
# NF4 as load_model stores it (bnb_4bit_use_double_quant=True, QLoRA's recipe): 4 bits per
# weight, one absmax per block of 64 weights quantized to 8 bits, and one fp32 scale per 256
# of those absmaxes. Without double quantization the absmax is fp32: 0.5 + 4/64 = 0.5625.
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # = 0.5159 bytes, 4.13 bits per weight
ADAPTER_BYTES = 4 + 4 + 8  # LoRA adapters train in fp32 (PEFT upcasts them): weight, grad, AdamW


def bytes_per_parameter(method: str, precision: str) -> dict[str, float]:
    """Bytes per parameter of each part for one method and precision: for 'full', per
    trainable parameter; for 'lora' and 'qlora', per frozen linear weight (the adapters add
    ADAPTER_BYTES per adapter weight)."""
    _check(method, precision)
    p = _PRECISION[precision]
    if method == "full":
        return {"weights": p["weight"] + p["cast"], "gradients": p["grad"], "optimizer": p["adam"]}
    return {"weights": NF4_BYTES if method == "qlora" else p["frozen"], "gradients": 0,
            "optimizer": 0}


def _check(method: str, precision: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if precision not in _PRECISION:
        raise ValueError(f"precision must be one of {tuple(_PRECISION)}, not {precision!r}")


@dataclass
class Estimate:
    """Estimated training memory in bytes, by part."""

    model: str
    method: str
    weights: float
    gradients: float
    optimizer: float
    activations: float
    trainable: int
    devices: int = 1
    sharding: str = "ddp"
    gathered: float = 0.0  # zero3/fsdp: full copies of the units being computed (see estimate)

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.gathered

    def parts_gb(self) -> dict[str, float]:
        parts = {"weights": self.weights / GB, "gradients": self.gradients / GB,
                 "optimizer": self.optimizer / GB, "activations": self.activations / GB}
        if self.gathered:
            parts["gathered"] = self.gathered / GB
        return {**parts, "total": self.total / GB}

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in self.parts_gb().items())
        where = f" per device of {self.devices} ({self.sharding})" if self.devices > 1 else ""
        return f"{self.model} {self.method}{where}: {parts} GB"


def shape_of(model_or_name) -> Shape:
    """A Shape from SHAPES by name, or read from a transformers model's config."""
    if isinstance(model_or_name, Shape):
        return model_or_name
    if isinstance(model_or_name, str):
        if model_or_name not in SHAPES:
            raise KeyError(f"unknown model shape {model_or_name!r}; known: {', '.join(SHAPES)}")
        return SHAPES[model_or_name]
    c = model_or_name.config
    return Shape(getattr(c, "name_or_path", "") or "model", c.hidden_size, c.intermediate_size,
                 c.num_hidden_layers, c.num_attention_heads,
                 getattr(c, "num_key_value_heads", None) or c.num_attention_heads,
                 c.vocab_size, bool(getattr(c, "tie_word_embeddings", True)))


def estimate(model, method: str = "lora", *, batch_size: int = 8, seq_len: int = 512,
             precision: str = "bf16", r: int = 16, lora_dropout: float = 0.05,
             loss_tokens: int | None = None, checkpointing: bool = False, devices: int = 1,
             sharding: str = "ddp") -> Estimate:
    """Training memory for one method: 'full', 'lora' (rank r, all linear layers) or 'qlora'.

    `precision` is 'fp32' (a CPU: 16 bytes per trainable parameter), 'bf16' (weights,
    gradients and AdamW state all in bf16: 8 bytes) or 'mixed' (autocast, as on a GPU: fp32
    weights, gradients and AdamW state plus the half-precision copy computation reads, 18
    bytes at the peak; LoRA's frozen base in half precision). See `bytes_per_parameter`.
    `loss_tokens`: positions that get logits (default every position; the course's trainer
    projects only the answer's tokens). `checkpointing` keeps one value per token and block
    and recomputes the rest in the backward pass.

    The parts are added up, which is an upper bound: a full fine-tune's gradients appear
    during the backward pass as the activations are freed, and `zero_grad()` frees them
    again, so the two rarely peak together. Not counted: temporary buffers of the backward
    pass and memory the allocator holds on to (chapter 03 measures both).

    `devices` and `sharding` give the memory of *one* device when N train together, each on
    its own `batch_size` (the per-device batch, as `per_device_train_batch_size`):
    - 'ddp' (data parallel): every device holds everything; only the batch is split.
    - 'zero1' / 'zero2' (DeepSpeed ZeRO stages 1 and 2): the optimizer state, and with
      stage 2 the gradients too, are split N ways; the weights are not.
    - 'zero3' / 'fsdp' (ZeRO stage 3, PyTorch FSDP): weights, gradients and optimizer state
      are all split N ways, and each unit's weights are gathered whole while it computes:
      `gathered` counts two blocks (the one computing and the one prefetched) and the root
      unit (embeddings, LM head, final norm), which stays gathered through the step.
    Activations never shrink with N: each device runs the whole model on its own batch.
    Not counted: communication buffers (DDP's gradient buckets, NCCL's workspace).
    """
    _check(method, precision)
    if sharding not in SHARDING:
        raise ValueError(f"sharding must be one of {SHARDING}, not {sharding!r}")
    if int(devices) != devices or devices < 1:
        raise ValueError(f"devices={devices!r}: the number of devices training together, "
                         f"a whole number of at least 1")
    shape, p = shape_of(model), _PRECISION[precision]
    per = bytes_per_parameter(method, precision)
    lora = method != "full"
    if not lora:
        trainable = shape.n_params
        weights = trainable * per["weights"]
        gradients, optimizer = trainable * per["gradients"], trainable * per["optimizer"]
    else:
        # The adapters train in fp32; frozen weights need no gradient and no optimizer state.
        # Embeddings and norms stay in the compute precision (fp32 on a CPU, half on a GPU).
        trainable = shape.lora_params(r)
        weights = (shape.linear_params * per["weights"] + shape.other_params * p["frozen"]
                   + trainable * 4)
        gradients, optimizer = trainable * 4, trainable * 8
    tokens = batch_size * seq_len
    full_block = shape.activation_bytes_per_token(p["act"], lora, lora_dropout > 0)
    if checkpointing:  # one value per token and block, plus the block being recomputed
        activations = tokens * (shape.layers * shape.hidden * p["act"] + full_block)
    else:
        activations = tokens * shape.layers * full_block
    logits = batch_size * (loss_tokens if loss_tokens is not None else seq_len)
    activations += logits * shape.vocab * 4  # fp32 log-probabilities, saved by the loss
    gathered = 0.0
    if devices > 1:
        split = SHARDED_PARTS[sharding]
        weights, gradients, optimizer = (part / devices if name in split else part
                                         for name, part in (("weights", weights),
                                                            ("gradients", gradients),
                                                            ("optimizer", optimizer)))
        if "weights" in split:  # a unit's weights are gathered whole, as computation reads them
            if not lora:  # in the compute precision: the half copy exists for gathered units only
                weights = trainable * p["weight"] / devices
            block = shape.linear_params / shape.layers
            compute = p["frozen"] if lora else (p["cast"] or p["weight"])  # bytes as read
            linear = NF4_BYTES if method == "qlora" else compute
            gathered = 2 * block * linear + shape.other_params * compute
    return Estimate(shape.name, method, weights, gradients, optimizer, activations, trainable,
                    devices, sharding, gathered)


def sharding_table(models=("Llama-3.1-8B", "Llama-3.1-70B"), method: str = "full",
                   devices=(1, 2, 4, 8), shardings=SHARDING, **settings) -> str:
    """Estimated training memory (GB) per device, for each model, sharding and device count."""
    rows = [f"{'model':15} {'sharding':9} " + " ".join(f"{f'{n} dev':>9}" for n in devices)]
    for name in models:
        for sharding in shardings:
            totals = [estimate(name, method, devices=n, sharding=sharding, **settings).total / GB
                      for n in devices]
            rows.append(f"{shape_of(name).name:15} {sharding:9} "
                        + " ".join(f"{t:8.1f}G" for t in totals))
    return "\n".join(rows)


def table(models=tuple(SHAPES), methods=METHODS, **settings) -> str:
    """Estimated total training memory (GB) per model and method, as a plain-text table."""
    rows = [f"{'model':15} {'params':>8} " + " ".join(f"{m:>9}" for m in methods)]
    for name in models:
        shape = shape_of(name)
        totals = [estimate(shape, m, **settings).total / GB for m in methods]
        rows.append(f"{shape.name:15} {shape.n_params / 1e9:7.2f}B "
                    + " ".join(f"{t:8.1f}G" for t in totals))
    return "\n".join(rows)


# ---------------------------------------------------------------------------- measuring

def saved_activation_bytes(model, batch: dict) -> int:
    """Bytes of the tensors autograd saves for the backward pass in one forward pass of
    `batch` (weights excluded; each storage counted once): the activations, measured."""
    import torch
    from .env import to_device
    batch = to_device(batch, model)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(**batch).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(saved.values())


def measure_training_peak(make_model, batch: dict, steps: int = 2) -> float:
    """Peak memory (MB) above the starting point while `make_model()` builds a trainable model
    and AdamW trains it for `steps` steps on `batch`: process RSS on a CPU (sampled every
    20 ms), max allocated on a GPU."""
    import torch

    from .env import to_device
    from .train import PeakMemory, release_memory, rss_mb
    release_memory()
    cuda = torch.cuda.is_available()
    start = torch.cuda.memory_allocated() / 2**20 if cuda else rss_mb()  # what was there before
    with PeakMemory() as peak:
        model = make_model().train()
        batch = to_device(batch, model)  # a batch built on the CPU goes where the model is
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        for _ in range(steps):
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()  # frees the gradients (set to None) until the next backward
    del model, optimizer
    release_memory()
    return peak.peak_mb - start
