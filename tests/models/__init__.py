"""Tests of culturesafe_ext/models/."""
