"""Tests of culturesafe_ext/tasks/."""
