"""The demo clinic (and a generated large one for benchmarks). Other modules' tests rely on these exact names."""

import datetime as dt
import random
from decimal import Decimal

from django.db import transaction

from rag_agent.models import ClinicaInfo, Convenio, Especialidade, Exame, HorarioTrabalho, Medico

CLINIC = {
    "nome": "Clínica Vida Saudável",
    "endereco": "Av. Paulista, 1000 - Bela Vista, São Paulo - SP, 01310-100",
    "telefone": "(11) 3000-1000",
    "email": "contato@vidasaudavel.com.br",
    "horario_funcionamento": "Segunda a sexta, das 7h às 19h; sábado, das 8h às 12h",
    "politicas": (
        "Cancelamento sem custo até 24 horas antes da consulta. "
        "Traga documento de identidade com foto e a carteirinha do convênio. "
        "Chegue com 15 minutos de antecedência. "
        "Tolerância de 15 minutos de atraso."
    ),
}

SPECIALTIES = {
    "Cardiologia": "Cuida do coração e dos vasos sanguíneos.",
    "Dermatologia": "Cuida da pele, dos cabelos e das unhas.",
    "Pediatria": "Cuida da saúde de bebês, crianças e adolescentes.",
    "Ortopedia": "Cuida de ossos, articulações, músculos e coluna.",
    "Ginecologia": "Cuida da saúde da mulher e do sistema reprodutor feminino.",
    "Clínica Geral": "Atendimento geral, check-up e encaminhamento para especialistas.",
    "Oftalmologia": "Cuida dos olhos e da visão.",
}

PLANS = {
    "Unimed": True,
    "Bradesco Saúde": True,
    "SulAmérica": True,
    "Amil": True,
    "Porto Seguro Saúde": True,
    "Hapvida": False,
}
_ACTIVE_PLANS = [name for name, active in PLANS.items() if active]

MON, TUE, WED, THU, FRI, SAT = range(6)
_WEEKDAYS = [MON, TUE, WED, THU, FRI]

# (nome, crm, especialidades, convenios, preço, duração, bio, [(dias, início, fim), ...])
DOCTORS = [
    (
        "Dra. Ana Souza",
        "CRM/SP 123456",
        ["Cardiologia"],
        ["Unimed", "Bradesco Saúde", "SulAmérica"],
        "350.00",
        30,
        "Cardiologista com 15 anos de experiência em prevenção cardiovascular e hipertensão.",
        [([MON, WED, FRI], "08:00", "12:00"), ([MON, WED, FRI], "14:00", "18:00")],
    ),
    (
        "Dr. Carlos Mendes",
        "CRM/SP 234567",
        ["Cardiologia"],
        ["Amil", "Porto Seguro Saúde"],
        "320.00",
        30,
        "Cardiologista dedicado a arritmias e reabilitação cardíaca.",
        [([TUE, THU], "08:00", "17:00")],
    ),
    (
        "Dra. Beatriz Lima",
        "CRM/SP 345678",
        ["Dermatologia"],
        ["Unimed", "Amil"],
        "300.00",
        30,
        "Dermatologista com foco em dermatologia clínica e acne.",
        [([MON, TUE, WED, THU], "09:00", "13:00")],
    ),
    (
        "Dr. Daniel Rocha",
        "CRM/SP 456789",
        ["Pediatria"],
        ["Unimed", "Bradesco Saúde", "SulAmérica", "Amil"],
        "280.00",
        30,
        "Pediatra com experiência em puericultura e acompanhamento do desenvolvimento infantil.",
        [(_WEEKDAYS, "08:00", "12:00")],
    ),
    (
        "Dra. Fernanda Alves",
        "CRM/SP 567890",
        ["Pediatria"],
        ["Porto Seguro Saúde"],
        "260.00",
        30,
        "Pediatra com atenção especial a alergias e doenças respiratórias na infância.",
        [(_WEEKDAYS, "13:00", "18:00"), ([SAT], "08:00", "12:00")],
    ),
    (
        "Dr. Gustavo Pereira",
        "CRM/SP 678901",
        ["Ortopedia"],
        ["Unimed", "SulAmérica"],
        "330.00",
        40,
        "Ortopedista especializado em joelho, ombro e lesões esportivas.",
        [([TUE, THU], "13:00", "19:00")],
    ),
    (
        "Dra. Helena Costa",
        "CRM/SP 789012",
        ["Ginecologia"],
        ["Bradesco Saúde", "Amil", "Unimed"],
        "310.00",
        30,
        "Ginecologista com foco em saúde da mulher, pré-natal e prevenção.",
        [([MON, WED], "08:00", "16:00")],
    ),
    (
        "Dr. Igor Santos",
        "CRM/SP 890123",
        ["Clínica Geral"],
        _ACTIVE_PLANS,
        "200.00",
        20,
        "Clínico geral: check-up, doenças crônicas e orientação sobre especialistas.",
        [(_WEEKDAYS, "07:00", "12:00")],
    ),
    (
        "Dra. Juliana Martins",
        "CRM/SP 901234",
        ["Clínica Geral", "Dermatologia"],
        ["SulAmérica"],
        "250.00",
        30,
        "Clínica geral e dermatologista, com atenção à saúde da pele no dia a dia.",
        [([WED, FRI], "13:00", "19:00")],
    ),
    (
        "Dr. Lucas Oliveira",
        "CRM/SP 012345",
        ["Oftalmologia"],
        ["Unimed", "Bradesco Saúde"],
        "290.00",
        30,
        "Oftalmologista: exames de vista, glaucoma e catarata.",
        [([THU, FRI], "08:00", "12:00")],
    ),
]

