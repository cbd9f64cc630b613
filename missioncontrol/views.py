from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """Anonymous liveness: ok only when the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any failure to query means not healthy
        return JsonResponse({"status": "error"}, status=503)
    return JsonResponse({"status": "ok"})
