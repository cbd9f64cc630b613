"""The WSGI application (gunicorn missioncontrol.wsgi, see gunicorn.conf.py;
runserver uses it too, through WSGI_APPLICATION).

Django answers every error of a request it could build through its error
hooks (missioncontrol.errorpages). A few requests fail while Django builds
them, before any hook or middleware: a Content-Type header it cannot parse
(BadRequest), a charset such as ``rot13`` that it then uses to decode the
query string (LookupError). Those would reach the server as unhandled
exceptions and come back as its HTML 500. The guard refuses a charset other
than UTF-8 before Django sees the request, and answers any failure to build
one as a 400: in the API's JSON shape under /api/, a plain page elsewhere.
"""

import logging
import os

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.wsgi import get_wsgi_application

from missioncontrol.errorpages import wsgi_error
from missioncontrol.middleware import environ_charset_refusal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")

logger = logging.getLogger("missioncontrol.errors")
# What building a request from a hostile environ raises: Django's own
# refusals, and the codec and parsing errors it does not catch.
BUILD_ERRORS = (BadRequest, SuspiciousOperation, LookupError, UnicodeError, ValueError)


class GuardedApplication:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        refused = environ_charset_refusal(environ)
        if refused is not None:
            return wsgi_error(environ, start_response, *refused)
        try:
            return self.app(environ, start_response)
        except Exception as exc:
            if isinstance(exc, BUILD_ERRORS):
                logger.info("refused a request Django could not build", exc_info=True)
                return wsgi_error(environ, start_response, 400)
            logger.exception("unhandled error outside Django's request handling")
            return wsgi_error(environ, start_response, 500)


application = GuardedApplication(get_wsgi_application())
