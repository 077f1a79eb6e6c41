# The Airflow image for docker-compose.yaml: the official Airflow 3.3.2 image plus the product's
# runtime requirements (requirements.txt). Emulators never go in here (see Dockerfile.local-stack).
#
# Airflow's practice for extending the image: pin apache-airflow to the image's own version in
# the same `pip install`, so no requirement can up- or downgrade Airflow, and install against
# Airflow's published constraints. We use the "no-providers" constraints of this Airflow and
# Python version: they hold Airflow core's dependencies where the image has them while letting
# requirements.txt choose its provider version (apache-airflow-providers-google).
# Build offline or with another constraints file: --build-arg AIRFLOW_CONSTRAINTS_URL=... ("" = none).
FROM apache/airflow:3.3.2

ARG AIRFLOW_CONSTRAINTS_URL=default

COPY --chown=airflow:0 requirements.txt /tmp/requirements.txt

RUN set -eu; \
    py="$(python -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')"; \
    url="${AIRFLOW_CONSTRAINTS_URL}"; \
    if [ "$url" = default ]; then \
      url="https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-no-providers-${py}.txt"; \
    fi; \
    pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt \
      ${url:+--constraint "$url"}; \
    pip check || echo "pip check reported the conflicts above (the official image carries some of its own)"

# The DAGs, the gemini_batch package and include/ (SQL, templates, sample data). docker-compose
# mounts the working tree over these for live editing; a deployment uses the copies.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/include
