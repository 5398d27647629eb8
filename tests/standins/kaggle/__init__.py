"""Stand-in for the `kaggle` package (the official Kaggle API client), for tests and `make full-check` only: it is put
in front of the real package by adding tests/standins to sys.path / PYTHONPATH. Like kaggle 2.2.4's __init__, importing
it builds `api` and tries to authenticate, keeping quiet about failure."""
from kaggle.api.kaggle_api_extended import KaggleApi

__version__ = '2.2.4+standin'

api = KaggleApi()
try: api.authenticate()
except (Exception, SystemExit): pass
