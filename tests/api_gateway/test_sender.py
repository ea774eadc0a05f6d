import time

import pytest
from django.db import OperationalError, connection

from api_gateway.clients import graph
from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services.replies import Option, Reply
from api_gateway.services.sender import RECORD_MAX_ATTEMPTS, inbound_mark_read, reply_send
from core import metrics
from tests.fakes import graph_server
from tests.fakes.graph_server import graph_error, graph_ok

fake_graph = graph_server.fake_graph

Delivery = ConversationMessage.Delivery


@pytest.fixture
def stored_reply(db, phone):
    """A patient message and the bot's stored, still-pending reply to it (what a turn leaves behind)."""

    def make(reply: Reply | None = None) -> ConversationMessage:
        reply = reply or Reply(text="Olá! Como posso ajudar?")
        session = ConversationSession.objects.get_or_create(phone_number=phone)[0]
        inbound = ConversationMessage.objects.create(
            session=session,
            message_type="user",
            channel_type="text",
            content="oi",
            whatsapp_message_id=f"wamid.IN{ConversationMessage.objects.count():04d}",
            processing_status="processed",
        )
        return ConversationMessage.objects.create(
            session=session,
            message_type="bot",
            channel_type=reply.kind,
            content=reply.text,
            entities={"reply": reply.to_dict()},
            reply_to=inbound,
            delivery_status=Delivery.PENDING,
        )

    return make


def _outbound(outcome: str) -> float:
    return metrics.OUTBOUND.labels(outcome)._value.get()


def test_text_reply_is_sent_once_and_the_outcome_recorded(fake_graph, stored_reply, phone):
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert len(fake_graph.sends) == 1
    sent = fake_graph.sends[0]
    assert sent.path == "/v23.0/100200300/messages"
    assert sent.headers["Authorization"] == "Bearer fake-graph-test-token"
    assert sent.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": phone,
        "type": "text",
        "text": {"body": "Olá! Como posso ajudar?", "preview_url": False},
    }
    assert bot.delivery_status == Delivery.SENT
    assert bot.whatsapp_message_id == sent.wamid
    assert bot.reply_to.replied_at is not None


def test_a_reply_already_sent_is_never_sent_again(fake_graph, stored_reply):
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)
    reply_send(bot_message_id=bot.pk)

    assert len(fake_graph.sends) == 1


def test_server_errors_are_retried_and_the_reply_goes_out_once(fake_graph, stored_reply):
    fake_graph.enqueue(graph_error(500), graph_error(131000, status=500))
    bot = stored_reply()
    retries_before = _outbound("retry")

    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert [r.answered_status for r in fake_graph.sends] == [500, 500, 200]
    assert bot.delivery_status == Delivery.SENT
    assert bot.whatsapp_message_id == fake_graph.sends[-1].wamid
    assert _outbound("retry") - retries_before == 2


def test_a_timeout_is_retried_with_the_real_client(fake_graph, stored_reply, settings):
    settings.WHATSAPP_TIMEOUT_SECONDS = 0.2
    fake_graph.enqueue(graph_ok(delay=0.6))
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert len(fake_graph.sends) == 2
    assert bot.delivery_status == Delivery.SENT


@pytest.mark.parametrize("code", [131047, 131026, 190, 368, 131051])
def test_permanent_errors_are_not_retried_and_are_recorded(fake_graph, stored_reply, code, caplog):
    fake_graph.default = graph_error(code)
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert len(fake_graph.sends) == 1
    assert (bot.delivery_status, bot.error_code) == (Delivery.FAILED, code)
    assert bot.reply_to.replied_at is None
    assert any(r.levelname == "ERROR" and str(code) in r.getMessage() for r in caplog.records)


def test_transient_errors_that_outlive_the_retries_leave_the_reply_pending_for_the_sweeper(fake_graph, stored_reply):
    fake_graph.default = graph_error(131016, status=503)
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert len(fake_graph.sends) == 4  # bounded
    assert bot.delivery_status == Delivery.PENDING
    assert bot.error_code == 131016 and bot.attempts == 1


