from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("missioncontrol.api.urls")),
    # The operator dashboard: board at /, login and logout under accounts/.
    path("", include("missioncontrol.web.urls")),
]
