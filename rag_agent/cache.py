"""Cache keys for clinic data. Reads live in selectors; this module only names and drops keys."""

import logging

from django.core.cache import caches

logger = logging.getLogger(__name__)

CLINIC_DATA_KEY = "gemini_clinic_data"
CLINIC_VERSION_KEY = "gemini_clinic_version"  # the `versao` of the cached catalogue (see selectors.clinic_catalog)
CLINIC_KEYS_PATTERN = "gemini_clinic_*"
DOCTOR_KEY_PREFIX = "gemini_doctor_"


def clinic_cache():
    return caches["default"]


def doctor_key(doctor_id: int) -> str:
    return f"{DOCTOR_KEY_PREFIX}{doctor_id}"


def clinic_cache_invalidate(*, doctor_ids: list[int] | None = None, all_doctors: bool = False) -> None:
    cache = clinic_cache()
    keys = [CLINIC_DATA_KEY, CLINIC_VERSION_KEY, *(doctor_key(i) for i in doctor_ids or [])]
    cache.delete_many(keys)
    if all_doctors:
        _delete_family(cache, f"{DOCTOR_KEY_PREFIX}*")
    # Debug level: a seed or bulk admin action fires this once per row.
    logger.debug(
        "[CACHE CLEARED] clinic data (%d doctor keys%s)", len(doctor_ids or []), ", all doctors" if all_doctors else ""
    )


def _delete_family(cache, pattern: str) -> None:
    delete_pattern = getattr(cache, "delete_pattern", None)
    if delete_pattern is not None:  # django-redis: SCAN + DEL
        delete_pattern(pattern)
        return
    # LocMemCache: walk its private store (same process only).
    prefix = cache.make_key(pattern.rstrip("*"))
    with cache._lock:
        for key in [k for k in cache._cache if k.startswith(prefix)]:
            cache._delete(key)
