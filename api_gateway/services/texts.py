"""What the bot says, in Brazilian Portuguese. Kept in one place so tests can assert on them and staff can
review the tone without reading the flow."""

import datetime as dt

WEEKDAYS = ["segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"]
WEEKDAYS_SHORT = ["Seg", "Ter", "Qua", "Qui", "Sex", "Sáb", "Dom"]

GREETING = (
    "Olá{name}! 👋 Sou o assistente virtual da {clinic}. Posso marcar, remarcar ou cancelar consultas e tirar "
    "dúvidas sobre médicos, especialidades, convênios, exames e preços. Como posso ajudar?"
)
GREETING_SHORT = "Olá! 👋 Sou o assistente virtual da {clinic}."
MENU_AGAIN = "Posso ajudar a marcar uma consulta ou tirar alguma dúvida sobre a clínica."
NOT_UNDERSTOOD = "Desculpe, não entendi. 🤔"
ASK_NAME = "Para começar, qual é o seu nome completo?"
ASK_PATIENT_NAME = "Qual é o nome completo do paciente?"
ASK_RELATIVE_NAME = "Qual é o nome completo {whose}? (é o nome que vai na consulta)"
RELATIVES = {
    "filhos": "do primeiro filho (marco uma consulta de cada vez)",
    "filhas": "da primeira filha (marco uma consulta de cada vez)",
    "netos": "do primeiro neto (marco uma consulta de cada vez)",
    "netas": "da primeira neta (marco uma consulta de cada vez)",
    "filho": "do seu filho",
    "filha": "da sua filha",
    "pai": "do seu pai",
    "mae": "da sua mãe",
    "esposa": "da sua esposa",
    "esposo": "do seu esposo",
    "marido": "do seu marido",
    "irma": "da sua irmã",
    "irmao": "do seu irmão",
    "sobrinho": "do seu sobrinho",
    "sobrinha": "da sua sobrinha",
    "neto": "do seu neto",
    "neta": "da sua neta",
    "enteado": "do seu enteado",
    "enteada": "da sua enteada",
    "bebe": "do bebê",
    "sogra": "da sua sogra",
    "sogro": "do seu sogro",
    "tia": "da sua tia",
    "tio": "do seu tio",
    "prima": "da sua prima",
    "primo": "do seu primo",
    "namorada": "da sua namorada",
    "namorado": "do seu namorado",
    "companheira": "da sua companheira",
    "companheiro": "do seu companheiro",
}  # "vó"/"vô" fold alike: "do paciente"
# Plural relatives ("pros meus dois filhos"): whom the second booking is for, and how it is offered.
OTHER_RELATIVE = {
    "filhos": ("filho", "a consulta do outro filho"),
    "filhas": ("filha", "a consulta da outra filha"),
    "netos": ("neto", "a consulta do outro neto"),
    "netas": ("neta", "a consulta da outra neta"),
}
ONE_AT_A_TIME = "Marco uma consulta de cada vez: primeiro a {first}, depois a {then}."
NEXT_PATIENT_OFFER = "Vamos marcar agora {whose}?"
NO_NEXT_BOOKING = "Tudo bem! Quando quiser marcar a outra consulta, é só chamar. 🙂"
ASK_NAME_AGAIN = "Não consegui identificar o nome. Pode me dizer o seu nome completo? (ex.: Maria da Silva)"
ASK_RELATIVE_NAME_AGAIN = (
    "Não consegui identificar o nome. Pode me dizer o nome completo {whose}? (ex.: Maria da Silva)"
)
CONFIRM_PROFILE_NAME = "Posso registrar a consulta no nome de *{name}*?"
ASK_SPECIALTY = "Com qual especialidade você quer se consultar?"
SPECIALTY_NOT_FOUND = "Não encontrei essa especialidade na clínica."
SPECIALTY_MISSING = "A clínica não atende {specialty}."
COMPLAINT_SPECIALTY = "Para {complaint}, a especialidade que costuma atender é *{specialty}*."
COMPLAINT_NOT_SEEN = "Para {complaint}, o indicado é {specialty}, que a clínica não atende."
OFFER_BOOKING = "Quer marcar uma consulta?"
COMPLAINT_ALSO = (
    "Para {complaint}, a especialidade que costuma atender é *{specialty}*. Vamos terminar esta marcação; depois, "
    "se quiser, marco outra consulta."
)
ASK_PLAN = "A consulta vai ser particular ou pelo convênio? Escolha na lista ou escreva o nome do seu convênio."
ASK_PLAN_AGAIN = (
    "A consulta vai ser particular ou pelo convênio? Da última vez foi pelo {plan}: se for o mesmo, é só escolher na "
    "lista."
)
ASK_PLAN_MORE = " Se o seu não estiver na lista, escreva o nome."
ASK_PLAN_WHICH = "Qual é o seu convênio? Escolha na lista ou escreva o nome dele."
PLAN_PRIVATE_ROW = "Particular"
ASK_DOCTOR = "Estes são os médicos de {specialty}{plan_note}{day_note}. Com quem você prefere?"
ONLY_DOCTOR = "Em {specialty}{day_note}{plan_note}, quem atende é {doctor}{price_note}."
ALSO_DOCTOR = "Em {specialty}{day_note}{plan_note}, também atende {doctor}{price_note}."
NO_DOCTOR_FOR_PLAN = "Nenhum médico de {specialty} atende pelo convênio {plan}; a consulta pode ser particular."
ASK_DOCTOR_OR_PRIVATE = (
    "Pelo convênio {plan}: {names}. Ou, se preferir, {doctor} como particular (R$ {price}). Com quem você prefere?"
)
PLAN_NOT_IN_SPECIALTY = "Nenhum médico de {specialty} atende pelo convênio {plan}."
DOCTOR_REJECTS_PLAN = "{doctor} não atende pelo convênio {plan}."
DOCTOR_KEPT_PRIVATE = (
    "{doctor} não atende pelo convênio {plan}: a consulta com {doctor} fica particular (R$ {price}). Se preferir "
    "usar o convênio, diga *outro médico*."
)
NO_DOCTOR_FOR_SPECIALTY = "No momento não há médicos de {specialty} com agenda na clínica."
ASK_DATE = "Estes são os próximos horários livres com {doctor}. Escolha um ou me diga a data que prefere."
ASK_DATE_FROM = (
    "Estes são os horários livres com {doctor} a partir de {date}. Escolha um ou me diga a data que prefere."
)
ASK_TIME = "Horários livres com {doctor} em {date}:"
AVAILABILITY = "Sim! Para {date}, há horários livres com {items}."
AVAILABILITY_SPECIALTIES = "Sim! Para {date}, há horários livres em {items}."
NO_AVAILABILITY = "Para {date}, não há horários livres {who}; já te mostro os mais próximos."
OPEN_ON_DAY = "Sim, atendemos {day}."
CLOSED_ON_DAY = "Não, {day} a clínica não abre."
CLOSED_ON_HOLIDAYS = "Nos feriados a clínica não abre."
EXAM_NOT_OFFERED = "Não fazemos {exam} aqui. Os exames que fazemos são: {items}."
JUST_BOOKED_CHANGE = (
    "Sua consulta de {when} com {doctor} já está marcada. Para mudar a data ou o horário, diga *remarcar*; para "
    "corrigir o nome, diga *atendente* que a recepção ajusta."
)
PLAN_NOT_SURE = (
    "Sem problema! Se você tem um plano de saúde, o nome está na carteirinha; escolha-o na lista. Sem plano, a "
    "consulta é *particular*."
)
MORE_SLOTS = "Mais horários livres com {doctor}:"
NO_MORE_ON_DAY = "Não há mais horários livres em {date}."
NO_MORE_SLOTS = "Não há mais horários livres com {doctor} nas próximas semanas. Quer tentar outro médico?"
DOCTOR_DURATION = "A consulta com {doctor} dura {minutes} minutos."
DURATION_SINGLE = "As consultas duram {minutes} minutos."
DURATION_RANGE = "As consultas duram de {low} a {high} minutos, conforme o médico."
CONSULTATION_PRICE_RANGE = (
    'A consulta particular custa de R$ {low} a R$ {high}, conforme o médico (pergunte, por exemplo, "quanto custa '
    'cardiologia?"). Pelo convênio, segue as regras do seu plano.'
)
NO_SLOTS_ON_DATE = "{doctor} não tem horários livres em {date}."
DOCTOR_NOT_ON_WEEKDAY = "{doctor} não atende {day}."
NOBODY_ON_WEEKDAY = "Nenhum médico de {specialty} atende {day}."
NO_SLOTS_IN_PERIOD = "{doctor} não tem horários livres {period} {where}."
PERIOD_LABELS = {"manha": "de manhã", "tarde": "à tarde", "noite": "à noite"}
NEAREST_SLOTS = "Os horários livres mais próximos são:"
SLOT_TAKEN = "Esse horário ({when}) não está disponível com {doctor}."
NO_SLOTS_AT_ALL = (
    "{doctor} não tem horários livres nos próximos dias. Quer escolher outro médico ou falar com um atendente?"
)
NO_SLOTS_ONLY_DOCTOR = (
    "{doctor} não tem horários livres nos próximos dias, e é quem atende {specialty} aqui. Para ver um encaixe, "
    "fale com um atendente."
)
PRIVATE_WITH_OTHERS = "Particular, outros médicos atendem: é só dizer *particular*."
BUTTON_OTHER_DOCTOR = "Outro médico"
WAITLIST_OFFER = (
    "{doctor} não tem horários livres nos próximos dias. Posso colocar você na lista de espera: aviso pelo WhatsApp "
    "assim que abrir um horário. Se preferir, diga o nome de outro médico ou fale com um atendente."
)
WAITLIST_OFFER_ONLY_DOCTOR = (
    "{doctor} não tem horários livres nos próximos dias, e é quem atende {specialty} aqui. Posso colocar você na "
    "lista de espera: aviso pelo WhatsApp assim que abrir um horário. Se preferir, fale com um atendente."
)
WAITLIST_JOINED = (
    "Pronto, você está na lista de espera {doctor}. Aviso pelo WhatsApp assim que abrir um horário (fica com quem "
    "marcar primeiro). A lista vale por {days} dias."
)
WAITLIST_ALREADY = "Você já está na lista de espera {doctor}. Aviso pelo WhatsApp assim que abrir um horário."
WAITLIST_DECLINED = "Tudo bem, não coloquei você na lista de espera."
WAITLIST_HOW = (
    "Funciona assim: quando abrir um horário com {doctor} (uma desistência, por exemplo), aviso pelo WhatsApp, por "
    "ordem de chegada na lista. O horário fica com quem marcar primeiro, e a lista vale por {days} dias. Quer entrar?"
)
WAITLIST_LEFT = "Pronto, tirei você da lista de espera {doctors}."
WAITLIST_NONE = "Você não está em nenhuma lista de espera."
WAITLIST_STAYS = (
    "Tudo bem. Você continua na lista de espera {doctor}: aviso pelo WhatsApp quando abrir outro horário. Se não "
    "quiser mais, diga *sair da lista de espera*."
)
WAITLIST_NOT_ON = "Você não está na lista de espera {doctor}."
WAITLIST_DOCTOR_GONE = "{doctor} não está mais atendendo pela clínica. Posso ajudar a marcar com outro profissional?"
ON_WAITLIST = "Você está na lista de espera {doctors}. Para sair, diga *sair da lista de espera*."
# The text of the WHATSAPP_WAITLIST_TEMPLATE notice, as the history shows it ({{1}} doctor, {{2}} date, {{3}} time).
WAITLIST_OPENED = (
    "Abriu horário com {doctor}! O primeiro livre é {when} às {time}. Toque em *Ver horários* para escolher o "
    "seu: os horários ficam com quem marcar primeiro."
)
DATE_INVALID = "O dia {date} não existe no calendário."
WEEKDAY_MISMATCH = "Obs.: o dia {date} é {weekday}, não {said}."
DATE_IN_PAST = "Essa data já passou. Pode escolher uma data a partir de hoje?"
SUMMARY = (
    "Confira os dados da consulta:\n\n"
    "👤 Paciente: {patient}\n"
    "🩺 {doctor} ({specialty})\n"
    "📅 {date} às {time}\n"
    "💳 {payment}\n\n"
    "Posso confirmar?"
)
BOOKED = (
    "✅ Consulta agendada!\n\n"
    "👤 {patient}\n"
    "🩺 {doctor} ({specialty})\n"
    "📅 {date} às {time}\n"
    "💳 {payment}\n"
    "📍 {address}\n\n"
    "{policies}"
)
WHAT_TO_CHANGE = "Sem problemas. O que você quer alterar: {fields}? Ou diga 'cancelar' para desistir."
CHANGE_FIELDS_BOOKING = "o nome, a data, o horário, o médico ou o convênio"
CHANGE_FIELDS_MOVE = "o nome, a data, o horário ou o médico"
CHANGE_NAME, CHANGE_DATE, CHANGE_TIME, CHANGE_DOCTOR = "O nome", "A data", "O horário", "O médico"
CHANGE_PLAN = "Convênio/particular"
LATER_CONFIRMING = (
    "Tudo bem, fico no aguardo! O horário só fica reservado depois que você confirmar: quando decidir, é só "
    "responder *Confirmar* (ou me dizer outro dia)."
)
LATER = "Tudo bem, fico no aguardo! Quando decidir, é só responder por aqui. 🙂"
BOOKING_ABANDONED = "Tudo bem, não marquei nada. Se precisar, é só chamar. 🙂"
SERVICE_COMPLAINT = (
    "Sinto muito por isso. 😔 Sua opinião é importante: posso transferir você para a equipe da recepção, que vai "
    "ouvir e resolver por aqui. Quer que eu transfira?"
)
HANDOFF = (
    "Certo! Vou transferir a conversa para um atendente da recepção, que vai responder por aqui assim que possível. 🙋"
)
EXAM_BOOKING = (
    "Por aqui eu marco consultas; exames são agendados pela recepção{phone}. Se quiser, digite *atendente* que eu "
    "transfiro a conversa."
)
TURN_FAILED = (
    "Desculpe, tive um problema para processar sua mensagem. 😔 Pode enviar de novo? Se preferir, digite "
    "*atendente* para falar com a recepção."
)
HANDOFF_HOURS = "Nosso horário de atendimento: {hours}."
HANDOFF_WAY_BACK = "Para voltar ao atendimento automático, é só digitar *menu*."
HANDOFF_AFTER_FAILURES = (
    "Desculpe, não estou conseguindo entender. Vou transferir a conversa para um atendente da recepção. 🙋"
)
# The approved template WHATSAPP_FOLLOWUP_TEMPLATE, as stored in the conversation ({{1}}: the clinic's name). No
# patient name: the session's may be a child's the parent booked for.
STAFF_FOLLOWUP = (
    "Olá! Aqui é da {clinic}. Temos um retorno sobre a sua mensagem: responda aqui para continuarmos a conversa."
)
# The e-mail to the reception (HANDOFF_NOTIFY_EMAILS): no message content and only the phone's last digits.
HANDOFF_EMAIL_SUBJECT = "[{clinic}] {name} aguarda atendimento no WhatsApp"
HANDOFF_EMAIL_BODY = (
    "{name} (telefone com final {phone_end}) foi transferido(a) para a equipe às {time} de {date}: pediu para falar "
    "com uma pessoa, ou o bot não entendeu as mensagens. O bot não responde mais até a conversa ser devolvida.\n\n"
    "Leia a conversa e responda por aqui (a janela do WhatsApp fica aberta 24 horas depois da última mensagem do "
    "paciente):\n{link}\n"
)
HANDOFF_ANSWER_EMAIL_SUBJECT = "[{clinic}] {name} respondeu no WhatsApp"
HANDOFF_ANSWER_EMAIL_BODY = (
    "{name} (telefone com final {phone_end}) respondeu às {time} de {date} à mensagem de retorno da equipe. A janela "
    "do WhatsApp está aberta de novo por 24 horas.\n\nLeia a conversa e responda por aqui:\n{link}\n"
)
RESTARTED = "Tudo bem, vamos recomeçar. " + MENU_AGAIN
ACKNOWLEDGED = "Combinado! Se precisar de algo, é só chamar. 🙂"
THANKS = "Por nada! Se precisar de algo mais, é só chamar. 🙂"
YOU_ARE_WELCOME = "Por nada! 🙂"
GOODBYE = "Até logo! Cuide-se. 👋"
VOICE_NOT_HEARD = (
    "Desculpe, não consegui ouvir o seu áudio. 🙏 Pode me escrever o que precisa? "
    "Se for uma emergência, ligue para o SAMU (192)."
)
ATTACHMENT_CAPTION_READ = (
    "Recebi o seu arquivo, mas não consigo abrir imagens, documentos ou vídeos por aqui: li só o que você escreveu."
)
MEDIA_NOT_SUPPORTED = "Por enquanto eu só consigo entender mensagens de texto. 🙂 Pode me escrever o que precisa?"
LOCATION_RECEIVED = "Recebi sua localização, obrigado! Nosso endereço é: {address}."
RESUME = "\n\nVoltando ao que estávamos fazendo: {prompt}"
# Warning signs of an emergency (api_gateway.services.safety): said before anything else, in every state.
EMERGENCY_MEDICAL = (
    "⚠️ Pelo que você descreveu, pode ser uma emergência. Ligue agora para o SAMU (192) ou vá ao pronto-socorro "
    "mais próximo. Este canal é para agendamentos e dúvidas e não atende urgências."
)
EMERGENCY_SELF_HARM = (
    "💛 Sinto muito que você esteja passando por isso. Você não está sozinho(a): o CVV atende 24 horas, de graça, "
    "pelo telefone 188 ou pelo chat em cvv.org.br. Se você estiver em perigo agora, ligue 192 (SAMU) ou vá ao "
    "pronto-socorro mais próximo."
)
NO_EMERGENCY_CARE = (
    "Este canal não atende urgências. Em caso de emergência, ligue para o SAMU (192) ou vá ao pronto-socorro mais "
    "próximo. Para uma consulta, posso procurar o horário livre mais próximo: é só dizer a especialidade."
)
NO_APPOINTMENTS = "Não encontrei consultas marcadas para este número."
CHOOSE_APPOINTMENT = "Encontrei estas consultas marcadas. Qual delas?"
CONFIRM_CANCEL = "Quer mesmo cancelar a consulta de {when} com {doctor}? Se preferir outro dia, diga *remarcar*."
CONFIRM_CANCEL_ALL = "Quer mesmo cancelar estas {count} consultas?\n{items}"
CANCELLED_ALL = "✅ Consultas canceladas:\n{items}"
NO_APPOINTMENT_WITH = "Não encontrei consulta sua com {doctor}."
NO_APPOINTMENT_IN = "Não encontrei consulta sua de {specialty}."
NO_APPOINTMENT_ON = "Não encontrei consulta sua em {date}."
CANCEL_ASKED_AGAIN = "Só para confirmar, já que faz um tempo desde a pergunta:"
NOTHING_CHANGED = "Tudo bem, nada foi alterado: suas consultas continuam marcadas."
LATE_CHANGE = (
    "⚠️ Faltam menos de {hours} horas para esta consulta: pela política da clínica, cancelar ou remarcar sem custo "
    "é possível até {hours} horas antes."
)
DOCTOR_NOT_FOUND = "Não encontrei {doctor} entre os médicos da clínica."
DOCTOR_PROFILE = "{doctor} ({crm}) atende {specialties}.{bio} Consulta particular: R$ {price}. Convênios: {plans}."
DOCTOR_AGENDA = "{doctor} atende: {hours}."
DOCTOR_NOT_OF_SPECIALTY = "Não: {doctor} atende {his}. Em {specialty}: {others}."
DOCTOR_WORKS_ON = "Sim, {doctor} atende {when}, {hours}."
DOCTOR_OFF_ON = "Não: {doctor} não atende {when}. Atende: {hours}."
DOCTOR_NO_AGENDA = "{doctor} não tem horários de atendimento cadastrados no momento."
SPECIALTY_AGENDA = "Em {specialty}: {items}."
CLINIC_DOCTORS_ON = "{when}, atendem: {items}."
CLINIC_NOBODY_ON = "{when}, nenhum médico atende."
SPECIALTY_ON_DAY = "{when}, em {specialty}, atendem: {items}."
SPECIALTY_OFF_ON = "{when}, nenhum médico de {specialty} atende. Quem atende: {items}."
CANT_ATTEND = "Tudo bem, imprevistos acontecem."
PRICE_CHANGED = "Atenção: o valor da consulta foi atualizado pela clínica agora há pouco. Confira antes de confirmar:"
# The day-before reminder. It goes out as the approved template WHATSAPP_REMINDER_TEMPLATE, whose body must read
# the same with {{1}}..{{5}} in place of the fields (docs/operations.md); this text is what we store and show.
REMINDER = (
    "Olá! Lembrete da consulta de {patient} com {doctor} {when} às {time}. Endereço: {address}. "
    "Você confirma a presença?"
)
# Sent as the approved template WHATSAPP_CANCELLATION_TEMPLATE when the staff cancel an appointment in the admin
# (body with {{1}}..{{4}} in place of the fields, docs/operations.md).
CANCELLED_BY_CLINIC = (
    "Olá! A consulta de {patient} com {doctor} {when} às {time} foi cancelada pela clínica. Pedimos desculpas. "
    "Para marcar outro horário, é só responder esta mensagem."
)
# Sent as the approved template WHATSAPP_RESCHEDULE_TEMPLATE when an agenda block takes an appointment's time, with
# the quick-reply buttons "Remarcar" and "Cancelar consulta" (body with {{1}}..{{5}}, docs/operations.md).
BLOCK_NOTICE = (
    "Olá! {away} A consulta de {patient} com {doctor} {when} às {time} precisa de outro horário. Toque em "
    "*Remarcar* para escolher um novo por aqui, ou em *Cancelar consulta*. Pedimos desculpas."
)
REMINDER_GONE = (
    "Não encontrei essa consulta entre as marcadas para este número. Para ver as suas, escreva *minhas consultas*."
)
REMINDER_CANCELLED = "Essa consulta já foi cancelada. Se quiser marcar outra, é só me dizer."
REMINDER_PAST = "Essa consulta já passou. Se precisar de outra, é só me dizer."
ATTENDANCE_CONFIRMED = "Obrigado por confirmar! Presença confirmada: {when}.\n📍 {address}"
CANCELLED = "Consulta de {when} com {doctor} cancelada. Se quiser marcar outra, é só me dizer. 🙂"
KEEP_APPOINTMENT = "Tudo bem, a consulta continua marcada."
RESCHEDULE_ABANDONED = "Tudo bem, não remarquei nada: sua consulta continua marcada como estava."
RESCHEDULE_START = "Vamos remarcar a consulta de {when} com {doctor}."
RESCHEDULED = "✅ Consulta remarcada para {date} às {time} com {doctor}.\n📍 {address}"
MY_APPOINTMENTS = "Suas próximas consultas:\n{items}"
APPOINTMENT_IN_BLOCK = (
    "⚠️ {away} A consulta de {when} precisa de outro horário: diga *remarcar* para escolher um aqui, ou aguarde o "
    "contato da clínica."
)
APPOINTMENT_IN_BLOCK_STAFF = "⚠️ {away} A consulta de {when} precisa de outro horário: a equipe vai combinar com você."
DOCTOR_SWITCHED = "Certo, com {doctor}."
BOOKING_WITH = "A consulta que estamos marcando é com {doctor}."
ARRIVING = "Que bom! É só se apresentar na recepção."
LATE_HELP = (
    " Se for chegar depois disso, posso remarcar a consulta (diga *remarcar*), ou a recepção pode ajudar (diga "
    "*atendente*)."
)
UNKNOWN_ANSWER = "Não encontrei essa informação nos dados da clínica. Posso transferir para um atendente, se preferir."
ASK_WHICH_EXAM = "Sobre qual exame? Temos: {items}."
PLAN_ACCEPTED = "Sim, aceitamos {plan}. {doctors_note}"
PLANS_LIST = "Os convênios aceitos são: {items}. Também atendemos particular."
PLAN_NOT_TAKEN = "Não atendemos pelo convênio {plan}. Os convênios aceitos são: {items}. Também atendemos particular."
RESCHEDULE_OTHER_SPECIALTY = (
    "{doctor} não atende {specialty}, a especialidade desta consulta: para isso é preciso marcar uma nova consulta. "
    "Sigo remarcando esta com o mesmo médico."
)
RESCHEDULE_OTHER_PLAN = (
    "{doctor} não atende pelo convênio {plan}, o desta consulta. Sigo remarcando esta com o mesmo médico."
)
RESCHEDULE_KEEPS_PAYMENT = (
    "Ao remarcar, a consulta continua como foi marcada ({payment}). Para mudar o convênio, é preciso cancelar esta "
    "e marcar uma nova."
)
PLAN_NOT_TAKEN_BOOKING = "Não atendemos pelo convênio {plan}; a consulta pode ser particular."
PLAN_WITHOUT_DOCTORS = "No momento nenhum médico atende pelo convênio {plan}. Também atendemos particular."
PLAN_IN_SPECIALTY = "Em {specialty}, atendem pelo convênio {plan}: {items}."
DOCTOR_PLANS = "{doctor} atende pelos convênios: {items}."
DOCTOR_TAKES_PLAN = "Sim, {doctor} atende pelo convênio {plan}."
DOCTOR_REFUSES_PLAN = "Não: {doctor} não atende pelo convênio {plan}."
OTHERS_TAKE_PLAN = "Pelo {plan}, na mesma especialidade, atendem: {items}."
EXAM_PRICE = "{exam}: R$ {price}."
EXAM_PREP = "Preparo para {exam}: {prep}"
DOCTOR_PRICE = "A consulta particular com {doctor} custa R$ {price}."
SPECIALTY_PRICE = "Consulta particular em {specialty}: {items}."
PLAN_PRICE_ANY = "Pelo convênio {plan}, a consulta segue as regras do seu plano. Atendem por ele: {items}."
PLAN_PRICE_COVERED = "Pelo convênio {plan}, a consulta segue as regras do seu plano com {items}."
PLAN_PRICE_ALSO_PRIVATE = "Particular, a consulta custa R$ {price}."
PLAN_PRICE_OTHERS = "Só particular: {items}."
PLAN_PRICE_PRIVATE = "Consulta particular: {items}."
PLAN_PRICE_DOCTOR_OUT = "{doctor} não atende pelo convênio {plan}. A consulta particular custa R$ {price}."
DOCTORS_LIST = "Nossos médicos{where}: {items}."
SPECIALTY_AVAILABLE = "Sim, temos {specialty}. Quem atende: {items}."
SPECIALTIES_LIST = "Nossas especialidades: {items}."
EXAMS_LIST = "Exames realizados: {items}."

