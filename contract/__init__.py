"""The dataset contract: what ``curate`` writes and the trainer reads, spelt once.

``files.py`` names every file of a dataset directory and the members of a sample; ``vocabulary.py``
is ``vocabulary.json`` (its rows, its checks, V_tau and the class index the CatLIP head uses).
Imported by ``pipelines/`` (the writers), ``trainer/`` (the readers), ``filters/`` (the synset id
format) and the demo; it imports neither Beam nor torch (``tests/test_layers.py``).
"""
