from django.core.management.base import BaseCommand

from api_gateway.services.reminders import reminders_send


class Command(BaseCommand):
    help = (
        "Sends the day-before appointment reminders due now (the WHATSAPP_REMINDER_TEMPLATE template; each "
        "appointment once). Celery beat runs this every 10 minutes; use it where beat does not run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List the appointments due; send nothing.")

    def handle(self, *args, **options):
        run = reminders_send(dry_run=options["dry_run"])
        if run.skipped == "disabled":
            self.stdout.write("reminders are off: set WHATSAPP_REMINDER_TEMPLATE to the approved template's name")
            return
        if options["dry_run"]:
            ids = ", ".join(str(pk) for pk in run.due) or "none"
            self.stdout.write(f"{len(run.due)} reminder(s) due (appointment ids: {ids}); nothing sent")
        if run.skipped:
            self.stdout.write(f"nothing sent now: {run.skipped} (reminders go out from 08:00 to 20:00)")
        if options["dry_run"] or run.skipped:
            return
        self.stdout.write(
            f"reminders stored and sent {len(run.stored)}, without a WhatsApp number {len(run.no_number)}, "
            f"earlier ones retried {len(run.resent)}"
        )
