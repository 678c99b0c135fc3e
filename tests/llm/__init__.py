"""Tests of culturesafe_ext/llm/."""
