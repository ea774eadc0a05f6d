from django.core.management.base import BaseCommand

from api_gateway.services.inbound import inbound_sweep


class Command(BaseCommand):
    help = (
        "Re-enqueues inbound WhatsApp messages accepted but never processed, re-sends pending replies, and expires "
        "messages older than WHATSAPP_MAX_MESSAGE_AGE_HOURS."
    )

    def handle(self, *args, **options):
        result = inbound_sweep()
        self.stdout.write(
            f"re-enqueued {len(result.requeued)}, failed {len(result.failed)}, replies re-sent {len(result.resent)}, "
            f"expired {len(result.expired)}"
        )
