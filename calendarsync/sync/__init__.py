"""The sync engine and its parts: no request, no Celery, no HTTP of its own (see the README's map)."""
