"""REST API v1, mounted at /api/v1/ by missioncontrol/urls.py."""

from django.urls import include, path, re_path

from .errors import api_not_found
from .views import DocsView, SchemaView

app_name = "api"

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
    path("", include("planning.api.urls")),
    path("", include("retries.api.urls")),
    # Last: any other path under /api/v1/ is a 404 in the API's error shape.
    re_path(r"^[\s\S]*$", api_not_found),
]
