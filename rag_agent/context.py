"""The few clinic facts relevant to one message, for the LLM prompt. Bounded in size whatever the clinic's size."""

from decimal import Decimal

from rag_agent.closures import periods_ahead
from rag_agent.matching import normalize
from rag_agent.selectors import booking_last_day, clinic_catalog, doctor_detail, mentions_find

MAX_CONTEXT_CHARS = 1200
MAX_LISTED_NAMES = 8
MAX_EXAMS = 2
MAX_TEXT = 140  # longest description or preparation copied into the prompt
WEEKDAYS = ("seg", "ter", "qua", "qui", "sex", "sáb", "dom")
_POLICY_WORDS = (
    "cancel",
    "desmarc",
    "atras",
    "document",
    "carteir",
    "antecedenc",
    "chegar",
    "politic",
    "regra",
    "multa",
)


def money(value: str | Decimal) -> str:
    """'1234.5' -> 'R$ 1.234,50'."""
    text = f"{Decimal(value):,.2f}"
    return "R$ " + text.replace(",", "_").replace(".", ",").replace("_", ".")


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _names(names: list[str], limit: int = MAX_LISTED_NAMES) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} e mais {len(names) - limit}" if len(names) > limit else shown


def _hours(detail: dict) -> str:
    """'seg, qua, sex 08:00-12:00 e 14:00-18:00; sáb 08:00-12:00': days with the same shifts share one entry."""
    per_day: dict[int, list[str]] = {}
    for h in detail["horarios"]:
        per_day.setdefault(h["dia_semana"], []).append(f"{h['inicio']}-{h['fim']}")
    groups: dict[str, list[str]] = {}
    for day in sorted(per_day):
        groups.setdefault(" e ".join(per_day[day]), []).append(WEEKDAYS[day])
    return "; ".join(f"{', '.join(days)} {shifts}" for shifts, days in groups.items()) or "sem horários cadastrados"


def _away(blocks: list[dict]) -> str:
    """ "de 21/12 a 05/01 e em 12/01": up to two agenda blocks that start within the booking horizon."""
    return " e ".join(periods_ahead(blocks, booking_last_day(), limit=2))


def _ids_in_question(text: str, entities: dict | None, slots: dict | None) -> dict[str, list[int]]:
    wanted: dict[str, list[int]] = {"especialidade": [], "medico": [], "convenio": [], "exame": []}
    for kind in wanted:
        for source in (slots or {}, entities or {}):
            if source.get(f"{kind}_id"):
                wanted[kind] = [int(source[f"{kind}_id"])]  # the message's entities override the filled slots
    if entities is None:
        found = mentions_find(text)
        for kind, matches in found.items():
            if matches:
                limit = MAX_EXAMS if kind == "exame" else 1
                wanted[kind] = [m.id for m in matches[:limit]]
    return wanted


