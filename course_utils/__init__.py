"""course_utils: the plumbing and the production path of the fine-tuning course.

Each chapter writes its lesson out in the notebook first (the loss, the LoRA layer, the
metric); then it calls the real libraries through these modules, which keep the fast-changing
library details (TRL, PEFT, transformers) in one place. `show_source(fn)` prints any helper.

Modules: env (profile, device, seed), models (registry, loading), data (JSONL), evals
(generation, scores, intervals, paired tests, forgetting probes, A/B test sizes), rag
(retrieval), decide (chapter 00's checklist and costs), plots, train (SFT, DPO and
distillation through TRL, measured; adapters saved with metadata; the private TRL names its
fast paths need are all in trl_internals), memory (the
training-memory calculator, one device or sharded over N), scale (what N sharded processes
really hold, measured with torchrun), serve (adapter registry with promote and rollback, merging, a
local OpenAI-compatible endpoint), runs (the run cache: the course's shared fine-tunes and
prompt answers, computed once by `make runs`), benchmarks (the sections of docs/benchmarks.md),
results (the headline numbers in docs/results.json and the README table), tune and
tune_report (`course tune`: the course's steps on a learner's own file, chapter 09).
"""

import logging

# On CPUs with AVX-512 BF16, bitsandbytes (imported by PEFT) logs at import that an optional
# faster 4-bit kernel from the `kernels` package is missing, then uses its own: nothing for a
# learner to do, so the notice is kept out of every chapter's output.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from .env import get_profile, setup, show_source, timer, to_device  # noqa: F401
from .models import load_model  # noqa: F401
from .results import record as record_result  # noqa: F401  (docs/results.json, README table)

__version__ = "0.1.0"
