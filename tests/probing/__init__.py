"""Tests of culturesafe_ext/probing/."""
