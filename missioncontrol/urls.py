from django.contrib import admin
from django.urls import include, path

from . import views
from .observability.views import metrics

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("missioncontrol.api.urls")),
    # The operator dashboard: board at /, login and logout under accounts/.
    path("", include("missioncontrol.web.urls")),
]

# Errors outside a view's own handling: the API's JSON error shape under
# /api/, a small HTML page elsewhere; never a stack trace (errorpages.py).
handler400 = "missioncontrol.errorpages.bad_request"
handler403 = "missioncontrol.errorpages.permission_denied"
handler404 = "missioncontrol.errorpages.page_not_found"
handler500 = "missioncontrol.errorpages.server_error"
