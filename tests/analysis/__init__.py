"""Tests of culturesafe_ext/analysis/."""
