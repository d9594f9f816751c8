"""hyperloglog commands (being written)."""
