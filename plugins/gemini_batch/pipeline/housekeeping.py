"""Choose which finished batch jobs to delete.

Invariants: only terminal jobs (succeeded, partial, failed, cancelled, expired) are chosen, never
one that may still run; by default only jobs made by Airflow (display name ending in
``awid-<work id>``, see gemini_batch.identity); a dry run chooses nothing and logs the list.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gemini_batch.identity import DISPLAY_TAG_PREFIX
from gemini_batch.states import is_terminal

__all__ = ["select_expired_jobs"]

log = logging.getLogger(__name__)

_AIRFLOW_TAG = re.compile(rf"(^|\s){re.escape(DISPLAY_TAG_PREFIX)}[0-9a-f]+$")


def select_expired_jobs(
    jobs: Sequence[Mapping[str, Any]],
    *,
    older_than: dt.timedelta,
    now: dt.datetime,
    only_airflow_jobs: bool = True,
    dry_run: bool = True,
) -> list[str]:
    """The names of the jobs to delete, from ``GeminiBatchListJobsOperator`` results.

    :param jobs: Required. ``[{"job_name", "state", "display_name", "create_time"}]``.
    :param older_than: Required. Jobs created before ``now - older_than`` qualify.
    :param now: Required. The reference time (timezone-aware).
    :param only_airflow_jobs: Only jobs whose display name carries an Airflow work id.
    :param dry_run: Log the jobs and return none.
    """
    cutoff = now - older_than
    chosen: list[str] = []
    for job in jobs:
        created = job.get("create_time")
        if not created or not is_terminal(job.get("state")):
            continue
        if dt.datetime.fromisoformat(str(created).replace("Z", "+00:00")) >= cutoff:
            continue
        if only_airflow_jobs and not _AIRFLOW_TAG.search(job.get("display_name") or ""):
            continue
        chosen.append(job["job_name"])
    verb = "would delete (dry run)" if dry_run else "deleting"
    log.info("%s %d terminal job(s) created before %s: %s", verb, len(chosen), cutoff.isoformat(), chosen)
    return [] if dry_run else chosen
