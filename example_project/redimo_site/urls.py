"""URLs of the example site."""

from django.urls import path

from accounts import views as accounts
from reports import views as reports

urlpatterns = [
    path("", reports.dashboard, name="home"),
    path("jobs/", reports.jobs, name="jobs"),
    path("jobs/<str:job_id>/", reports.job, name="job"),
    path("jobs/<str:job_id>/status/", reports.job_status, name="job-status"),
    path("cached/", reports.cached, name="cached"),
    path("sessions/", accounts.sessions, name="sessions"),
    path("sessions/end-all/", accounts.end_all, name="end-all"),
    path("accounts/login/", accounts.SignInView.as_view(), name="login"),
    path("accounts/logout/", accounts.SignOutView.as_view(), name="logout"),
]