BUTTON_CONFIRM = "Confirmar"
BUTTON_CHANGE = "Alterar"
BUTTON_GIVE_UP = "Desistir"
BUTTON_YES = "Sim"
BUTTON_NO = "Não"
BUTTON_RESCHEDULE = "Remarcar"
BUTTON_BOOK = "Marcar consulta"
BUTTON_QUESTIONS = "Tirar dúvidas"
BUTTON_HUMAN = "Falar c/ atendente"
BUTTON_WAITLIST = "Lista de espera"
QUESTIONS_PROMPT = (
    "Claro! Escolha um assunto na lista ou escreva sua pergunta (endereço, horários, convênios, exames, preparo, "
    "preços)."
)


def money(value) -> str:
    """'350.00' -> '350,00' (Brazilian decimal comma)."""
    text = f"{float(value):,.2f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".")


def date_long(day: dt.date) -> str:
    return f"{WEEKDAYS[day.weekday()]}, {day:%d/%m/%Y}"


def date_short(day: dt.date) -> str:
    return f"{WEEKDAYS_SHORT[day.weekday()]} {day:%d/%m}"


def slot_title(when: dt.datetime) -> str:
    return f"{date_short(when.date())} às {when:%H:%M}"


WEEKDAYS_PLURAL = ["segundas", "terças", "quartas", "quintas", "sextas", "sábados", "domingos"]
WEEKDAYS_BARE = ["segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo"]


