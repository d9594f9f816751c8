"""The dashboard, the report jobs, and a page cached with cache_page."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import cache_page
from django.views.decorators.vary import vary_on_cookie

from redimo_celery.locks import AlreadyQueued
from redimo_site import celery_app, config
from redimo_site.data import data

from .tasks import FEED_LENGTH, PARTS_AT_ONCE, REGIONS, part_id, report, total_id

RECENT_JOBS = 10
REPORT_LABELS = {"PENDING": "QUEUED", "RETRY": "RUNNING"}  # the report task waits for its chord by retrying
CACHE_STATUS = b"<!--cache-status-->"


class ReportForm(forms.Form):
    region = forms.ChoiceField(choices=[(region, region) for region in REGIONS])
    weeks = forms.TypedChoiceField(choices=[(n, f"{n} weeks") for n in (4, 6, 8, 12)], coerce=int, initial=6)


def _at(stamp: Any) -> datetime | None:
    return datetime.fromtimestamp(float(stamp), timezone.utc) if stamp is not None else None


def task_states(task_ids: list[str]) -> list[dict[str, Any]]:
    """Celery's stored meta of each task (1 BatchGetItem); PENDING when none is stored yet."""
    backend = celery_app.backend
    stored = backend.mget([backend.get_key_for_task(task_id) for task_id in task_ids]) if task_ids else []
    return [backend.decode_result(raw) if raw else {"status": "PENDING", "result": None} for raw in stored]


def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    """The state of a report and of each of its parts, for the job page's poller."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "signed out"}, status=401)
    return JsonResponse(_status(_job(job_id)))


def _job(job_id: str) -> dict[str, Any]:
    stored = data().get(f"job:{job_id}")
    if stored is None:
        raise Http404("no such job")
    return json.loads(stored)


def _status(job: dict[str, Any]) -> dict[str, Any]:
    ids = [job["id"], total_id(job["id"])] + [part_id(job["id"], i) for i in range(job["weeks"])]
    report_meta, total_meta, *part_metas = task_states(ids)
    parts = []
    for index, meta in enumerate(part_metas):
        result = meta["result"] if meta["status"] == "SUCCESS" else None
        parts.append({"week": index + 1, "state": meta["status"],
                      "detail": f"{result['orders']} orders, ${result['revenue']:,.0f} (worker {result['worker']})"
                      if result else ""})
    state = report_meta["status"]
    return {"state": REPORT_LABELS.get(state, state), "celery_state": state, "total_state": total_meta["status"],
            "parts": parts, "result": report_meta["result"] if state == "SUCCESS" else None,
            "done": state in ("SUCCESS", "FAILURE")}


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    """The report form (POST starts a report, refused while the same one runs) and recent jobs."""
    form = ReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        region, weeks = form.cleaned_data["region"], form.cleaned_data["weeks"]
        job_id = uuid.uuid4().hex[:12]
        try:
            report.apply_async((region, weeks), task_id=job_id)
        except AlreadyQueued as busy:
            messages.error(request, f"A {weeks}-week report for {region} is already running: it was not started "
                                    f"again. Wait for it to finish (its lock lapses in {busy.countdown:.0f} s "
                                    f"at the latest).")
            return redirect("jobs")
        job = {"id": job_id, "region": region, "weeks": weeks, "user": request.user.get_username(),
               "started": time.time()}
        with data().pipeline() as pipe:
            pipe.set(f"job:{job_id}", json.dumps(job), ex=86400)
            pipe.lpush("jobs", job_id)
            pipe.ltrim("jobs", 0, RECENT_JOBS - 1)
            pipe.xadd("feed", {"text": f"{job['user']} started a {weeks}-week report for {region}",
                               "kind": "start", "at": f"{time.time():.3f}"}, maxlen=FEED_LENGTH, approximate=False)
            pipe.execute()
        return redirect("job", job_id=job_id)
    ids = data().lrange("jobs", 0, RECENT_JOBS - 1)
    records = [json.loads(stored) for stored in data().mget([f"job:{i}" for i in ids]) if stored] if ids else []
    states = task_states([job["id"] for job in records])
    recent = [{**job, "started": _at(job["started"]), "state": REPORT_LABELS.get(meta["status"], meta["status"])}
              for job, meta in zip(records, states)]
    return render(request, "jobs.html", {"form": form, "recent": recent, "parts_at_once": PARTS_AT_ONCE})


@login_required
def job(request: HttpRequest, job_id: str) -> HttpResponse:
    record = _job(job_id)
    return render(request, "job.html", {"job": {**record, "started": _at(record["started"])},
                                        "status": _status(record), "parts_at_once": PARTS_AT_ONCE})


def board() -> dict[str, Any]:
    """The leaderboard, the feed's latest entries and the beat's heartbeat."""
    client = data()
    at, runs = client.mget("heartbeat:at", "heartbeat:runs")
    feed = [{**fields, "at": _at(fields.get("at"))} for _, fields in client.xrevrange("feed", count=12)]
    return {"leaderboard": client.zrevrange("leaderboard", 0, 9, withscores=True), "feed": feed,
            "heartbeat": {"at": _at(at), "runs": int(runs or 0), "age": time.time() - float(at) if at else None,
                          "every": config.HEARTBEAT_SECONDS}}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard.html", board())


@cache_page(30)
@vary_on_cookie
def _cached_board(request: HttpRequest) -> HttpResponse:
    now = time.time()
    response = render(request, "cached.html", {**board(), "rendered_at": _at(now)})
    response["X-Rendered-At"] = repr(now)
    return response


@login_required
def cached(request: HttpRequest) -> HttpResponse:
    """The leaderboard through cache_page (30 s, per browser): the page says whether this response
    came from the cache, by comparing when it was rendered with when this request began."""
    began = time.time()
    response = _cached_board(request)
    rendered = float(response["X-Rendered-At"])
    hit = rendered < began
    response["X-Cache"] = "HIT" if hit else "MISS"
    text = (f'<strong class="badge SUCCESS">cache HIT</strong> rendered {began - rendered:.1f} s ago, served by '
            f'cache_page' if hit else '<strong class="badge RETRY">cache MISS</strong> rendered for this request')
    response.content = response.content.replace(CACHE_STATUS, text.encode())
    add_never_cache_headers(response)  # the browser asks each time: the hits are the server cache's
    return response
