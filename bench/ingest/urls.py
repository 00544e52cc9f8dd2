"""The project's URLs plus the reference: a view that does nothing but answer 202."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def accepted(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"id":0,"seq":0}', status=202, content_type="application/json")


urlpatterns = [path("bench/accepted", accepted), path("", include("responder.urls"))]
