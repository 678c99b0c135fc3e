"""End-to-end tests: each starts a subprocess (lm_eval, accelerate, the culturesafe CLI, a benchmark script)."""
