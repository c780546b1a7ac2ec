# offer-engine: every workflow goes through these targets (CI uses them too).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
OFFERS  := $(BIN)/offers
DEMO    ?= build/demo
AS_OF   ?=
SEED    ?= 7
DATA    ?= $(DEMO)/data
PORT    ?= 50051
PROCESSES ?= 1
CUSTOMER ?= 42
CART    ?= 341
VERSION ?=
BUDGET  ?= 50000
SEGMENT ?= all
CAMPAIGN_ID ?= demo

.PHONY: install proto data validate features train evaluate uplift promote serve ask campaign report serve-check demo \
	test test-slow lint bench clean

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
	$(OFFERS) validate $(DATA)

features: install
	$(OFFERS) features --data $(DATA) $(if $(AS_OF),--as-of $(AS_OF),) --out $(DEMO)/features.parquet

train: install  ## train, evaluate, register in MLflow and promote if not worse
	$(OFFERS) train --data $(DATA) --out $(DEMO)/run --promote

evaluate: install  ## offline evaluation report (ours vs baselines) for DATA
	$(OFFERS) evaluate --data $(DATA) --out $(DEMO)/evaluation

SHARED  ?= ../shared/data
uplift: install  ## response models on the real experiments (Hillstrom, dunnhumby)
	$(OFFERS) evaluate-uplift --src $(SHARED) --out $(DEMO)/uplift

promote: install  ## make VERSION the champion if it is not worse (FORCE=1 to insist)
	$(OFFERS) promote --version $(VERSION) $(if $(FORCE),--force,)

serve: install  ## run the gRPC service on the champion model
	$(OFFERS) serve --port $(PORT) --processes $(PROCESSES)

ask: install  ## one GetOffers call to a running service
	$(OFFERS) ask --target 127.0.0.1:$(PORT) --customer $(CUSTOMER) --cart $(CART)

campaign: install  ## a budgeted offer plan for a segment over the champion model
	$(OFFERS) campaign --budget $(BUDGET) --segment $(SEGMENT) --campaign-id $(CAMPAIGN_ID) \
		--out $(DEMO)/campaign-$(CAMPAIGN_ID).csv

report: campaign  ## play the demo campaign out (synthetic world), then its result and KPI reports
	$(OFFERS) playout --data $(DATA) --campaign $(DEMO)/campaign-$(CAMPAIGN_ID).csv \
		--campaign-id $(CAMPAIGN_ID) --out $(DEMO)/after-campaign
	$(OFFERS) report campaign --data $(DEMO)/after-campaign --campaign-id $(CAMPAIGN_ID) \
		--out $(DEMO)/report/campaign
	$(OFFERS) report kpi --data $(DEMO)/after-campaign --out $(DEMO)/report/kpi

# serve in the background, answer one real gRPC request, stop the server
serve-check: install
	@mkdir -p $(DEMO)
	$(OFFERS) serve --port $(PORT) > $(DEMO)/serve.log 2>&1 & echo $$! > $(DEMO)/serve.pid
	$(OFFERS) ask --target 127.0.0.1:$(PORT) --customer $(CUSTOMER) --cart $(CART) -k 3 \
		--wait 120; rc=$$?; kill $$(cat $(DEMO)/serve.pid); wait; exit $$rc

demo: data validate features train campaign report serve-check  ## the main job end to end on synthetic data
	@echo "demo done: data, features, report and model bundle under $(DEMO); MLflow in $(or $(OFFERS_HOME),$(CURDIR))/mlflow.db unless MLFLOW_TRACKING_URI is set"

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy features synth training evaluation service offers

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf build $(VENV)
