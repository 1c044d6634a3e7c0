# Two commands: `make demo` and `make test`. Everything else is on the way.

# The newest CPython 3.13 or 3.12 the machine has (on PATH, or installed with
# pyenv), else python3 (3.11 and later work). From 3.12 on, coverage measures
# through sys.monitoring ([tool.coverage.run] core): on a sample of the suite
# it cost no measurable CPU on 3.13, and three quarters more on 3.11, whose
# trace function runs on every call.
ifndef PYTHON
PYTHON := $(shell for v in 3.13 3.12; do \
	for p in python$$v "$$(pyenv root 2>/dev/null)"/versions/$$v*/bin/python$$v; do \
	"$$p" -c '' 2>/dev/null && { echo "$$p"; exit; }; \
	done; done; echo python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IDP_PORT ?= 5000
DEMO_RP_PORT ?= 5001
# Two pytest workers more than there are cores: flow tests spend much of their
# time waiting (for a browser, a process, a stream), which others fill (on 2
# cores: 3 workers kept them 65 % busy, 4 workers 77 %).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 2 )))

# uv from PATH, or bootstrapped once into .tools/ with the system's pip.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

CATALOGS := $(wildcard idp/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: demo test bench lint lock format translations extract-messages clean

demo: $(STAMP) $(COMPILED)
	$(BIN)/idp demo --port $(IDP_PORT) --rp-port $(DEMO_RP_PORT)

# Coverage includes the processes the tests start ([tool.coverage] in
# pyproject.toml) and must stay at or above its fail_under.
# PYTEST_ARGS: more options, e.g. PYTEST_ARGS="--junitxml=artifacts/junit.xml".
# Bytecode is compiled beforehand: where PYTHONDONTWRITEBYTECODE is set (as on
# our CI machines), every process the tests start would otherwise compile
# every module it imports from source, 4 s of CPU for `import idp.app`. pytest
# runs with it unset: it keeps its assertion-rewritten test modules only where
# bytecode may be written, and otherwise parses and rewrites every test module
# again in every worker (a quarter of a short run's CPU).
test: $(STAMP) $(COMPILED)
	$(BIN)/python -m compileall -q -j 0 idp clients tests bench
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --cov=idp --cov=clients --cov-report=term:skip-covered $(PYTEST_ARGS)

# The benchmark (README, "Benchmark"): both backends and C, a few minutes;
# SOAK=1 adds ten minutes of every scenario per backend. BENCH_ARGS: more
# options of `python -m bench`, e.g. BENCH_ARGS="--backends embedded --rounds 5".
bench: $(STAMP) $(COMPILED)
	$(BIN)/python -m compileall -q -j 0 idp clients bench
	$(BIN)/python -m bench $(if $(SOAK),--soak) $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

translations: $(COMPILED)

# After changing user-facing strings: refresh the catalogs, then translate.
extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o idp/translations/messages.pot .
	$(BIN)/pybabel update -i idp/translations/messages.pot -d idp/translations

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -f -i $< -o $@

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q uv

# The versions come from requirements.lock (every dependency, for Python 3.11
# and later): a new release of a dependency changes nothing until `make lock`.
$(STAMP): pyproject.toml requirements.lock $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]' --constraints requirements.lock
	touch $@

# After changing the dependencies in pyproject.toml, or to take newer releases.
lock: $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) pip compile -q --upgrade pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage artifacts
	find idp -name '*.mo' -delete
