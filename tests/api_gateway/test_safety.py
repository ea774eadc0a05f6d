"""The emergency rule on its own: which messages it warns about and which it leaves alone."""

import pytest

from api_gateway.services.safety import MEDICAL, SELF_HARM, emergency_kind


@pytest.mark.parametrize(
    "text",
    [
        "Estou com uma dor forte no peito",
        "minha mãe tá com falta de ar",
        "não consigo respirar direito",
        "acho que meu pai está tendo um AVC, a boca ficou torta",
        "meu filho desmaiou agora",
        "ela está convulsionando!!",
        "sangramento que não para depois da cirurgia",
        "meu filho tomou veneno de rato, intoxicado",
        "fui picada de escorpião",
        "garganta fechando depois do remédio",
        "tive um infarto em 2019 e estou com dor no peito agora",  # a history, but it is happening now
        "DOR NO PEITO",
        "to sem ar",
        "to sentindo uma pontada no lado esquerdo do peito",
        "nao to conseguindo respirar direito, ta faltando ar",
        "meu filho de 2 anos ta se tremendo todo e babando, nao responde",
        "me cortei e ta sangrando mt, nao para",
        "tomei um monte de remedio de uma vez",
        "socorro",
        # a third probe's misses
        "minha mãe ficou com a boca entortando e não fala direito",
        "meu pai tá desacordado no chão",
        "meu bebê tá roxo e não respira direito",
        "ele bateu a cabeça, tá vomitando e sonolento",
        "meu filho engoliu uma bateria",
        "a boca e a garganta estão inchando, mal consigo engolir",
        "estou grávida de 32 semanas e perdendo sangue",
        "a bolsa estourou",
        "minha filha de 2 meses tá com febre 38.5 e não quer mamar",
        # a fourth probe's misses
        "fui picado por uma cobra",
        "uma cobra mordeu meu filho",
        "tomei uma cartela inteira de rivotril",
        "engoli muito remedio",
        "ele caiu e o osso ta pra fora",
        "DOR NO PEITU FORTI",
        # a fifth probe's misses
        "meu braço esquerdo ta formigando e doendo o peito",
        "levei uma facada",
        "sofri um acidente de carro agora",
        "meu filho quebrou o braço agora jogando bola",
        # the eleventh session's (a caption probe): the whole pack, a face gone crooked, a bite, a burn
        "meu filho tomou o remédio todo da cartela",
        "ele tomou o vidro inteiro de xarope",
        "minha filha tomou a caixa toda de paracetamol",
        "minha boca ficou torta",
        "a boca do meu pai entortou",
        "fui mordido por um cachorro e tá sangrando muito",
        "o cachorro do vizinho mordeu meu filho e tá sangrando muito",
        "meu filho se queimou com água fervendo",
        "ele tá com o lábio roxo e respirando mal",
        "a boca do meu pai ficou torta",
        "meu filho tomou os comprimidos todos da cartela",
    ],
)
def test_warning_signs_are_medical_emergencies(text):
    assert emergency_kind(text) == MEDICAL


@pytest.mark.parametrize(
    "text",
    [
        "quero me matar",
        "não quero mais viver",
        "ando pensando em suicídio",
        "vontade de morrer",
        "vou acabar com a minha vida",
        "to pensando em sumir, ninguem ia sentir falta",
        "vou acabar com tudo hoje",
        "queria dormir e não acordar mais",
        "não vejo mais sentido em viver",
        # a fifth probe's misses
        "to me cortando de novo",
        "eu me machuco de proposito quando fico triste",
        "queria dormir e nunca mais acordar",
        "a vida nao tem mais sentido",
        "seria melhor se eu nao existisse",
        "nao quero mais estar aqui",
        "quero acabar com tudo",
        "nao aguento mais",
    ],
)
def test_thoughts_of_self_harm(text):
    assert emergency_kind(text) == SELF_HARM


@pytest.mark.parametrize(
    "text",
    [
        "help",  # the bot's menu, in English; not a cry (SAMU was the answer)
        "quero marcar uma consulta com cardiologista",
        "quanto custa a consulta?",
        "tive um infarto em 2019, preciso de acompanhamento com cardiologista",
        "meu pai teve AVC ano passado e quer marcar retorno",
        "a sala tem ar condicionado? fico sem ar condicionado em casa",
        "vocês atendem Unimed?",
        "",
        "   ",
        "dor nas costas",
        "tomo remedio desde o infarto",
        "tive infarto em 2019, quero cardiologista pra hoje",
        "fiquei sem ar de tanto rir",
        "derrame no olho",
        "check up pra prevenir infarto",
        "sangramento forte todo mes, quero gineco",
        "quero me cortar a franja",
        "to morrendo de saudade",
        # a third probe's false alarms
        "socorro, esqueci o horário da consulta",
        "tive que levar meu filho no pronto socorro ontem, perdi a consulta, posso remarcar?",
        "que dor no coração ter que cancelar a consulta",
        "to sufocado de trabalho essa semana",
        "ontem desmaiei no banho, hoje to bem mas quero consulta",
        "tenho medo de ter um infarto, quero fazer exames do coração",
        "meu cachorro foi picado de escorpião ontem",
        "tenho um derrame de pleura, meu médico pediu pra acompanhar",
        "não consigo respirar pelo nariz, rinite atacou",
        "meu chefe vai me matar se eu chegar atrasado",
        "vou me matar de estudar pra prova",
        "quero sumir de tanta vergonha, esqueci de desmarcar",
        "ninguém vai sentir falta do meu antigo plano",
        "estou me cortando de rir",
        "tomei o remédio da pressão hoje de manhã",
        "a cobra do zoológico me picou ano passado",
        "o eletrocardiograma detecta infarto?",
        "preciso de um laudo de convulsao antiga pra pericia",
        "quebrei o braço ano passado, quero ortopedista",
        "não aguento mais essa dor nas costas, quero ortopedista",
        "quero acabar com tudo isso de papelada do convênio",
        "tomei o remédio todo como o médico mandou, preciso de retorno",
        "a receita acabou, tomei o remédio todo",
        "meu cachorro foi picado por uma cobra",
        "minha gata tá com falta de ar",
        # a finished treatment, a pie, a dental brace, a kitchen burn (a review of the eleventh session's rules)
        "tomei a cartela toda do anticoncepcional, posso começar a próxima?",
        "já tomei a caixa toda do antibiótico, preciso de nova receita",
        "tomei os comprimidos todos da caixa",
        "bebi o frasco inteiro do xarope durante a semana",
        "gosto ruim na boca depois de comer torta",
        "a boca com o aparelho entortou o dente",
        "queimei a mão no fogo do fogão",
    ],
)
def test_ordinary_messages_and_histories_are_not_emergencies(text):
    assert emergency_kind(text) is None
