"""Installs the four packages (contract, filters, pipelines, trainer) with their console commands.

Beam workers install the project from this file too (``--setup_file ./setup.py``),
so it must build with nothing but setuptools.
"""

from setuptools import find_packages, setup

# torch is deliberately not listed: on CPU machines `pip install torch==2.13.0`
# must run first (a bare `torch` requirement pulls several GB of CUDA wheels),
# and GPU clusters bring their own CUDA build. scripts/setup_env.sh does this.
CURATION = [
    "apache-beam==2.77.0",
    "pyarrow>=14,<26",
    "pillow>=10,<13",
    "numpy>=1.26",
    "imagehash==4.3.2",
    "pyahocorasick==2.3.1",
    "nltk==3.10.4",
    "textblob==0.20.1",
    "tokenizers==0.23.3",
    "img2dataset==1.47.0",
    "webdataset>=0.2.100,<0.3",
    "matplotlib>=3.8",
    "fsspec>=2024.1",
    "pyyaml>=6",
    "tqdm>=4.60",
    "pycld2==0.42",  # offline language identification (CLD2; its tables ship in the wheel)
]
TRAINING = ["tensorboard>=2.15"]
DEMO = ["scikit-image==0.26.0"]  # the demo pool's real photos (skimage.data), besides mate-backgrounds
DEV = ["pytest==9.2.0", "pytest-xdist==3.8.0", "ruff==0.17.6", "hypothesis==6.170.17", *DEMO]
# The image NSFW rule's detector (filters/nsfw_image.py): NudeNet's ONNX model ships inside its
# wheel and runs on onnxruntime. NudeNet 3.x and its YOLOv8 model are AGPL-3.0 (README, "NSFW"),
# which is why it is an extra and not a core dependency.
NSFW = ["nudenet==3.4.2", "onnxruntime==1.32.0"]

setup(
    name="alt-text-curation",
    version="0.1.0",
    description="Curate web image/alt-text pairs into balanced, labelled WebDataset shards and train CLIP/ALIGN/CatLIP on them.",
    python_requires=">=3.10",
    packages=find_packages(
        include=[
            "contract",
            "contract.*",
            "filters",
            "filters.*",
            "pipelines",
            "pipelines.*",
            "trainer",
            "trainer.*",
        ]
    ),
    include_package_data=True,
    package_data={"filters": ["data/*.txt"]},
    install_requires=CURATION + TRAINING,
    extras_require={
        "dev": DEV,
        "demo": DEMO,
        "nsfw": NSFW,
        "gcp": ["apache-beam[gcp]==2.77.0"],
        "aws": ["apache-beam[aws]==2.77.0"],
    },
    entry_points={
        "console_scripts": [
            "curate=pipelines.curate:main",
            "curation-report=pipelines.report:main",
            "install-wordnet=filters.wordnet_data:main",
            "train-image-text=trainer.train:main",
            "evaluate-image-text=trainer.evaluate:main",
            "export-openclip=trainer.interop.__main__:main",
        ]
    },
)
