"""Knowledge grounding for generation and scoring: where the knowledge comes from and how it is used.

- :mod:`~culturesafe_ext.grounding.prompts`: where the knowledge goes in a request and how it is elicited;
- :mod:`~culturesafe_ext.grounding.retrieve`: a BM25 index (``bm25s``) over a knowledge source;
- :mod:`~culturesafe_ext.grounding.cad`: context-aware (contrastive) decoding and scoring, both streams
  of every row in one batched forward pass, each with its own KV cache.

The lm-eval model that uses them is :class:`culturesafe_ext.models.grounded.GroundedHFLM` (``hf-grounded``).
"""
