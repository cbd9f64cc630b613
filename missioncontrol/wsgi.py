"""The WSGI application (gunicorn missioncontrol.wsgi, see gunicorn.conf.py).

Django answers every error of a request it could build through its error
hooks (missioncontrol.errorpages). A few requests fail while Django builds
them, before any hook: a Content-Type header Django cannot parse raises
BadRequest from the request's constructor, which would reach the server as
an unhandled exception and its HTML 500. The guard answers those itself, in
the API's JSON shape under /api/.
"""

import logging
import os

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")

logger = logging.getLogger("missioncontrol.errors")


class GuardedApplication:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        from missioncontrol.errorpages import wsgi_error

        try:
            return self.app(environ, start_response)
        except (BadRequest, SuspiciousOperation):
            logger.info("refused a request Django could not build", exc_info=True)
            return wsgi_error(environ, start_response, 400)
        except Exception:
            logger.exception("unhandled error outside Django's request handling")
            return wsgi_error(environ, start_response, 500)


application = GuardedApplication(get_wsgi_application())
