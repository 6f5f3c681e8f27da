"""The training-memory calculator: full fine-tuning vs LoRA vs QLoRA, 135M to 70B parameters.

Introduced in notebooks/03_lora.ipynb, which checks it against the peak memory measured on
SmolLM2-135M and explains the gap.

Training memory has four parts:
- **weights**: every parameter, in its storage format (4 bytes fp32, 2 bytes bf16, ~0.5 byte NF4);
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

    def activations_per_token(self, lora: bool = False) -> int:
        """Values saved for the backward pass, per token and block (no checkpointing).

        Attention: the block input, its normalised copy (shared by q, k, v), q, k and v after
        rotary embedding, and the attention output; MLP: the input, its normalised copy, the
        gate and up projections, SiLU(gate) and their product. LoRA with dropout also saves a
        dropped-out copy of the input of every adapted layer.
        """
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        values = (h + h + h + 2 * kv + h) + (h + h + 4 * i)
        if lora:
            values += 3 * h + h + 2 * h + i  # dropout(x) for q, k, v, o, gate, up, down
        return values


# Llama-style models from 135M to 70B parameters (shapes from their published configs).
SHAPES: dict[str, Shape] = {s.name: s for s in (
    Shape("SmolLM2-135M", 576, 1536, 30, 9, 3, 49152),
    Shape("SmolLM2-360M", 960, 2560, 32, 15, 5, 49152),
    Shape("SmolLM2-1.7B", 2048, 8192, 24, 32, 32, 49152),
    Shape("Llama-3.1-8B", 4096, 14336, 32, 32, 8, 128256, tied_embeddings=False),
    Shape("Llama-3.1-70B", 8192, 28672, 80, 64, 8, 128256, tied_embeddings=False),
)}

METHODS = ("full", "lora", "qlora")

# Bytes per value for the storage formats: (weights, gradients and AdamW's two states,
# activations). "mixed" is the usual GPU recipe: bf16 compute with an fp32 master copy.
_PRECISION = {
    "fp32": dict(weight=4, master=0, grad=4, adam=8, act=4),
    "bf16": dict(weight=2, master=0, grad=2, adam=4, act=2),
    "mixed": dict(weight=2, master=4, grad=4, adam=8, act=2),
}
NF4_BYTES = 0.5 + 4 / 64  # 4 bits per weight + one fp32 scale per block of 64 (no double quant)


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

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def parts_gb(self) -> dict[str, float]:
        return {"weights": self.weights / GB, "gradients": self.gradients / GB,
                "optimizer": self.optimizer / GB, "activations": self.activations / GB,
                "total": self.total / GB}

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in self.parts_gb().items())
        return f"{self.model} {self.method}: {parts} GB"


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
             precision: str = "bf16", r: int = 16, loss_tokens: int | None = None,
             checkpointing: bool = False) -> Estimate:
    """Training memory for one method: 'full', 'lora' (rank r, all linear layers) or 'qlora'.

    `precision` is 'fp32' (CPU), 'bf16' (weights, gradients and AdamW state in bf16) or
    'mixed' (bf16 compute, fp32 master weights: ~16 bytes per trainable parameter).
    `loss_tokens`: positions that get logits (default every position; chapter 02's trainer
    projects only the assistant tokens). `checkpointing` keeps one value per token and block
    and recomputes the rest in the backward pass.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if precision not in _PRECISION:
        raise ValueError(f"precision must be one of {tuple(_PRECISION)}, not {precision!r}")
    shape, p = shape_of(model), _PRECISION[precision]
    if method == "full":
        trainable = shape.n_params
        weights = shape.n_params * (p["weight"] + p["master"])
        gradients, optimizer = trainable * p["grad"], trainable * p["adam"]
    else:
        # Adapters are trained in fp32 (PEFT upcasts them), frozen weights need no gradient.
        trainable = shape.lora_params(r)
        frozen_linear = shape.linear_params * (NF4_BYTES if method == "qlora" else p["weight"])
        weights = frozen_linear + shape.other_params * p["weight"] + trainable * 4
        gradients, optimizer = trainable * 4, trainable * 8
    tokens = batch_size * seq_len
    per_block = shape.hidden if checkpointing else shape.activations_per_token(method != "full")
    activations = tokens * shape.layers * per_block * p["act"]
    if checkpointing:  # the block being recomputed holds its full activations again
        activations += tokens * shape.activations_per_token(method != "full") * p["act"]
    logits = batch_size * (loss_tokens if loss_tokens is not None else seq_len)
    activations += logits * shape.vocab * 4 * 3  # fp32 logits, log-softmax, their gradient
    return Estimate(shape.name, method, weights, gradients, optimizer, activations, trainable)


def table(models=tuple(SHAPES), methods=METHODS, **settings) -> str:
    """Estimated total training memory (GB) per model and method, as a plain-text table."""
    rows = [f"{'model':15} {'params':>8} " + " ".join(f"{m:>9}" for m in methods)]
    for name in models:
        shape = shape_of(name)
        totals = [estimate(shape, m, **settings).total / GB for m in methods]
        rows.append(f"{shape.name:15} {shape.n_params / 1e9:7.2f}B "
                    + " ".join(f"{t:8.1f}G" for t in totals))
    return "\n".join(rows)
