# The trainer on GPU clusters: a CUDA build of PyTorch from the base image plus the project.
#
#   docker build -f deploy/docker/trainer.Dockerfile -t REGISTRY/curation-trainer:TAG .
#
# BASE_IMAGE must carry a CUDA torch; the project never installs torch (setup.py leaves it out),
# and the build fails if pip would replace the base's torch or if the result has no CUDA.
ARG BASE_IMAGE=pytorch/pytorch:2.11.0-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}
# fsspec back-ends for gs:// and s3:// shard URLs; the three must share one release.
ARG CLOUD_FS="fsspec==2026.7.0 gcsfs==2026.7.0 s3fs==2026.7.0"

ENV NO_ALBUMENTATIONS_UPDATE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# WordNet 3.0 (Transfer Init maps target labels onto synsets); curl for `pipe:curl …` shard URLs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/curation
COPY setup.py constraints.txt ./
COPY contract/ contract/
COPY filters/ filters/
COPY pipelines/ pipelines/
COPY trainer/ trainer/
# Pin torch to the base image's own build so pip fails rather than swap in a CPU or other CUDA wheel;
# fsspec's pin gives way to CLOUD_FS (gcsfs has no release matching constraints.txt's fsspec).
RUN python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-from-base.txt \
    && grep -v '^fsspec==' constraints.txt > /tmp/constraints-trainer.txt \
    && pip install -c /tmp/constraints-trainer.txt -c /tmp/torch-from-base.txt . ${CLOUD_FS} \
    && python -m filters.wordnet_data install \
    && python -m filters.wordnet_data check \
    && python -c "import torch, trainer, webdataset, gcsfs, s3fs; assert torch.version.cuda, 'no CUDA torch'"

ENTRYPOINT []
CMD ["python", "-m", "trainer.train", "--help"]
