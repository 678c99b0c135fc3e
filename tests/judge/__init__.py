"""Tests of culturesafe_ext/judge/."""
