"""Tests of culturesafe_ext/data/."""
