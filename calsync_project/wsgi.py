import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

from calsync_project.checks import refuse_development_fallbacks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calsync_project.settings")
_django = get_wsgi_application()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The web app; with DEBUG off and a development fallback in use it serves nothing, naming
    the variable (issue #13). Checked per request, not at import: importing stays side-effect free,
    and `gunicorn.conf.py` refuses to start the server at all."""
    refuse_development_fallbacks()
    response: Iterable[bytes] = _django(environ, start_response)
    return response
