"""REST API v1, mounted at /api/v1/ by missioncontrol/urls.py: every
endpoint of the project, one module per concept."""

from django.urls import URLPattern, path, re_path
from rest_framework.routers import SimpleRouter

from .attempts import AttemptViewSet
from .catalog import AgentViewSet, ProcedureViewSet, ProjectViewSet
from .errors import api_not_found
from .native_runs import NativeRunViewSet
from .plans import PlanViewSet
from .report_path import lean_reports
from .tasks import BulkRerunViewSet, TaskAttemptList, TaskEventList, TaskViewSet
from .validators import SLUG_PATH_REGEX
from .views import DocsView, SchemaView
from .webhooks import WebhookViewSet

app_name = "api"

router = SimpleRouter()
router.register("agents", AgentViewSet, basename="agent")
router.register("projects", ProjectViewSet, basename="project")
router.register("procedures", ProcedureViewSet, basename="procedure")
router.register("plans", PlanViewSet, basename="plan")
router.register("tasks", TaskViewSet, basename="task")
router.register("reruns", BulkRerunViewSet, basename="rerun")
router.register("attempts", AttemptViewSet, basename="attempt")
router.register("native-runs", NativeRunViewSet, basename="native-run")
# An extension of the contract (README, "Alerts"): admin role only.
router.register("webhooks", WebhookViewSet, basename="webhook")

# Single reports, the executors' most frequent request, take a lean path
# in front of the view set (report_path.py); the route and its name stay.
for _pattern in router.urls:
    if isinstance(_pattern, URLPattern) and _pattern.name == "native-run-list":
        _pattern.callback = lean_reports(_pattern.callback)

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
    re_path(rf"^tasks/(?P<slug>{SLUG_PATH_REGEX})/attempts/$", TaskAttemptList.as_view(), name="task-attempts"),
    re_path(rf"^tasks/(?P<slug>{SLUG_PATH_REGEX})/events/$", TaskEventList.as_view(), name="task-events"),
    *router.urls,
    # Last: any other path under /api/v1/ is a 404 in the API's error shape.
    re_path(r"^[\s\S]*$", api_not_found),
]