def test_transient_failures_become_final_after_the_maximum_attempts(fake_graph, stored_reply, settings):
    settings.SWEEP_MAX_ATTEMPTS = 2
    fake_graph.default = graph_error(2, status=500)
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)
    reply_send(bot_message_id=bot.pk)
    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert bot.delivery_status == Delivery.FAILED
    assert len(fake_graph.sends) == 8


def test_rate_limits_back_off_harder_than_transient_errors(fake_graph, stored_reply, settings):
    settings.WHATSAPP_RETRY_BASE_SECONDS = 0.05
    fake_graph.enqueue(graph_error(130429))
    bot = stored_reply()

    started = time.monotonic()
    reply_send(bot_message_id=bot.pk)
    elapsed = time.monotonic() - started

    assert len(fake_graph.sends) == 2
    assert elapsed >= 0.2  # 4 × the base wait, where a transient error waits 1 ×


def test_blank_access_token_stores_the_reply_as_not_sent(db, stored_reply, settings, caplog):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"  # would refuse: must not even be tried
    bot = stored_reply()

    reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert bot.delivery_status == Delivery.NOT_SENT
    assert bot.reply_to.replied_at is not None
    assert "not sent" in caplog.text


def test_list_reply_becomes_an_interactive_list_within_whatsapps_limits(fake_graph, stored_reply):
    options = [Option(id=f"doctor:{i}", title=f"Dra. Maria Aparecida de Souza {i}") for i in range(3)]
    bot = stored_reply(Reply(text="Escolha o médico:", options=options, kind="list", button_label="Ver médicos"))

    reply_send(bot_message_id=bot.pk)

    interactive = fake_graph.sends[0].body["interactive"]
    rows = interactive["action"]["sections"][0]["rows"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == "Ver médicos"
    assert [r["id"] for r in rows] == ["doctor:0", "doctor:1", "doctor:2"]
    assert all(len(r["title"]) <= 24 for r in rows)
    assert rows[0]["title"] == "Dra. Maria Aparecida de…"
    assert rows[0]["description"] == "Dra. Maria Aparecida de Souza 0"


def test_more_than_ten_options_fall_back_to_numbered_text(fake_graph, stored_reply):
    options = [Option(id=f"slot:{i}", title=f"24/11 {8 + i}:00") for i in range(11)]
    bot = stored_reply(Reply(text="Horários livres:", options=options, kind="list"))

    reply_send(bot_message_id=bot.pk)

    body = fake_graph.sends[0].body
    assert body["type"] == "text"
    assert body["text"]["body"].startswith("Horários livres:\n\n1. 24/11 8:00\n2. 24/11 9:00")
    assert "11. 24/11 18:00" in body["text"]["body"]


def test_yes_no_reply_becomes_reply_buttons(fake_graph, stored_reply):
    options = [Option(id="confirm:yes", title="Sim, confirmar"), Option(id="confirm:no", title="Não")]
    bot = stored_reply(Reply(text="Confirma a consulta?", options=options, kind="buttons"))

    reply_send(bot_message_id=bot.pk)

    interactive = fake_graph.sends[0].body["interactive"]
    assert interactive["type"] == "button"
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "confirm:yes", "title": "Sim, confirmar"},
        {"id": "confirm:no", "title": "Não"},
    ]


def test_buttons_that_would_collide_once_truncated_become_a_list():
    options = [
        Option(id="a", title="Consulta de retorno com cardiologista"),
        Option(id="b", title="Consulta de retorno com dermatologista"),
    ]

    payload = graph.reply_payload(to="5511999990001", reply=Reply(text="Qual?", options=options, kind="buttons"))

    assert payload["interactive"]["type"] == "list"


def test_four_buttons_become_a_list_and_a_long_body_becomes_text():
    four = [Option(id=str(i), title=f"Opção {i}") for i in range(4)]
    as_list = graph.reply_payload(to="1", reply=Reply(text="Escolha", options=four, kind="buttons"))
    long_body = graph.reply_payload(to="1", reply=Reply(text="x" * 5000, options=four, kind="list"))

    assert as_list["interactive"]["type"] == "list"
    assert long_body["type"] == "text" and len(long_body["text"]["body"]) == 4096


