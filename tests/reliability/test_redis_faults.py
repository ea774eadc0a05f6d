"""Redis killed, hung and flushed under a live gunicorn server (PostgreSQL test database, dedicated redis-server)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import caches
from django.forms.models import model_to_dict
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services.conversation import turn_handle
from api_gateway.services.session_cache import session_manager
from api_gateway.services.token_monitor import token_monitor
from tests.fakes.gemini_server import answer_json
from tests.reliability.conftest import RedisProcess, patient_phone, text_message, wait_for

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


class Conversation:
    """One patient talking to the live server, one message at a time."""

    def __init__(self, stack, phone: str):
        self.stack, self.phone, self.sent = stack, phone, 0
        self.t0 = time.time() - 300

    def says(self, text: str) -> tuple[int, float]:
        self.sent += 1
        body = text_message(
            phone=self.phone, wamid=f"wamid.{self.phone[-6:]}.{self.sent:03d}", text=text, timestamp=self.t0 + self.sent
        )
        return self.stack.post_webhook(body)

    @property
    def session(self) -> ConversationSession:
        return ConversationSession.objects.get(phone_number=self.phone)

    def replies(self) -> int:
        return sum(1 for s in self.stack.graph.sends if s.body.get("to") == self.phone)


def _session_keys(server: RedisProcess) -> list[str]:
    return server.keys("*gemini_session_*")


def test_redis_killed_mid_conversation_loses_nothing_and_the_conversation_resumes_when_it_returns(
    stack, clinic, figures
):
    stack.start_web()
    patient = Conversation(stack, patient_phone(10))
    assert patient.says("oi")[0] == 200
    assert patient.says("quero marcar uma consulta")[0] == 200
    wait_for(lambda: patient.replies() == 2, timeout=20, what="two replies before the outage")
    assert patient.session.current_state == "collecting_patient_info"
    assert _session_keys(stack.redis), "the session is cached while Redis is up"

    stack.redis.kill()
    others = [Conversation(stack, patient_phone(11 + n)) for n in range(5)]
    during = [patient.says("Maria Oliveira")]
    with ThreadPoolExecutor(max_workers=5) as pool:
        during += list(pool.map(lambda c: c.says("qual o endereço?"), others))
    time.sleep(1.0)
    replies_during = len(stack.graph.sends) - 2
    stored = ConversationMessage.objects.filter(message_type="user")
    processed_during = stored.filter(processing_status="processed").count() - 2

    stack.redis.start()  # same port, empty: a restarted Redis without persistence
    sweep = stack.manage("sweep_messages")
    assert sweep.returncode == 0, sweep.stderr.decode()[-2000:]
    wait_for(lambda: len(stack.graph.sends) == 8, timeout=30, what="every reply after Redis returned")
    time.sleep(1.0)
    after = patient.says("cardiologia")
    wait_for(lambda: patient.replies() == 4, timeout=20, what="the next turn")

    figures["redis_killed"] = {
        "accepted_during_outage": sum(status == 200 for status, _ in during),
        "posted_during_outage": len(during),
        "max_webhook_latency_during_outage_s": round(max(latency for _, latency in during), 3),
        "processed_during_outage": processed_during,
        "replied_during_outage": replies_during,
        "processed_after_recovery": stored.filter(processing_status="processed").count(),
        "replies_total": len(stack.graph.sends),
        "lost": 9 - stored.count(),
    }
    assert [status for status, _ in during] == [200] * 6
    assert max(latency for _, latency in during) < 5.0
    assert stored.count() == 9  # 2 before, 6 during, 1 after: nothing accepted was lost
    assert stored.exclude(processing_status="processed").count() == 0
    assert len(stack.graph.sends) == 9  # one reply per message, none twice
    assert len({s.body["to"] + str(s.body) for s in stack.graph.sends}) == 9
    assert after[0] == 200
    # The conversation went on from the database: the name given during the outage was taken, then the specialty.
    session = patient.session
    assert session.patient_name == "Maria Oliveira"
    assert session.current_state == "choosing_plan"
    assert _session_keys(stack.redis), "the cache refilled after Redis returned"


def test_a_hung_redis_costs_each_web_process_one_timeout_then_fails_fast_and_drops_nothing(stack, clinic, figures):
    """The first webhook a web process serves during the hang waits for socket timeouts (0.5 s each) until one
    opens its Redis breaker (core.redis_breaker); the following ones skip Redis and are acknowledged at database
    speed. Every message is stored and answered once Redis is back."""
    workers = 2
    stack.env_overrides["REDIS_BREAKER_SECONDS"] = "60"  # longer than the test: no breaker reopens mid-way
    stack.start_web(workers=workers)
    patient = Conversation(stack, patient_phone(20))
    assert patient.says("oi")[0] == 200
    texts = ["qual o endereço?", "aceita Unimed?", "tem cardiologista?", "qual o horário?", "obrigado", "até logo"]

    stack.redis.pause()  # connections open, nothing answers: only socket timeouts bound the wait
    try:
        during = [patient.says(text) for text in texts]
    finally:
        stack.redis.resume()
    stack.manage("sweep_messages")
    wait_for(lambda: patient.replies() == 1 + len(texts), timeout=60, what="replies after Redis woke up")

    stored = ConversationMessage.objects.filter(message_type="user")
    latencies = [latency for _, latency in during]
    socket_timeout = 0.5  # REDIS_SOCKET_TIMEOUT_SECONDS: a request that waited for Redis took at least this
    figures["redis_hung_sigstop"] = {
        "posted_during_hang": len(during),
        "accepted": sum(status == 200 for status, _ in during),
        "webhook_latencies_s": [round(latency, 3) for latency in latencies],
        "waited_for_redis": sum(latency >= socket_timeout for latency in latencies),
        "max_webhook_latency_s": round(max(latencies), 3),
        "processed_after": stored.filter(processing_status="processed").count(),
        "replies_total": patient.replies(),
    }
    assert [status for status, _ in during] == [200] * len(texts)
    assert max(latencies) < 15.0  # well inside Meta's ~20 s patience
    # Without the breaker every one of them waited for Redis; with it, at most the first in each web process.
    assert sum(latency >= socket_timeout for latency in latencies) <= workers
    assert stored.count() == 1 + len(texts)
    assert stored.exclude(processing_status="processed").count() == 0


def test_flushed_redis_resumes_sessions_exactly_and_rebuilds_the_token_budget_from_the_database(
    clinic,
    fake_gemini,
    figures,
):
    phone = patient_phone(30)
    fake_gemini.default = answer_json({"intent": "agendar", "confidence": 0.9, "entities": {}}, output_tokens=40)
    turn_handle(phone=phone, text="oi")
    turn_handle(phone=phone, text="então, eu estava pensando em ver aquilo com alguém, sabe")
    turn_handle(phone=phone, text="Maria Oliveira")
    used_before = token_monitor.tokens_used_today()
    session_before = model_to_dict(ConversationSession.objects.get(phone_number=phone))
    database_tokens = token_monitor.tokens_from_database(timezone.localdate())

    for alias in ("default", "strict"):
        caches[alias].clear()  # FLUSHDB on the test Redis: every session, counter and lock key is gone

    used_after = token_monitor.tokens_used_today()
    session_after = model_to_dict(session_manager.get_or_start(phone=phone))
    result = turn_handle(phone=phone, text="cardiologia")
    figures["redis_flushed"] = {
        "gemini_requests": len(fake_gemini.generate_requests),
        "tokens_before_flush": used_before,
        "tokens_after_flush": used_after,
        "session_fields_equal": session_before == session_after,
        "state_after_next_turn": result.state,
    }
    assert fake_gemini.generate_requests, "the turns must have spent Gemini tokens for this test to mean anything"
    assert used_before > 0
    assert used_before == database_tokens
    assert used_after == used_before  # rebuilt from the per-message columns, not reset to zero
    assert session_after == session_before
    assert result.state == "choosing_plan"
