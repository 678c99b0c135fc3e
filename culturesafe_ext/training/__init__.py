"""Training recipes compared on the harness (grounded DPO, per-culture adapters, the culture router)."""
