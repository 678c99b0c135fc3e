"""Tiny random causal LMs (2 layers, width 32) with a real tokenizer: fast, and real HF model folders.

One place for their shape, so the session's ``tiny_model`` and the probe tests' planted models agree.
"""

from __future__ import annotations

from typing import Any


def tiny_causal_lm(tokenizer: Any, layout: str = "llama", max_positions: int = 1024) -> Any:
    """A randomly initialised 2-layer ``layout`` ("llama" or "gpt2") model sized for ``tokenizer``."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    if layout == "llama":
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=max_positions,
            **special,
        )
        return LlamaForCausalLM(config)
    if layout == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer), n_embd=32, n_inner=64, n_layer=2, n_head=2, n_positions=max_positions, **special
        )
        return GPT2LMHeadModel(config)
    raise ValueError(f"unknown layout {layout!r}: 'llama' or 'gpt2'")
