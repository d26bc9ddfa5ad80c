"""WSGI entry point for gunicorn: `gunicorn "platforma.wsgi:app"` with PLATFORMA_CONFIG set."""
import platforma.core.mail  # noqa: F401  (registers the mail job handler)
from platforma.app import create_app

app = create_app()
