from django.urls import re_path
from rest_framework.routers import SimpleRouter

from missioncontrol.api.validators import SLUG_PATH_REGEX

from .views import AgentViewSet, BulkRerunViewSet, PlanViewSet, ProcedureViewSet, ProjectViewSet, TaskAttemptList, TaskEventList, TaskViewSet

router = SimpleRouter()
router.register("agents", AgentViewSet, basename="agent")
router.register("projects", ProjectViewSet, basename="project")
router.register("procedures", ProcedureViewSet, basename="procedure")
router.register("plans", PlanViewSet, basename="plan")
router.register("tasks", TaskViewSet, basename="task")
router.register("reruns", BulkRerunViewSet, basename="rerun")

urlpatterns = [
    re_path(rf"^tasks/(?P<slug>{SLUG_PATH_REGEX})/attempts/$", TaskAttemptList.as_view(), name="task-attempts"),
    re_path(rf"^tasks/(?P<slug>{SLUG_PATH_REGEX})/events/$", TaskEventList.as_view(), name="task-events"),
    *router.urls,
]
