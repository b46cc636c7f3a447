import os

from django.core.wsgi import get_wsgi_application

from calsync_project.checks import refuse_development_fallbacks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calsync_project.settings")
application = get_wsgi_application()
# The web server refuses to serve with DEBUG off and a development fallback in use (issue #13).
refuse_development_fallbacks()
