"""Dataset schemas and the one loader every task goes through."""
