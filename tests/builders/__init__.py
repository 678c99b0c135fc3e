"""Tests of the builders (culturesafe_ext.builders, from the top-level builders/ folder)."""
