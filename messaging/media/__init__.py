"""Media files: limits (WhatsApp's per-type rules), storage (Django's storage API), signed links.

The writes (fetch, store, upload, retention) are services in
messaging/services/media.py; this package holds the pieces they share with the
views that serve bytes. docs/media.md describes the whole.
"""
