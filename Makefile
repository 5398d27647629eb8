# Everything a student or CI needs, in two commands:
#   make lessons   run every lesson notebook on the sample data, write executed copies to out/, print a table
#   make test      run every notebook as a test (library notebooks as nbdev_test does, lessons as Jupyter's Run All) and pytest tests/
#   make test-browser  every lesson in JupyterLab, driven by headless Chromium (needs: apt-get install -y chromium)
#   make full-check  every lesson in full mode on stand-ins of Kaggle and of the ImageNet weights (see .ci/full_check.py)
# Both create (or reuse) the virtual environment .venv with the pinned versions in requirements.txt.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lessonkit-installed

.PHONY: lessons test test-browser bench readme export clean-nbs check-sync install pretrain-sample full-check

install: $(STAMP)

$(STAMP): requirements.txt settings.ini setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name lessonkit --display-name "Python (lessonkit)" >/dev/null
	@touch $(STAMP)

lessons: $(STAMP)
	$(PY) .ci/run_lessons.py

# every lesson with LESSONKIT_FULL=1 against local stand-ins of Kaggle and of the ImageNet weights (tiny data)
full-check: $(STAMP)
	$(PY) .ci/full_check.py

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist worksteal --durations=15 --ignore=tests/test_browser.py tests/

# JupyterLab from .venv, each lesson run with Run > Run All Cells in headless Chromium; screenshots in out/
test-browser: $(STAMP)
	$(PY) -m pytest -v -rs tests/test_browser.py

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

# lessonkit's own pretrained body for the samples (data/pretrained/resnet18-sample.pth): about 45 minutes on one CPU core
pretrain-sample: $(STAMP)
	$(PY) -c 'from lessonkit.pretrain import main; main()'
