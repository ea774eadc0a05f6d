"""Handing a Celery task to the broker from the web process's hot path.

`task_publish(task, *args)` is `task.apply_async(args)` made cheap on a Redis broker: Celery still builds the task
message (`app.amqp.as_task_v2`, its own protocol), and this module only wraps it in kombu's Redis envelope and
LPUSHes it onto the queue's list, one round trip on a pooled connection. Through Celery's producer the same publish
costs 0.6-1.4 ms of CPU per call (kombu builds a Redis client object per publish, Celery reprs the arguments,
resolves routes and retry policies); here it is about 0.15 ms. In-process, a webhook request went from ~2.6 to
~1.7 ms of CPU with this and the one-call rate limit (bench/README.md, docs/decisions.md).

Only the plain case takes the short path: a `redis://` / `rediss://` / `unix://` broker, tasks not eager, the
default queue, no key prefix and no priorities in the transport options, positional arguments only. Anything else
goes through `apply_async`, so a change of broker or routing never silently bypasses Celery.

A task published this way from inside another task (the sweeper) starts a new lineage (root_id = its own id):
nothing here reads Celery's parent/root ids (no result backend).

A publish is one attempt with short socket timeouts (Celery's producer would retry for seconds while the webhook
waits). When it fails the exception propagates: the caller's row is already durable and the sweeper re-enqueues it.
"""

import base64
import functools
import json
import uuid
from dataclasses import dataclass

import redis
from celery import Task
from celery.utils.nodenames import anon_nodename
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.celery import REQUEST_ID_HEADER, app
from core.logging import request_id_var
from core.redis_breaker import connection_class_for

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# Transport options that do not change where or how kombu's Redis transport stores a message.
NEUTRAL_TRANSPORT_OPTIONS = {"visibility_timeout", "socket_timeout", "socket_connect_timeout", "max_connections"}
PUBLISH_SOCKET_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class _ShortPath:
    client: redis.Redis
    queue: str
    origin: str  # the "origin" header Celery would write: this process's anonymous node name


@functools.cache
def _short_path() -> _ShortPath | None:
    """Decided once per process: Celery's configuration lookups cost more than the publish itself. A change of
    Django settings clears it; a change made on `app.conf` directly must call `reset()`."""
    conf = app.conf
    url = str(conf.broker_url or "")
    plain = (
        not conf.task_always_eager
        and url.startswith(REDIS_SCHEMES)
        and set(conf.broker_transport_options or {}) <= NEUTRAL_TRANSPORT_OPTIONS
        and not conf.task_routes
        and not conf.task_queue_max_priority
        and not conf.task_default_priority
    )
    if not plain:
        return None
    client = redis.Redis.from_url(
        url,
        socket_timeout=PUBLISH_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=PUBLISH_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
        connection_class=connection_class_for(url),  # a hung Redis: timeouts once per process, not per webhook
    )
    return _ShortPath(client=client, queue=conf.task_default_queue, origin=anon_nodename())


def short_path_available() -> bool:
    return _short_path() is not None


def task_publish(task: Task, *args) -> None:
    """Enqueue `task(*args)` (positional, JSON-serialisable arguments), with the current request id as a header so
    the worker's log lines for it carry the same id (core.celery). Raises when the broker cannot be reached."""
    request_id = request_id_var.get()
    headers = {REQUEST_ID_HEADER: request_id} if request_id != "-" else {}
    path = _short_path()
    if path is None:
        task.apply_async(args, headers=headers)
        return
    task_id = str(uuid.uuid4())
    message = app.amqp.as_task_v2(
        task_id, task.name, args=args, kwargs={}, argsrepr=repr(args), kwargsrepr="{}", origin=path.origin
    )
    envelope = {
        "body": base64.b64encode(json.dumps(message.body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {**message.headers, **headers},  # custom headers sit beside Celery's, as apply_async puts them
        "properties": {
            **message.properties,
            "delivery_mode": 2,  # persistent
            "delivery_info": {"exchange": "", "routing_key": path.queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    # kombu's Redis transport: the default exchange routes by queue name, and priority 0 is the bare list.
    path.client.lpush(path.queue, json.dumps(envelope))


def reset() -> None:
    """Forget the decision: after changing Celery's configuration at run time (tests toggling eager mode)."""
    _short_path.cache_clear()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("CELERY_"):
        reset()