def day_hours(shifts: list[dict], weekday: int) -> str:
    """ "das 07:00 às 12:00 e das 14:00 às 18:00": a doctor's shifts on one weekday."""
    return " e ".join(f"das {sh['inicio']} às {sh['fim']}" for sh in shifts if sh["dia_semana"] == weekday)


def weekly_hours(shifts: list[dict]) -> str:
    """ "segunda a sexta, das 07:00 às 12:00; sábados, das 08:00 às 12:00": a doctor's week, days with the same
    hours together, three or more days in a row as a range."""
    days_by_hours: dict[str, list[int]] = {}
    for weekday in sorted({sh["dia_semana"] for sh in shifts}):
        days_by_hours.setdefault(day_hours(shifts, weekday), []).append(weekday)
    parts = []
    for hours, days in sorted(days_by_hours.items(), key=lambda item: item[1][0]):
        runs: list[list[int]] = []
        for day in days:
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        names = [
            f"{WEEKDAYS_BARE[run[0]]} a {WEEKDAYS_BARE[run[-1]]}" if len(run) >= 3 else WEEKDAYS_PLURAL[day]
            for run in runs
            for day in (run[:1] if len(run) >= 3 else run)
        ]
        parts.append(f"{join_names(names)}, {hours}")
    return "; ".join(parts)


def on_weekday(weekday: int) -> str:
    """ "às segundas", "aos sábados"."""
    return f"{'aos' if weekday >= 5 else 'às'} {WEEKDAYS_PLURAL[weekday]}"


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def of_doctor(name: str) -> str:
    """ "da Dra. Ana Souza", "do Dr. Rafael Teixeira": the name after "lista de espera"."""
    if name.startswith("Dra"):
        return f"da {name}"
    return f"do {name}" if name.startswith("Dr") else f"de {name}"


def join_names(names: list[str]) -> str:
    names = [n for n in names if n]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " e " + names[-1]
