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