def context_build(*, text: str, entities: dict | None = None, slots: dict | None = None, max_doctors: int = 5) -> str:
    """Plain Portuguese facts for this message: the clinic, then the exam, plan, specialty or doctor in question."""
    catalog = clinic_catalog()
    wanted = _ids_in_question(text, entities, slots)
    topic = (entities or {}).get("topico", "")
    specialties = {e["id"]: e for e in catalog["especialidades"]}
    plans = {c["id"]: c for c in catalog["convenios"]}
    exams = {x["id"]: x for x in catalog["exames"]}
    doctors = {m["id"]: m for m in catalog["medicos"]}

    info = catalog["clinica"]
    lines = [
        f"Clínica: {info['nome']}. Endereço: {info['endereco']}. Telefone: {info['telefone']}. "
        f"E-mail: {info['email']}. Funcionamento: {info['horario_funcionamento']}."
    ]
    if closed := _away(catalog.get("fechamentos", [])):
        lines[0] += f" Fechada {closed}."
    plain = normalize(text)
    if topic == "politicas" or any(word in plain for word in _POLICY_WORDS):
        lines.append(f"Políticas: {_clip(info['politicas'], 300)}")

    for exam_id in wanted["exame"][:MAX_EXAMS]:
        if exam := exams.get(exam_id):
            lines.append(f"Exame {exam['nome']}: {money(exam['preco'])}. Preparo: {_clip(exam['preparo'])}")

    specialty = specialties.get(wanted["especialidade"][0]) if wanted["especialidade"] else None
    plan = plans.get(wanted["convenio"][0]) if wanted["convenio"] else None
    doctor = doctors.get(wanted["medico"][0]) if wanted["medico"] else None

    if doctor is not None:
        detail = doctor_detail(doctor["id"]) or {"horarios": [], "especialidades": [], "convenios": []}
        accepted = _names(detail["convenios"]) or "nenhum (somente particular)"
        lines.append(
            f"Médico {doctor['nome']} ({', '.join(detail['especialidades'])}): consulta particular "
            f"{money(doctor['preco_consulta'])}, {doctor['duracao_consulta_minutos']} min; convênios: {accepted}; "
            f"atende {_hours(detail)}."
        )
        if away := _away([b for b in detail.get("bloqueios", []) if not b["clinica"]]):
            lines[-1] += f" Não atende {away}."
        if plan is not None:
            verdict = "aceita" if plan["id"] in doctor["convenio_ids"] else "NÃO aceita"
            lines.append(f"{doctor['nome']} {verdict} o convênio {plan['nome']}.")
    elif specialty is not None:
        in_specialty = [m for m in catalog["medicos"] if specialty["id"] in m["especialidade_ids"]]
        if plan is not None:
            in_plan = [m for m in in_specialty if plan["id"] in m["convenio_ids"]]
            verdict = f"aceito por {len(in_plan)} médico(s)" if in_plan else "não aceito; há atendimento particular"
            lines.append(f"Convênio {plan['nome']} em {specialty['nome']}: {verdict}.")
            in_specialty = in_plan or in_specialty
        else:
            plan_ids = sorted({c for m in in_specialty for c in m["convenio_ids"] if c in plans})
            names = _names([plans[c]["nome"] for c in plan_ids])
            lines.append(f"Convênios aceitos em {specialty['nome']}: {names or 'nenhum (somente particular)'}.")
        listed = [f"{m['nome']} ({money(m['preco_consulta'])})" for m in in_specialty[:max_doctors]]
        more = f" e mais {len(in_specialty) - max_doctors}" if len(in_specialty) > max_doctors else ""
        lines.append(
            f"Especialidade {specialty['nome']}: {_clip(specialty['descricao'], 100)} "
            f"Médicos (consulta particular): {', '.join(listed) or 'nenhum no momento'}{more}."
        )
    elif plan is not None:
        in_plan = [m["nome"] for m in catalog["medicos"] if plan["id"] in m["convenio_ids"]]
        lines.append(
            f"Convênio {plan['nome']}: "
            + (f"aceito. Médicos que atendem: {_names(in_plan, max_doctors)}." if in_plan else "não aceito.")
        )
    elif topic == "especialidades" or (topic == "medicos" and not wanted["exame"]):
        lines.append(f"Especialidades: {_names([e['nome'] for e in catalog['especialidades']])}.")
    if topic == "convenio" and plan is None:
        lines.append(f"Convênios aceitos: {_names([c['nome'] for c in catalog['convenios']])}.")
    if topic == "exames" and not wanted["exame"]:
        lines.append(f"Exames: {_names([x['nome'] for x in catalog['exames']])}.")

    return _bounded(lines)


def _bounded(lines: list[str]) -> str:
    """Keep whole lines in priority order (clinic first) within MAX_CONTEXT_CHARS; clip the last one that fits."""
    kept: list[str] = []
    size = 0
    for line in lines:
        room = MAX_CONTEXT_CHARS - size - (1 if kept else 0)
        if room <= 40:
            break
        kept.append(line if len(line) <= room else _clip(line, room))
        size += len(kept[-1]) + (1 if len(kept) > 1 else 0)
    return "\n".join(kept)
