"""Sign-in and sign-out (Django's views, recording each session's browser) and the sessions page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from redimo_django.sessions import SessionStore
from redimo_site.data import data

from . import tracking
from .tracking import forget, hash_key, record_sign_in, user_sessions


class SignInView(LoginView):
    template_name = "registration/login.html"

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        record_sign_in(self.request)
        return response


class SignOutView(LogoutView):
    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        forget(request)
        return super().post(request, *args, **kwargs)


@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    return render(request, "sessions.html", {"rows": user_sessions(request), "seen_every": tracking.SEEN_EVERY})


@login_required
@require_POST
def end_all(request: HttpRequest) -> HttpResponse:
    """Sign out everywhere: every session of the user ends, this one too."""
    ended = SessionStore.end_user_sessions(request.user.pk)
    data().delete(hash_key(request.user.pk))
    logout(request)
    messages.success(request, f"Signed out everywhere: {ended} session{'' if ended == 1 else 's'} ended.")
    return redirect("login")
