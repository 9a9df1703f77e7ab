PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test test-browser bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

## make run: the whole platform with a demo (embedded Redis unless REDIS_URL is set)
run: $(VENV)/.installed
	$(PY) -m waplatform.launcher

## make test: the whole suite, on a Redis server of its own
test: $(VENV)/.installed-test
	$(PY) -m waplatform.embedded_redis -- $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
