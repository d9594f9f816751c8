"""Views for the session tests: log in, write and read the session, log out."""

import threading

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def log_in(request: HttpRequest) -> HttpResponse:
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return HttpResponse(status=403)
    login(request, user)
    return HttpResponse("ok")


def write(request: HttpRequest) -> HttpResponse:
    request.session["note"] = request.POST["note"]
    return HttpResponse("ok")


def read(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"note": request.session.get("note"), "user": request.user.get_username() or None})


LOADED, PROCEED = threading.Event(), threading.Event()


def slow_write(request: HttpRequest) -> HttpResponse:
    """Loads the session, waits while another request logs out, then writes."""
    request.session.get("note")
    LOADED.set()
    PROCEED.wait(30)
    request.session["note"] = request.POST["note"]
    return HttpResponse("ok")


def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("ok")


urlpatterns = [path("login", log_in), path("write", write), path("read", read), path("logout", log_out),
               path("slow-write", slow_write)]
