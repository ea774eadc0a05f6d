"""The one accepted use of signals: drop cached clinic data when staff change it."""

from functools import partial

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from rag_agent import models
from rag_agent.cache import clinic_cache_invalidate

_CLINIC_MODELS = (
    models.ClinicaInfo,
    models.Especialidade,
    models.Convenio,
    models.Medico,
    models.Exame,
    models.HorarioTrabalho,
    models.BloqueioAgenda,
)


def _doctor_ids(instance) -> list[int]:
    if isinstance(instance, models.Medico):
        return [instance.pk]
    if isinstance(instance, models.HorarioTrabalho):
        return [instance.medico_id]
    return []


def _invalidate(*, doctor_ids: list[int], all_doctors: bool) -> None:
    clinic_cache_invalidate(doctor_ids=doctor_ids, all_doctors=all_doctors)
    # Again after commit: a reader that rebuilt the cache from the pre-commit rows in between must not leave a
    # stale copy behind until the timeout.
    transaction.on_commit(partial(clinic_cache_invalidate, doctor_ids=doctor_ids, all_doctors=all_doctors))


@receiver(post_save)
@receiver(post_delete)
def _clinic_changed(sender, instance, **kwargs):
    if sender in _CLINIC_MODELS:
        # Specialty or plan changes touch every doctor entry that embeds their names; an agenda block may be the
        # whole clinic's, or have moved from one doctor to another (only the new one is known here).
        everything = sender in (models.Especialidade, models.Convenio, models.BloqueioAgenda)
        _invalidate(doctor_ids=_doctor_ids(instance), all_doctors=everything)


@receiver(m2m_changed, sender=models.Medico.especialidades.through)
@receiver(m2m_changed, sender=models.Medico.convenios.through)
def _doctor_relations_changed(sender, instance, action, pk_set=None, **kwargs):
    if action in {"post_add", "post_remove", "post_clear"}:
        if isinstance(instance, models.Medico):
            _invalidate(doctor_ids=[instance.pk], all_doctors=False)
        else:  # edited from the specialty/plan side: pk_set names the doctors (None on clear: drop them all)
            _invalidate(doctor_ids=sorted(pk_set or []), all_doctors=pk_set is None)
