"""A Celery worker killed mid-turn, and the database dropping the live server's connections."""

import time

import pytest
from django.db import connection

from api_gateway.models import ConversationMessage
from tests.fakes.gemini_server import answer_json, answer_slow
from tests.reliability.conftest import patient_phone, text_message, wait_for

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

SERVER_APPLICATION_NAME = "reliability-live-server"
UNSURE_TEXT = "então, eu estava pensando em ver aquilo com alguém, sabe"  # the offline rules are not sure: Gemini runs


def test_worker_killed_mid_turn_the_message_is_processed_again_and_answered_exactly_once(
    stack, clinic, gemini_fake, figures
):
    gemini_fake.enqueue(answer_slow(8.0, answer_json({"intent": "agendar", "confidence": 0.9, "entities": {}})))
    gemini_fake.default = answer_json({"intent": "agendar", "confidence": 0.9, "entities": {}})
    stack.use_gemini(gemini_fake, timeout=15)
    stack.env_overrides.update({"CELERY_TASK_ALWAYS_EAGER": "0", "GEMINI_MAX_ATTEMPTS": "1"})
    first_worker = stack.start_worker()
    stack.start_web()
    phone = patient_phone(40)

    status, _ = stack.post_webhook(text_message(phone=phone, wamid="wamid.KILL0001", text=UNSURE_TEXT,
                                                timestamp=time.time()))  # fmt: skip
    assert status == 200
    wait_for(lambda: len(gemini_fake.generate_requests) == 1, timeout=20, what="the turn to reach Gemini")
    first_worker.kill()  # SIGKILL while the turn waits for the model: no ack, no cleanup, the lock stays
    first_worker.wait(timeout=10)
    killed_at = time.monotonic()
    inbound = ConversationMessage.objects.get(whatsapp_message_id="wamid.KILL0001")
    assert inbound.processing_status == "processing"
    assert stack.graph.sends == []

    stack.start_worker()
    sweep = stack.manage("sweep_messages")  # what celery beat runs every minute
    assert sweep.returncode == 0, sweep.stderr.decode()[-2000:]
    wait_for(lambda: len(stack.graph.sends) >= 1, timeout=120, interval=0.5, what="the reply after the crash")
    recovered_after = time.monotonic() - killed_at
    time.sleep(3.0)  # a second reply would show up here

    inbound.refresh_from_db()
    figures["worker_killed"] = {
        "accepted": 1,
        "processed": int(inbound.processing_status == "processed"),
        "attempts": inbound.attempts,
        "replies_at_graph": len(stack.graph.sends),
        "recovered_after_s": round(recovered_after, 1),
        "lost": 0 if inbound.processing_status == "processed" else 1,
    }
    assert inbound.processing_status == "processed"
    assert inbound.attempts >= 2
    assert ConversationMessage.objects.filter(message_type="bot", reply_to=inbound).count() == 1
    assert len(stack.graph.sends) == 1
    assert stack.graph.sends[0].body["to"] == phone


def test_the_workers_log_lines_for_a_message_carry_its_webhooks_request_id_and_mask_the_phone(stack, clinic):
    stack.env_overrides["CELERY_TASK_ALWAYS_EAGER"] = "0"
    worker = stack.start_worker()
    stack.start_web()
    phone = patient_phone(41)

    status, _ = stack.post_webhook(
        text_message(phone=phone, wamid="wamid.RID0001", text="qual o endereço?", timestamp=time.time()),
        request_id="rid-e2e-0001",
    )
    assert status == 200
    wait_for(lambda: len(stack.graph.sends) >= 1, timeout=30, what="the reply")

    log_path = next(path for _, proc, path in stack.procs if proc is worker)

    def task_done_under_the_request_id() -> bool:
        lines = log_path.read_text(errors="replace").splitlines()
        return any("[rid-e2e-0001]" in line and "process_inbound" in line and "succeeded" in line for line in lines)

    wait_for(task_done_under_the_request_id, timeout=10, what="the task's log line with the request id")
    assert phone not in log_path.read_text(errors="replace")  # the worker logs through the masking filter too


def _terminate_server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name = %s",
            [connection.settings_dict["NAME"], SERVER_APPLICATION_NAME],
        )
        return len(cursor.fetchall())


def test_database_connections_killed_the_webhook_answers_5xx_at_worst_and_recovers_by_itself(stack, clinic, figures):
    # Only the live server's sessions are cut: this process's own pooled connections must survive for teardown.
    stack.env_overrides["DATABASE_URL"] += f"?application_name={SERVER_APPLICATION_NAME}"
    stack.start_web(workers=1, threads=4)
    phone = patient_phone(50)
    t0 = time.time() - 100

    def body(n: int) -> bytes:
        return text_message(phone=phone, wamid=f"wamid.DB{n:03d}", text="qual o endereço?", timestamp=t0 + n)

    for n in range(4):  # every thread of the server opens a pooled connection
        assert stack.post_webhook(body(n))[0] == 200
    terminated = _terminate_server_connections()

    statuses = []
    for n in range(4, 16):
        # Like Meta: a non-200 is delivered again (here at once; Meta backs off).
        first, _ = stack.post_webhook(body(n))
        statuses.append(first)
        status = first
        for _ in range(5):
            if status == 200:
                break
            status, _ = stack.post_webhook(body(n))
        assert status == 200, f"message {n} never accepted"
    wait_for(lambda: len(stack.graph.sends) == 16, timeout=30, what="every reply")

    stored = ConversationMessage.objects.filter(message_type="user")
    figures["database_connections_terminated"] = {
        "connections_terminated": terminated,
        "first_attempt_statuses": statuses,
        "non_200_answers": [s for s in statuses if s != 200],
        "stored": stored.count(),
        "processed": stored.filter(processing_status="processed").count(),
        "replies_at_graph": len(stack.graph.sends),
    }
    assert terminated >= 1
    assert all(s == 200 or 500 <= s < 600 for s in statuses)  # never a 4xx: Meta must retry
    assert statuses[-6:] == [200] * 6  # recovered by itself
    assert stored.count() == 16
    assert stored.exclude(processing_status="processed").count() == 0
    assert len(stack.graph.sends) == 16
