"""Tests of culturesafe_ext/grounding/."""
