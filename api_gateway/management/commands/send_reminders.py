from django.core.management.base import BaseCommand

from api_gateway.services.reminders import SEND_FROM, SEND_UNTIL, block_notices_enabled, reminders_send
from api_gateway.services.waitlist import waitlist_enabled, waitlist_notify


class Command(BaseCommand):
    help = (
        "Sends the day-before appointment reminders due now (the WHATSAPP_REMINDER_TEMPLATE template; each "
        "appointment once), tells the patients whose appointment an agenda block took (the "
        "WHATSAPP_RESCHEDULE_TEMPLATE template) and the waitlists' first in line that a time opened (the "
        "WHATSAPP_WAITLIST_TEMPLATE template; expired entries are closed). Celery beat runs this every 10 "
        "minutes; use it where beat does not run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List the appointments due; send nothing.")

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        run = reminders_send(dry_run=dry_run)
        if run.skipped == "disabled":
            self.stdout.write("reminders are off: set WHATSAPP_REMINDER_TEMPLATE to the approved template's name")
        elif dry_run:
            ids = ", ".join(str(pk) for pk in run.due) or "none"
            self.stdout.write(f"{len(run.due)} reminder(s) due (appointment ids: {ids}); nothing sent")
        if block_notices_enabled() and (dry_run or run.quiet):
            ids = ", ".join(str(pk) for pk in run.blocked_due) or "none"
            self.stdout.write(
                f"{len(run.blocked_due)} appointment(s) in an agenda block whose patient was not told yet "
                f"(appointment ids: {ids})"
            )
        if waitlist_enabled() and (dry_run or run.quiet):
            due = waitlist_notify(dry_run=True).due
            ids = ", ".join(str(pk) for pk in due) or "none"
            self.stdout.write(f"{len(due)} waitlist patient(s) to tell of a free time (entry ids: {ids})")
        if run.quiet:
            self.stdout.write(
                f"nothing sent now: quiet hours (messages go out from {SEND_FROM:%H:%M} to {SEND_UNTIL:%H:%M})"
            )
        if dry_run or run.quiet:
            return
        waitlist = waitlist_notify()
        if waitlist_enabled():
            self.stdout.write(f"waitlist notices stored and sent {len(waitlist.told)}")
        if waitlist.expired:
            self.stdout.write(f"waitlist entries expired {waitlist.expired}")
        if run.skipped != "disabled":
            self.stdout.write(
                f"reminders stored and sent {len(run.stored)}, without a WhatsApp number {len(run.no_number)}"
            )
        if block_notices_enabled():
            self.stdout.write(
                f"block notices stored and sent {len(run.blocked)}, "
                f"without a WhatsApp number {len(run.blocked_no_number)}"
            )
        self.stdout.write(f"earlier messages retried {len(run.resent)}")
