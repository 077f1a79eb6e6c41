"""The Gemini batch emulator: Vertex AI ``batchPredictionJobs``, Gemini API batches and the
Files API on one port, with a local deterministic model and fault switches.

Run it with ``python -m local_stack.emulator --port P --state-dir DIR`` (see
``include/local_stack/README.md``). Importing this package is cheap; the server pieces live in
:mod:`.app` and :mod:`.service`, the model in :mod:`.model`.
"""

from __future__ import annotations

__all__ = ["SERVICE_NAME"]

SERVICE_NAME = "gemini-batch-emulator"
