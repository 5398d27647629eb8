# Everything a student or CI needs, in two commands:
#   make lessons   run every lesson notebook on the sample data, write executed copies to out/, print a table
#   make test      run every notebook as a test (cells flagged `full` skipped) and pytest tests/
#   make full-check  every lesson in full mode on stand-ins of Kaggle and of the ImageNet weights (see .ci/full_check.py)
# Both create (or reuse) the virtual environment .venv with the pinned versions in requirements.txt.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lessonkit-installed

.PHONY: lessons test bench readme export clean-nbs check-sync install full-check

install: $(STAMP)

$(STAMP): requirements.txt settings.ini setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lessons: $(STAMP)
	$(PY) .ci/run_lessons.py

# every lesson with LESSONKIT_FULL=1 against local stand-ins of Kaggle and of the ImageNet weights (tiny data)
full-check: $(STAMP)
	$(PY) .ci/full_check.py

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist worksteal tests/

bench: $(STAMP)
	$(PY) bench/run.py

# nbs/index.ipynb is the README: never edit README.md by hand.
readme: $(STAMP)
	$(PY) .ci/make_readme.py

export: $(STAMP)
	$(VENV)/bin/nbdev_export

clean-nbs: $(STAMP)
	$(VENV)/bin/nbdev_clean --clear_all

# what CI checks besides the tests: notebooks, package and README agree, notebooks are clean
check-sync: $(STAMP)
	$(VENV)/bin/nbdev_export
	$(VENV)/bin/nbdev_clean --clear_all
	$(PY) .ci/make_readme.py
	@test -z "$$(git status --porcelain -- lessonkit nbs README.md)" || { git status --short -- lessonkit nbs README.md; git diff --stat -- lessonkit nbs README.md; echo "Notebooks, lessonkit/ or README.md are out of sync (or a notebook is not clean): run 'make export clean-nbs readme' and commit."; exit 1; }
