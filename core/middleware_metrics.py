import time

from core.metrics import HTTP_DURATION


class HttpDurationMiddleware:
    """Request duration by route pattern (not raw path, which would explode label cardinality)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        HTTP_DURATION.labels(route or "unmatched", request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response
