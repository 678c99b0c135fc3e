"""lm-eval model wrappers registered by name, and the offline demo model."""
