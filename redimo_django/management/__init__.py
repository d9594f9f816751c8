"""Django management commands of redimo_django."""
