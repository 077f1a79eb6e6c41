# The Airflow image for docker-compose.yaml: the official Airflow 3.3.2 image plus the
# gemini-batch-airflow distribution, installed as a wheel with its runtime requirements
# (pyproject.toml) and the deployment's pins (requirements.txt). Emulators never go in here (see
# Dockerfile.local-stack).
#
# Airflow's practice for extending the image: pin apache-airflow to the image's own version in
# the same `pip install`, so no requirement can up- or downgrade Airflow, and install against
# Airflow's published constraints. We use the "no-providers" constraints of this Airflow and
# Python version: they hold Airflow core's dependencies where the image has them while letting
# requirements.txt choose its provider version (apache-airflow-providers-google).
# Build offline or with another constraints file: --build-arg AIRFLOW_CONSTRAINTS_URL=... ("" = none).

# Stage 1: the wheel, built from the repository with its PEP 517 backend (pyproject.toml).
FROM apache/airflow:3.3.2 AS wheel
COPY --chown=airflow:0 pyproject.toml README.md /tmp/src/
COPY --chown=airflow:0 plugins/gemini_batch/ /tmp/src/plugins/gemini_batch/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /tmp/src

# Stage 2: the image.
FROM apache/airflow:3.3.2

ARG AIRFLOW_CONSTRAINTS_URL=default

COPY --chown=airflow:0 requirements.txt /tmp/requirements.txt
COPY --from=wheel --chown=airflow:0 /tmp/dist/ /tmp/dist/

RUN set -eu; \
    py="$(python -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')"; \
    url="${AIRFLOW_CONSTRAINTS_URL}"; \
    if [ "$url" = default ]; then \
      url="https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-no-providers-${py}.txt"; \
    fi; \
    pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt /tmp/dist/*.whl \
      ${url:+--constraint "$url"}; \
    pip check || echo "pip check reported the conflicts above (the official image carries some of its own)"

# The DAGs and include/ (SQL, templates, sample data). docker-compose mounts the working tree over
# these for live editing; a deployment uses the copies. The gemini_batch package comes from the
# wheel above (site-packages), never from plugins/: rebuild the image after changing it.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
# An installed package cannot find include/ beside itself: say where it is.
ENV PYTHONPATH=/opt/airflow/include \
    GEMINI_BATCH_INCLUDE_DIR=/opt/airflow/include
