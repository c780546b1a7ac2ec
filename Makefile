# offer-engine: every workflow goes through these targets (CI uses them too).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
OFFERS  := $(BIN)/offers
DEMO    ?= build/demo
AS_OF   ?=
SEED    ?= 7

.PHONY: install proto data validate features demo test test-slow lint bench clean

$(BIN)/offers: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/offers

proto: install  ## regenerate service/gen/ from proto/ (commit the result)
	$(BIN)/python -m grpc_tools.protoc -Iservice/gen=proto --python_out=. --pyi_out=. --grpc_python_out=. proto/offers/v1/offers.proto

data: install  ## synthetic world for the demo
	$(OFFERS) synth --out $(DEMO)/data --customers 5000 --items 400 --days 365 --seed $(SEED)

validate: install
	$(OFFERS) validate $(DEMO)/data

features: install
	$(OFFERS) features --data $(DEMO)/data $(if $(AS_OF),--as-of $(AS_OF),) --out $(DEMO)/features.parquet

demo: data validate features  ## the main job end to end on synthetic data
	@echo "demo done: $(DEMO)"

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy features synth training service offers

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf build $(VENV)
