from rest_framework.routers import SimpleRouter

from .views import AttemptViewSet, NativeRunViewSet

router = SimpleRouter()
router.register("attempts", AttemptViewSet, basename="attempt")
router.register("native-runs", NativeRunViewSet, basename="native-run")

urlpatterns = router.urls
