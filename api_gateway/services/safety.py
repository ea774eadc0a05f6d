"""Warning signs of an emergency in a patient's message, found by fixed rules before anything else.

A front desk on WhatsApp is not an emergency service, and a patient may not know that. When a message describes a
warning sign (chest pain, shortness of breath, signs of a stroke, fainting, seizure, heavy bleeding, poisoning,
a severe allergic reaction) or thoughts of self-harm, the bot must say at once where to get help: SAMU 192 or the
nearest emergency room; CVV 188 for self-harm. The check is a rule, not the LLM: it costs no tokens, works in
economy mode and offline, and cannot be talked out of answering by a model that misread the message.

It errs on the side of warning: a false alarm costs one extra paragraph, a missed one can cost a life. Only a
past-tense history ("tive um infarto em 2019", "minha mãe teve AVC em março") or a figure of speech ("quase tive
um infarto com o preço kkk", "sem ar de tanto rir") with no sign that it is happening now ("agora", "socorro")
is left alone, so patients booking a follow-up are not warned on every message.
"""

from __future__ import annotations

import re

from api_gateway.services.nlu.dates import fold

MEDICAL = "medical"
SELF_HARM = "self_harm"


def _words(pattern: str) -> re.Pattern:
    return re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")


_A_LOT = r"(?:muito|mt|mto|demais|bastante|sem parar)"
_TREATMENT = r"(?:d[oa] |de )?(?:anticoncepciona\w*|antibiotico|pilula|tratamento|vitamina\w*)"
_MEDICAL = _words(
    # chest pain and the heart
    r"dor(?:es)? (?:\w+ ){0,3}(?:no|do|nos) peit[ou]|aperto no peito|pressao no peito|peito pesado"
    r"|(?:doendo|doi|doi muito|apertando|queimando) (?:o|no|meu) peito"
    r"|braco esquerdo (?:\w+ ){0,3}(?:formigando|dormente|adormecido|doendo)"
    r"|pontada (?:\w+ ){0,5}peito|peito (?:\w+ ){0,2}(?:apertado|apertando|doendo|doi|queimando)"
    r"|dor (?:\w+ ){0,4}braco esquerdo|infart\w*|enfart\w*|ataque cardiaco|parada cardiaca"
    # breathing
    r"|falta de ar|faltando ar|falta o ar|sem ar(?! condicionado)|puxar o ar|nao (?:esta |ta )?respira(?:ndo)?"
    r"|nao (?:estou |to |ta |esta )?(?:consigo|conseguindo) respirar(?! pelo nariz)|nao consegue respirar"
    r"|dificuldade (?:para|pra|de) respirar|respirando com (?:muita )?dificuldade|sufocando"
    r"|engasgad[oa] (?:agora|e)|engasgando (?:agora|e)"
    r"|(?:labios?|boca|rosto|bebe|crianca) (?:\w+ ){0,2}rox[oa]s?"
    r"|garganta fechando|lingua inchada|(?:boca|garganta|lingua|rosto|olhos) (?:\w+ ){0,4}inchando"
    r"|mal consigo engolir|anafila\w*|reacao alergica (?:grave|forte)|choque anafilatico"
    # stroke
    r"|avc|derrame(?! (?:no|nos|de) (?:olhos?|pleura))|boca (?:torta|entort\w*)"
    # "a boca do meu pai ficou torta" (never "torta" the pie: "boca depois de comer torta"; a brace bending a tooth)
    r"|boca (?:\w+ ){0,4}(?:ficou|esta|ta|tava|estava) torta|boca (?:\w+ ){0,4}entort(?:ou|ando)(?! (?:o|os) dentes?)"
    r"|rosto (?:torto|caido|entortando)"
    r"|(?:lado|metade) (?:\w+ ){0,2}(?:rosto|boca) caid[oa]|face torta|nao fala direito|parou de falar"
    r"|perd\w* (?:a )?forca (?:do|no|de um|em um|dos|nos) (?:bracos?|lado|pernas?)"
    r"|nao (?:consigo|consegue|conseguindo) (?:mexer|levantar|sentir) (?:o|a|os|as|um|uma) (?:bracos?|pernas?|lado)"
    r"|lado do corpo (?:dormente|paralisado)|nao consegue falar|fala enrolada|falando enrolado|falando embolado"
    r"|pior dor de cabeca|confus[oa] (?:\w+ ){0,6}de repente|de repente confus[oa]|perdi a visao|parou de enxergar"
    # consciousness and seizures
    r"|desmai\w*|perdeu (?:a )?consciencia|inconsciente|desacordad[oa]|nao (?:acorda|responde mais)|convuls\w*"
    r"|ataque epileptico|crise convulsiva|(?:se )?tremendo tod[oa] e babando|babando e (?:se )?tremendo"
    r"|se debatendo|se batendo tod[oa]|caiu duro"
    # bleeding, poisoning, injuries
    rf"|hemorragia|sangramento (?:forte|intenso|{_A_LOT}|que nao para)|sangrando {_A_LOT}|sangue que nao para"
    rf"|nao para de sangrar|nao estanca|perdendo (?:{_A_LOT} )?sangue|vomit\w* sangue|tossindo sangue"
    r"|tosse com sangue|overdose|envenenad\w*|envenenamento|intoxicad[oa] (?:agora|com|por)|intoxicacao"
    r"|tomei veneno|(?:tomou|bebeu|engoliu|tomei|bebi|engoli) (?:um pouco de |uma |um )?"
    r"(?:agua sanitaria|veneno|chumbinho|soda(?: caustica)?|produto de limpeza|desinfetante|querosene|gasolina"
    r"|alvejante|cloro|bateria|pilha|moeda|ima)"
    r"|(?:tomou|tomei|engoliu|engoli|vou tomar) (?:um monte|muitos|varios|todos os|uma cartela|a cartela|um vidro|"
    r"o vidro|a caixa) (?:\w+ ){0,2}(?:remedios?|comprimidos?|pilulas?)"
    # an overdose said with the drug's name or without a count: "tomei uma cartela inteira de rivotril"
    r"|(?:tomou|tomei|engoliu|engoli|vou tomar) (?:uma|a|duas|tres) (?:cartelas?|caixas?) inteiras?"
    r"|(?:tomou|tomei|engoliu|engoli) (?:muito|muitos|demais|um monte de) (?:remedios?|comprimidos?|pilulas?)"
    # someone else swallowed the whole pack: "meu filho tomou o remédio todo da cartela", "o vidro inteiro de
    # xarope". Said of oneself ("tomei a cartela toda do anticoncepcional") it is usually a finished treatment.
    rf"|(?:tomou|engoliu|bebeu) (?:o|a) (?:cartela|caixa|vidro|frasco) (?:tod[oa]|inteir[oa])(?! {_TREATMENT})"
    rf"|(?:tomou|engoliu|bebeu) tod[oa] (?:o|a) (?:cartela|caixa|vidro|frasco)(?! {_TREATMENT})"
    rf"|(?:tomou|engoliu) (?:o|os|a|as) (?:remedios?|comprimidos?|pilulas?) tod[oa]s? d[ao] (?:cartela|caixa|vidro"
    rf"|frasco)(?! {_TREATMENT})"
    r"|(?:se )?queim(?:ou|ei|aram) (?:\w+ ){0,3}(?:agua fervendo|oleo quente|alcool|gasolina)"
    r"|(?:tomou|tomei|engoliu|engoli) (?:\w+ ){0,2}(?:remedios?|comprimidos?|pilulas?) (?:demais|de uma vez)"
    r"|(?:picad|mordid)\w* (?:de|por) (?:uma |um )?(?:cobra|escorpiao|aranha|jararaca|cascavel)"
    r"|(?:cobra|escorpiao|aranha|jararaca|cascavel) (?:me |\w+ )?(?:picou|mordeu)"
    r"|osso (?:\w+ ){0,2}(?:pra|para) fora|osso (?:exposto|aparecendo)"
    r"|fratura exposta|queimadura grave|atropelad\w*"
    # injuries: "levei uma facada", "sofri um acidente de carro agora", "quebrou o braço agora"
    r"|(?:levei|levou|tomei|tomou) (?:uma )?(?:facada|tiro|tiros)|facada|acidente de (?:carro|moto|transito|onibus"
    r"|bicicleta)|capot(?:ei|ou|amos)|quebr(?:ei|ou|amos) (?:o|a) (?:braco|perna|pe|clavicula|costela|bacia|femur"
    r"|pescoco|coluna|tornozelo|punho|nariz)"
    r"|baleado|esfaquead\w*|bat\w* a cabeca (?:\w+ ){0,6}(?:desmai\w*|apag\w*|vomit\w*|sonolent\w*|confus\w*)"
    r"|febre (?:muito alta|de 40|de 41)|(?:bebe|nenem|filh[oa]|crianca) de \d+ (?:dias|mes|meses) (?:\w+ ){0,3}febre"
    r"|febre (?:\w+ ){0,6}manchas roxas|manchas roxas (?:\w+ ){0,6}febre"
    r"|gravida (?:\w+ ){0,6}(?:perdendo sangue|sangrando|sangramento)|bolsa (?:estourou|rompeu)"
)
# "Socorro" alone is a cry for help; "socorro, esqueci o horário" or "pronto-socorro" are not.
# ("help" is how some patients ask the bot for its menu: not a cry.)
_CRY_FOR_HELP = re.compile(r"^(?:socorro|socorro socorro|me ajuda socorro|socorro me ajuda)$")
_SELF_HARM = _words(
    r"(?:quero|queria|penso em|pensando em|vontade de|so quero|so queria) (?:morrer|sumir)"
    r"(?! (?:de|por|pra|para|um pouco|uns|umas|daqui|das|dos)\b)"
    r"|(?:quero|queria|vou|penso em|pensando em|vontade de|devia) me matar(?! de )|suicid\w*"
    r"|tirar (?:a )?minha (?:propria )?vida|acabar com (?:a )?minha vida|acabar com tudo (?:hoje|agora|de vez)"
    r"|nao quero mais viver|nao aguento mais viver|nao vejo (?:mais )?sentido (?:em|na) (?:viver|vida)"
    r"|ninguem (?:ia|vai|iria) sentir (?:a )?(?:minha )?falta(?! d[oa]s? )|dormir (?:pra|para) sempre"
    r"|dormir e nao acordar mais|me jogar (?:da|de|do|na|no|em) \w+|desaparecer (?:pra|para) sempre"
    r"|sumir (?:pra|para) sempre"
    r"|me machucar de proposito|(?:vou|quero|vontade de) me cortar(?! (?:o|a|os|as|meu|minha|um|uma|de) )"
    r"|(?:se|me) cortando(?! de (?!novo))|automutila\w*|me machuc\w* de proposito|me corto (?:quando|toda|sempre)"
    r"|dormir e (?:nunca mais|nao) acordar|(?:a )?vida (?:nao tem|perdeu o) (?:mais )?sentido"
    r"|(?:melhor|bom) se eu nao existisse|queria nao existir|nao queria (?:mais )?existir"
    r"|nao quero mais (?:estar|ficar) aqui|(?:quero|vou) acabar com tudo$|^nao aguento mais$"
)
# A history, not an emergency: "tive um infarto em 2019", "meu pai teve AVC em março", "desmaiei ontem, hoje
# estou bem", a long-standing complaint ("falta de ar quando subo escada faz meses").
_MONTHS = r"janeiro|fevereiro|marco|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro"
_PAST = _words(
    r"ano passado|anos atras|meses atras|semanas atras|mes passado|semana passada|ha \d+ (?:anos?|meses|semanas)"
    rf"|em (?:19|20)\d\d|em (?:{_MONTHS})|ja tive|ja teve|tive|teve|historico|sequela\w*|acompanhamento|retorno"
    r"|pos (?:avc|infarto)|depois do (?:avc|infarto|derrame)|desde o (?:avc|infarto|derrame)|(?<!desde )ontem"
    r"|laudo|pericia|atestado|antig[oa]"
    r"|anteontem|ja passou|(?:a |o )?\w+ passou(?! mal)|hoje (?:to|estou|ta|esta) bem|faz (?:meses|anos)"
    r"|ha (?:meses|anos)|as vezes|quando (?:subo|faco esforco|corro)|tenho asma|epilepsia|vive engasgando"
)
# Words of a joke, a figure of speech, a fear or someone else's animal: "quase tive um infarto com o preço kkk",
# "sem ar de tanto rir", "peito apertado de saudade", "tenho medo de ter um infarto", "meu cachorro foi picado".
_FIGURATIVE = _words(
    r"kkk+|rsrs\w*|ha(?:ha)+|quase (?:tive|me deu|infartei|morri|desmaiei)|de tanto|de sono|de rir|de vergonha"
    r"|prevenir|prevencao|risco de|medo de|todo mes|todos os meses|menstrua\w*|saudade|de trabalho|com tanta coisa"
    r"|(?:meu|minha|nosso|nossa|seu|sua) (?:\w+ )?(?:cachorr[oa]|gat[oa])|veterinari\w*"
    r"|pelo nariz|nariz entupido|rinite|sinusite"
    # a question about an exam or a disease, not an event: "o eletrocardiograma detecta infarto?"
    r"|detecta\w*|diagnostic\w*|identifica\w*|previne|evita|sintomas? de"
)
_NOW = _words(r"agora|neste momento|nesse momento|urgente|socorro|esta tendo|ta tendo|estou tendo|to tendo")
# Places and questions that name an emergency without being one.
_NOT_AN_EMERGENCY = re.compile(r"\bpronto socorro\b|\bprimeiros? socorros?\b|\bsocorro financeiro\b")


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text or "")).split())


def emergency_kind(text: str) -> str | None:
    """`SELF_HARM`, `MEDICAL` or None for a patient's message."""
    plain = _NOT_AN_EMERGENCY.sub(" ", _plain(text)).strip()
    if not plain:
        return None
    if _SELF_HARM.search(plain):
        return SELF_HARM
    if _CRY_FOR_HELP.match(plain):
        return MEDICAL
    if not _MEDICAL.search(plain):
        return None
    if (_PAST.search(plain) or _FIGURATIVE.search(plain)) and not _NOW.search(plain):
        return None
    return MEDICAL
    return None
