from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.board, name="board"),
    path("rerun/", views.board_rerun, name="board_rerun"),
    path("tasks/<str:slug>/", views.task_detail, name="task_detail"),
    path("tasks/<str:slug>/rerun/", views.task_rerun, name="task_rerun"),
    path("tasks/<str:slug>/rerun/preview/", views.task_rerun_preview, name="task_rerun_preview"),
    path("tasks/<str:slug>/repair/", views.task_repair, name="task_repair"),
    path("tasks/<str:slug>/repair/preview/", views.task_repair_preview, name="task_repair_preview"),
    path("tasks/<str:slug>/cancel/", views.task_cancel, name="task_cancel"),
    path("tasks/<str:slug>/launch/", views.task_launch, name="task_launch"),
    path("plans/", views.plans, name="plans"),
    path("plans/<uuid:plan_id>/resume/", views.plan_resume, name="plan_resume"),
    path("plans/<uuid:plan_id>/rerun/", views.plan_rerun, name="plan_rerun"),
    path("native-runs/", views.native_runs, name="native_runs"),
    path("deliveries/", views.deliveries, name="deliveries"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
