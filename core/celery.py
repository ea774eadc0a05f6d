import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

from core.logging import request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("core")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "request_id"  # set by core.broker.task_publish from the HTTP request that enqueued the task
_request_id_tokens: dict[str, object] = {}


@task_prerun.connect
def _request_id_enter(*, task_id: str, task, **kwargs) -> None:
    """A task's log lines carry the request id of the webhook that enqueued it (or the task id when none did:
    beat, the sweeper). Inline (eager) tasks keep the id of the request they run in."""
    if request_id_var.get() != "-":
        return
    request = task.request
    incoming = getattr(request, REQUEST_ID_HEADER, None) or (request.headers or {}).get(REQUEST_ID_HEADER)
    _request_id_tokens[task_id] = request_id_var.set(str(incoming or task_id))


@task_postrun.connect
def _request_id_leave(*, task_id: str, **kwargs) -> None:
    token = _request_id_tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
