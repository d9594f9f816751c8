"""sets commands (being written)."""
