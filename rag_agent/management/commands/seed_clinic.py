from django.core.management.base import BaseCommand

from rag_agent.demo import generate_large_clinic, seed_demo_clinic
from rag_agent.models import Convenio, Especialidade, Exame, HorarioTrabalho, Medico


class Command(BaseCommand):
    help = "Load the demo clinic (idempotent). --large also generates 200 doctors and 40 specialties."

    def add_arguments(self, parser):
        parser.add_argument("--large", action="store_true", help="Also generate a large clinic for benchmarks.")
        parser.add_argument("--doctors", type=int, default=200, help="Generated doctors with --large.")
        parser.add_argument("--specialties", type=int, default=40, help="Generated specialties with --large.")

    def handle(self, *args, **options):
        info = seed_demo_clinic()
        if options["large"]:
            generate_large_clinic(doctors=options["doctors"], specialties=options["specialties"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Clínica carregada: {info.nome}. "
                f"{Especialidade.objects.count()} especialidades, {Convenio.objects.count()} convênios, "
                f"{Medico.objects.count()} médicos, {HorarioTrabalho.objects.count()} horários, "
                f"{Exame.objects.count()} exames."
            )
        )
