"""The embedded local stack: GCS, BigQuery and Gemini batch emulators on 127.0.0.1.

Start it with ``python -m local_stack up`` (or ``make stack-up``), or from Python with
:func:`local_stack.stack.start`. Importing this package is cheap: it imports nothing, so
``python -m local_stack.emulator`` and DAG files pay nothing for it.
"""
