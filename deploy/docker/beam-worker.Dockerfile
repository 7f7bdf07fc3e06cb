# The Beam Python SDK harness for the curation job, with the project, its pinned dependencies and
# WordNet 3.0 baked in, so that Dataflow/Flink/Spark workers neither pip install nor download at start-up.
#
#   docker build -f deploy/docker/beam-worker.Dockerfile -t REGISTRY/curation-worker:TAG .
#
# The base tag must equal the apache-beam pin in setup.py, and its Python (3.11) must be the
# Python that submits the job: the pipeline is pickled on the launcher and unpickled here.
FROM apache/beam_python3.11_sdk:2.77.0

# albumentations (pulled in by img2dataset) checks PyPI at import time: never on a worker.
ENV NO_ALBUMENTATIONS_UPDATE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# WordNet 3.0 from Debian (nltk.download needs a network that workers may not have).
RUN apt-get update \
    && apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/curation
COPY setup.py constraints.txt ./
COPY contract/ contract/
COPY filters/ filters/
COPY pipelines/ pipelines/
COPY trainer/ trainer/
# The same pins the launcher was tested with; torch is not needed on curation workers.
RUN pip install -c constraints.txt . \
    && python -m filters.wordnet_data install \
    && python -m filters.wordnet_data check \
    && python -c "import apache_beam, contract, filters, pipelines, img2dataset, webdataset, ahocorasick, imagehash"

# The base image's entrypoint (/opt/apache/beam/boot) stays: it starts the SDK harness, or a
# worker pool for Flink/Spark's EXTERNAL environment when run with --worker_pool.
