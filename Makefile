# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck unit schemas bench bench-short clean browser realpeer litellm \
	other-pythons translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# `make demo`: install and run the suite on the default providers.yaml (offline: only the
# builtin reference provider runs; relays without a key are skipped with "set VAR").
# It speaks the locale's language: `LANG=zh_CN.UTF-8 make demo` (or CONFORMANCE_LANG=zh-CN,
# or DEMO_ARGS=--lang=zh-CN) prints the summary and writes the reports in Chinese.
demo: $(BIN)/python
	$(PIP) install --quiet .
	LANG="$(LANG)" $(BIN)/conformance run $(DEMO_ARGS)

# `make translations`: extract every message (sources, report templates, each check's title
# and proves) into conformance/locale/*/LC_MESSAGES/conformance.po and compile the .mo shipped
# in the package, and rewrite the check tables of README.md and README.zh-CN.md. New messages
# arrive with an empty msgstr: translate them in the .po (see docs/glossary.zh-CN.md), run it
# again, commit. tests/test_i18n.py fails until every message is translated and the .mo
# matches; `check` lists what is left.
translations: $(VENV)/.test-deps
	$(BIN)/python scripts/i18n.py update
	$(BIN)/python scripts/i18n.py readme
	$(BIN)/python scripts/i18n.py check

$(VENV)/.test-deps: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e ".[test]"
	touch $@

lint: $(VENV)/.test-deps
	$(BIN)/ruff check conformance tests scripts benchmarks

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

# --dist loadfile: a module's tests stay in one worker, so its module- or session-scoped
# suite run (test_faults' run of every fault, the hostile runs, ...) happens once, not once per
# worker; tests/conftest.py collects the heaviest modules first. --durations: where the time
# went, printed at the end.
unit: $(VENV)/.test-deps
	$(BIN)/python -m pytest tests -n 2 --dist loadfile -q -m "not realpeer" --durations=15

# The guarantees that must hold on every supported Python, proven on the Pythons other than
# the one of .venv: a suite fault is that check's `error`, never the end of the run, and
# hostile providers cannot break a run or its reports (the suite runs in subprocesses of the
# same interpreter). scripts/other-python fetches Debian's build of each into .pythons/
# (~1 min the first time). --dist loadfile: each module's one suite run happens once.
OTHER_PYTHONS ?= 3.13
OTHER_PYTHON_TESTS ?= tests/test_hostile_limits.py tests/test_hostile_reports.py \
	tests/test_hostile_secrets.py tests/test_fuzzed_answers.py tests/test_verdicts.py \
	tests/test_plugin.py
other-pythons: $(BIN)/python
	@set -e; for version in $(OTHER_PYTHONS); do \
	  python=$$(HOST_PYTHON=$(BIN)/python scripts/other-python $$version); \
	  $$python -c 'import sys; print("Python", sys.version.split()[0], "at", sys.executable)'; \
	  $$python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider $(OTHER_PYTHON_TESTS); \
	done

# The whole suite against real third-party servers: llama.cpp with SmolLM2
# (tests/test_realpeer.py) and the LiteLLM proxy in front of the reference provider
# (tests/test_litellm.py). Installing builds llama.cpp: ~13 min on 2 cores the first time, then
# pip's wheel cache; LiteLLM installs from wheels (~1.5 min with an empty cache).
realpeer: $(VENV)/.test-deps
	$(BIN)/python -m conformance.localpeer --venv .peer-venv install --quiet
	$(BIN)/python -m conformance.litellm_peer --venv .litellm-venv install --quiet
	CONFORMANCE_REQUIRE_REALPEER=1 $(BIN)/python -m pytest tests -q -m realpeer

# Only the LiteLLM relay (tests/test_litellm.py).
litellm: $(VENV)/.test-deps
	$(BIN)/python -m conformance.litellm_peer --venv .litellm-venv install --quiet
	CONFORMANCE_REQUIRE_REALPEER=1 $(BIN)/python -m pytest tests/test_litellm.py -q

# `make test`: ruff, mypy and the suite's own tests.
test: lint typecheck unit

# Chromium and chromedriver for tests/test_browser.py (Debian packages; skipped when present).
# Without root the browser tests skip with a reason instead.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "chromium and chromedriver present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null && \
	  chromium --version; \
	else \
	  echo "not root: install chromium and chromium-driver to run the browser tests"; \
	fi
	@# CJK fonts, so screenshots of the Chinese matrix show characters, not boxes.
	@if fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  echo "CJK fonts present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    fonts-noto-cjk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install \
	    -y -qq fonts-wqy-zenhei >/dev/null; \
	  fc-list :lang=zh | head -1; \
	else \
	  echo "not root: install fonts-noto-cjk (or fonts-wqy-zenhei) for the Chinese matrix"; \
	fi

schemas: $(VENV)/.test-deps
	$(BIN)/python scripts/generate_schemas.py

# Every speed and scale figure next to its goal (README "Performance"); bench-short is the CI
# version (fewer providers, < 1 min on an idle machine).
# The package's bytecode is compiled first, as pip does when it installs the wheel (an editable
# install under PYTHONDONTWRITEBYTECODE would compile every module at every start).
bench: $(VENV)/.test-deps
	$(BIN)/python -m compileall -q conformance
	$(BIN)/python benchmarks/run.py

bench-short: $(VENV)/.test-deps
	$(BIN)/python -m compileall -q conformance
	$(BIN)/python benchmarks/run.py --short

clean:
	rm -rf $(VENV) .pythons build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
