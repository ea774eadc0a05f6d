"""Talk to the bot from a terminal, through the same conversation service the webhook uses (no WhatsApp)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from api_gateway.services.conversation import turn_handle


class Command(BaseCommand):
    help = "Converse com o bot pelo terminal (linhas do paciente pela entrada padrão; funciona com pipe)."

    def add_arguments(self, parser):
        parser.add_argument("--phone", required=True, help="Telefone do paciente, só dígitos (ex.: 5511999990001).")
        parser.add_argument("--name", default="", help="Nome de perfil do WhatsApp (apenas sugestão).")

    def handle(self, *args, phone: str, name: str, **options):
        digits = "".join(ch for ch in phone if ch.isdigit())
        if not 8 <= len(digits) <= 15:
            raise CommandError("Telefone inválido: use de 8 a 15 dígitos, com DDI e DDD (ex.: 5511999990001).")
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                self.stdout.write("Você: ", ending="")
                self.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            result = turn_handle(phone=digits, text=text, profile_name=name)
            if result.reply.send:
                self.stdout.write(f"Bot: {result.reply.as_text()}\n")
            else:
                self.stdout.write("Bot: (conversa com um atendente humano; o bot não responde)\n")
