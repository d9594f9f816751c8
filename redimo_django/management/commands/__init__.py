"""redimo_createtable."""
