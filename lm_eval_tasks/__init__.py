"""culturesafe's lm-eval task YAMLs, one folder per benchmark (installed as ``culturesafe_ext.lm_eval_tasks``).

A package so that lm-eval's ``lm_eval.tasks`` entry point (EleutherAI/lm-evaluation-harness#4015), which
scans the folder of the package it names, finds exactly this folder; the YAMLs are the content.
"""
