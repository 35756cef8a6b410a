# The two commands: `make demo` and `make test`. Both build .venv from nothing when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit lint bench record-histories clean venv browser promtool postgres

# The local Slack workspace (localslack/) is a package of its own, outside the product wheel and
# image; `provision dev` and the tests use it, so the venv gets both, in one resolve.
$(STAMP): pyproject.toml localslack/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "make: installing into $(VENV): pip, then provision, localslack and the dev tools (20 to 60 s)…"
	@# -qq: errors only. pip's own notices and setuptools' editable-install banner are noise here.
	@$(BIN)/python -m pip install -qq --upgrade pip
	@$(BIN)/python -m pip install -qq --progress-bar off -e ./localslack -e '.[dev]'
	@echo "make: $(VENV) is ready"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/provision dev

# The browser tests drive Debian's chromium (Playwright's own browser download cannot work
# offline). As root (CI) it is installed when missing, with an emoji font for the screenshots;
# elsewhere those tests skip and say how to get it.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ( apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		chromium fonts-noto-color-emoji )

# promtool checks metrics/prometheus.yml (tests/e2e/test_metrics.py). When it is missing it is taken
# from Debian's prometheus package and unpacked into the venv (about 3 s, plus `apt-get update`
# when apt has no package lists yet). Installing the package would also start a Prometheus
# service on :9090 on hosts with systemd, the port the metrics compose file publishes.
promtool: $(STAMP)
	@command -v promtool >/dev/null || test -x $(BIN)/promtool || { \
	  if ! command -v apt-get >/dev/null; then \
	    echo "make: promtool is missing and there is no apt-get: install Prometheus's promtool" \
	      "(tests/e2e/test_metrics.py checks metrics/prometheus.yml with it)" >&2; exit 0; fi; \
	  echo "make: fetching promtool from Debian's prometheus package into $(BIN)"; \
	  tmp=$$(mktemp -d); \
	  ( cd $$tmp && { apt-get download -qq prometheus 2>/dev/null \
	    || { apt-get update -qq && apt-get download -qq prometheus; }; } ) \
	  && dpkg-deb --fsys-tarfile $$tmp/prometheus_*.deb | tar -xO ./usr/bin/promtool > $$tmp/promtool \
	  && chmod 755 $$tmp/promtool && mv $$tmp/promtool $(BIN)/promtool \
	  || echo "make: could not fetch promtool; tests/e2e/test_metrics.py will say what is missing" >&2; \
	  rm -rf $$tmp; }

# PostgreSQL's initdb and pg_ctl for the shared-state tests (tests/e2e/test_shared_state.py) and
# `provision dev --shared`, which start throwaway clusters of their own. As root they are installed
# from Debian's postgresql package when missing (Debian keeps them in /usr/lib/postgresql/<ver>/bin,
# which the project searches); elsewhere those tests skip and say how to get them. Debian's
# package also creates a default cluster and, on hosts with systemd, starts it on :5432; nothing
# here uses that one.
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || { \
	  echo "make: installing Debian's postgresql (initdb, pg_ctl) for the shared-state tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	       apt-get install -y -q --no-install-recommends postgresql; } \
	  || echo "make: could not install postgresql; tests/e2e/test_shared_state.py will skip" >&2; }

# lint-imports checks the arrows between the rooms (../shared/DESIGN.md), stated as contracts in
# pyproject.toml's [tool.importlinter].
test: $(STAMP) browser promtool postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: $(STAMP) promtool
	$(BIN)/python -m pytest -q -m "not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/slack.py
	$(BIN)/python bench/codec.py
	$(BIN)/python bench/scale.py --runs 50 --waiting 300 --shared-runs 20

record-histories: $(STAMP)
	$(BIN)/python tests/histories/record.py

clean:
	rm -rf $(VENV) .data .pytest_cache .import_linter_cache .grimp_cache