# (nome, preço, preparo, descrição)
EXAMS = [
    ("Hemograma completo", "35.00", "Não é necessário jejum.", "Avalia as células do sangue."),
    ("Glicemia em jejum", "25.00", "Jejum de 8 horas.", "Mede o açúcar no sangue."),
    ("Colesterol total e frações", "45.00", "Jejum de 12 horas.", "Mede o colesterol HDL, LDL e triglicerídeos."),
    ("Eletrocardiograma", "80.00", "Sem preparo.", "Registra a atividade elétrica do coração."),
    ("Ecocardiograma", "250.00", "Sem preparo.", "Ultrassom do coração."),
    ("Raio-X de tórax", "90.00", "Retirar objetos metálicos.", "Imagem dos pulmões e do coração."),
    (
        "Ultrassonografia abdominal",
        "180.00",
        "Jejum de 6 horas e bexiga cheia.",
        "Imagem dos órgãos do abdômen.",
    ),
    ("TSH", "40.00", "Jejum de 4 horas recomendado.", "Avalia o funcionamento da tireoide."),
    ("Urina tipo 1", "20.00", "Coletar a primeira urina da manhã.", "Exame de rotina da urina."),
    (
        "Teste ergométrico",
        "220.00",
        "Usar roupa e tênis confortáveis; evitar refeição pesada 2 horas antes.",
        "Avalia o coração durante o esforço físico.",
    ),
]


def _time(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def _replace_hours(medico: Medico, shifts: list[tuple[list[int], str, str]]) -> None:
    medico.horarios.all().delete()
    HorarioTrabalho.objects.bulk_create(
        HorarioTrabalho(medico=medico, dia_semana=day, hora_inicio=_time(start), hora_fim=_time(end))
        for days, start, end in shifts
        for day in days
    )


@transaction.atomic
def seed_demo_clinic() -> ClinicaInfo:
    """Load (or bring back to) the demo clinic. Safe to run any number of times."""
    info = ClinicaInfo.objects.order_by("pk").first()
    if info is None:
        info = ClinicaInfo.objects.create(**CLINIC)
    else:
        for field, value in CLINIC.items():
            setattr(info, field, value)
        info.save()

    specialties = {
        name: Especialidade.objects.update_or_create(nome=name, defaults={"descricao": text, "ativa": True})[0]
        for name, text in SPECIALTIES.items()
    }
    plans = {
        name: Convenio.objects.update_or_create(nome=name, defaults={"ativo": active})[0]
        for name, active in PLANS.items()
    }
    for nome, crm, specialty_names, plan_names, price, minutes, bio, shifts in DOCTORS:
        medico, _ = Medico.objects.update_or_create(
            crm=crm,
            defaults={
                "nome": nome,
                "preco_consulta": Decimal(price),
                "duracao_consulta_minutos": minutes,
                "bio": bio,
                "ativo": True,
            },
        )
        medico.especialidades.set([specialties[n] for n in specialty_names])
        medico.convenios.set([plans[n] for n in plan_names])
        _replace_hours(medico, shifts)

    for nome, price, preparo, descricao in EXAMS:
        Exame.objects.update_or_create(
            nome=nome, defaults={"preco": Decimal(price), "preparo": preparo, "descricao": descricao, "ativo": True}
        )
    return info


_FIRST_NAMES = [
    "Adriana", "Bruno", "Camila", "Diego", "Eduarda", "Fábio", "Gabriela", "Henrique", "Isabela", "João",
    "Karina", "Leonardo", "Mariana", "Nelson", "Olívia", "Paulo", "Renata", "Sérgio", "Tatiana", "Vítor",
]  # fmt: skip
_LAST_NAMES = [
    "Almeida", "Barbosa", "Cardoso", "Dias", "Esteves", "Freitas", "Gomes", "Henriques", "Ibrahim", "Jardim",
    "Klein", "Lopes", "Moreira", "Nogueira", "Queiroz", "Ribeiro", "Teixeira", "Vasconcelos", "Xavier", "Zanetti",
]  # fmt: skip


@transaction.atomic
def generate_large_clinic(*, doctors: int = 200, specialties: int = 40) -> None:
    """Add generated specialties and doctors beside the demo data (idempotent: natural keys are deterministic)."""
    rng = random.Random(20240601)  # noqa: S311 - deterministic test data, so reruns update the same rows
    generated = [
        Especialidade.objects.update_or_create(
            nome=f"Especialidade Gerada {i:02d}",
            defaults={"descricao": f"Especialidade gerada número {i} para testes de carga.", "ativa": True},
        )[0]
        for i in range(1, specialties + 1)
    ]
    pool = generated + list(Especialidade.objects.filter(nome__in=SPECIALTIES))
    plans = list(Convenio.objects.filter(ativo=True))
    for i in range(1, doctors + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        title = "Dra." if first.endswith("a") else "Dr."
        medico, _ = Medico.objects.update_or_create(
            crm=f"CRM/SP 9{i:05d}",
            defaults={
                "nome": f"{title} {first} {last} {i:03d}",
                "preco_consulta": Decimal(rng.randrange(150, 600, 10)),
                "duracao_consulta_minutos": rng.choice([20, 30, 40]),
                "bio": "Médico gerado para testes de carga.",
                "ativo": True,
            },
        )
        medico.especialidades.set(rng.sample(pool, k=rng.choice([1, 1, 2])))
        medico.convenios.set(rng.sample(plans, k=rng.randint(0, len(plans))) if plans else [])
        days = sorted(rng.sample(_WEEKDAYS, k=rng.randint(1, 3)))
        start = rng.choice(["07:00", "08:00", "13:00"])
        end = {"07:00": "12:00", "08:00": "12:00", "13:00": "18:00"}[start]
        _replace_hours(medico, [(days, start, end)])
