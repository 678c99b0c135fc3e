"""File and key names shared by the recipes that write model folders and the code that reads them.

A training recipe writes these names, ``hf-router`` and the analysis read them: they live here, below all of
them, so no reader imports a recipe (or a model class) for a file name.
"""

from __future__ import annotations

from culturesafe_ext.data.splits import TRAINING_MANIFEST

ROUTER_FILE = "router.json"  # the trained culture router's classifier head and classes
ROUTER_EVAL_FILE = "router_eval.json"  # its held-out evaluation
ADAPTERS_SUMMARY_FILE = "adapters.json"  # what `culturesafe train adapters` trained, per culture
SPLIT_FILE = "split.json"  # the description-level split a recipe trained on
ROUTE_KEY = "culturesafe_route"  # the route tag hf-router adds to each request's logged arguments

__all__ = ["ADAPTERS_SUMMARY_FILE", "ROUTER_EVAL_FILE", "ROUTER_FILE", "ROUTE_KEY", "SPLIT_FILE", "TRAINING_MANIFEST"]