def test_graph_error_bodies_are_parsed_into_typed_errors(fake_graph):
    fake_graph.default = graph_error(131056)

    with pytest.raises(graph.GraphError) as caught:
        graph.graph_send_text(to="5511999990001", body="oi")

    error = caught.value
    assert (error.code, error.http_status, error.rate_limited, error.transient) == (131056, 429, True, False)
    assert "pair rate limit" in error.message


def test_mark_read_sends_the_typing_indicator(fake_graph, stored_reply):
    inbound = stored_reply().reply_to

    inbound_mark_read(message=inbound)

    assert fake_graph.reads[0].body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": inbound.whatsapp_message_id,
        "typing_indicator": {"type": "text"},
    }


def test_mark_read_failure_is_swallowed_and_not_retried(fake_graph, stored_reply):
    fake_graph.default = graph_error(131000, status=500)
    inbound = stored_reply().reply_to

    inbound_mark_read(message=inbound)  # must not raise: the reply matters more than the blue ticks

    assert len(fake_graph.reads) == 1


class _FailingUpdates:
    """A database fault at the driver boundary: the next `times` UPDATEs that record a delivery fail as a locked
    or dropped database would (Django's execute_wrapper hook, before the statement reaches the database)."""

    def __init__(self, times: int):
        self.times, self.failed = times, 0

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith("UPDATE") and "delivery_status" in sql and self.failed < self.times:
            self.failed += 1
            raise OperationalError("database is locked")
        return execute(sql, params, many, context)


def test_a_database_error_right_after_meta_accepted_the_reply_is_retried_so_it_is_never_sent_twice(
    fake_graph, stored_reply, caplog
):
    bot = stored_reply()
    fault = _FailingUpdates(times=2)

    with connection.execute_wrapper(fault):
        reply_send(bot_message_id=bot.pk)
    reply_send(bot_message_id=bot.pk)  # what a task retry or the sweeper would do next

    bot.refresh_from_db()
    assert fault.failed == 2
    assert len(fake_graph.sends) == 1
    assert bot.delivery_status == Delivery.SENT
    assert bot.whatsapp_message_id == fake_graph.sends[0].wamid
    assert bot.reply_to.replied_at is not None
    assert sum("recording it failed (OperationalError)" in r.getMessage() for r in caplog.records) == 2


def test_a_database_that_stays_down_after_the_send_propagates_and_leaves_the_reply_pending(fake_graph, stored_reply):
    bot = stored_reply()
    fault = _FailingUpdates(times=RECORD_MAX_ATTEMPTS)

    with connection.execute_wrapper(fault), pytest.raises(OperationalError):
        reply_send(bot_message_id=bot.pk)

    bot.refresh_from_db()
    assert fault.failed == RECORD_MAX_ATTEMPTS  # bounded
    assert len(fake_graph.sends) == 1
    assert bot.delivery_status == Delivery.PENDING  # the documented limit: a retry of the task would send it again


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_dropping_our_connection_right_after_the_send_is_ridden_out_and_the_reply_sent_once(
    fake_graph, stored_reply
):
    """A real fault: while Meta is answering the send, PostgreSQL terminates this process's database session (a
    failover, an administrator). The UPDATE that records the send fails; the retry reconnects and records it."""
    bot = stored_reply()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def terminate_then_accept(request):
        from django.db import connections

        with connections["default"].cursor() as cursor:  # this thread's own connection
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        connections["default"].close()
        return fake_graph.default

    fake_graph.responder = terminate_then_accept
    reply_send(bot_message_id=bot.pk)
    fake_graph.responder = None
    reply_send(bot_message_id=bot.pk)  # what a task retry or the sweeper would do next

    bot.refresh_from_db()
    assert len(fake_graph.sends) == 1
    assert bot.delivery_status == Delivery.SENT
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != backend  # it did reconnect
