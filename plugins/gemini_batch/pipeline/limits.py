"""Per-job limits of the Gemini batch services, checked before anything is submitted.

Invariant: a limit is a plain number on a frozen value; code compares against it and names it in
the error together with the actual figure and the remedy. Nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemini_batch.backends import GEMINI_API_INLINE_MAX_BYTES

__all__ = ["GEMINI_API_INLINE_LIMITS", "GEMINI_API_LIMITS", "JobLimits", "VERTEX_LIMITS"]


@dataclass(frozen=True)
class JobLimits:
    """The limits one batch job must stay under.

    :param max_requests: Most requests in one job (Vertex AI: 200,000).
    :param max_bytes: Most bytes of input in one job: the JSONL file size (Vertex AI: 1 GB), or
        the serialized inline requests (Gemini API inline: 20 MB).
    :param max_line_bytes: Longest single JSONL line the validator reads; a longer line is an
        error rather than an unbounded read.
    :param name: How the limits are named in error messages.
    """

    max_requests: int
    max_bytes: int
    max_line_bytes: int = 64 * 1024 * 1024
    name: str = "Vertex AI batch"

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1 or self.max_line_bytes < 1:
            raise ValueError(f"limits must be positive: {self!r}")


#: Vertex AI batch prediction: up to 200,000 requests and a 1 GB input file per job.
VERTEX_LIMITS = JobLimits(max_requests=200_000, max_bytes=1_000_000_000, name="Vertex AI batch")
#: Gemini API batch from a Files API upload (the same request ceiling is applied; the file is also
#: kept under 1 GB so one shard plan serves both backends).
GEMINI_API_LIMITS = JobLimits(max_requests=200_000, max_bytes=1_000_000_000, name="Gemini API batch")
#: Gemini API batch with inline requests: the whole create call must stay under 20 MB, measured by
#: :func:`gemini_batch.backends.inline_request_bytes`.
GEMINI_API_INLINE_LIMITS = JobLimits(
    max_requests=200_000,
    max_bytes=GEMINI_API_INLINE_MAX_BYTES,
    max_line_bytes=GEMINI_API_INLINE_MAX_BYTES,
    name="Gemini API inline batch",
)
