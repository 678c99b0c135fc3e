"""Neuron-activation probing: which MLP neurons fire on which task, and how two groups' top neurons overlap.

``layout`` finds the MLP neurons of a model, ``stats`` keeps per-task running statistics of them,
``recorder`` fills those statistics from forward hooks, ``compare`` contrasts two groups of stats files.
The lm-eval model that drives all of this is :mod:`culturesafe_ext.models.probe` (``--model hf-probe``).
"""
