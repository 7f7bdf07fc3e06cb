"""CatLIP without text: zero-shot through the synset head, and Transfer Init of a new classifier.

A target label is mapped to vocabulary synsets by ``filters.label_map`` (direct senses, then
the nearest hypernyms/hyponyms, then the WordNet-nearest synset by Wu-Palmer similarity).
Zero-shot averages the logits of a label's synsets; Transfer Init builds an ``nn.Linear`` whose
row for the label is the average of those synsets' classifier rows (Mehta et al. 2024).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from contract.vocabulary import ClassIndex
from filters.label_map import LabelMapping, map_labels_to_vocabulary


def label_mappings(labels: Sequence[str], classes: ClassIndex) -> list[LabelMapping]:
    return map_labels_to_vocabulary(labels, classes.ids)


def averaging_matrix(mappings: Sequence[LabelMapping], classes: ClassIndex) -> torch.Tensor:
    """[C, V]: row c averages the vocabulary columns label c maps to (all zeros when unmapped)."""
    matrix = torch.zeros(len(mappings), len(classes.ids))
    for row, mapping in enumerate(mappings):
        columns = classes.multi_hot(mapping.synsets)
        if columns:
            matrix[row, columns] = 1.0 / len(columns)
    return matrix


def synset_zero_shot_logits(vocab_logits: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """[B, C] label scores: the mean logit of each label's synsets; unmapped labels never win."""
    scores = vocab_logits.float() @ matrix.to(vocab_logits.device).T
    unmapped = matrix.sum(dim=1) == 0
    return scores.masked_fill(unmapped.to(scores.device), float("-inf"))


@torch.no_grad()
def transfer_init(classifier: nn.Linear, matrix: torch.Tensor, seed: int = 0) -> nn.Linear:
    """A new ``nn.Linear`` for the target labels: mapped rows copied/averaged, unmapped rows left at
    nn.Linear's random init (from ``seed``)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    head = nn.Linear(classifier.in_features, matrix.shape[0], bias=classifier.bias is not None)
    torch.random.set_rng_state(generator_state)
    head = head.to(device=classifier.weight.device, dtype=classifier.weight.dtype)
    matrix = matrix.to(classifier.weight)
    mapped = matrix.sum(dim=1) > 0
    head.weight[mapped] = (matrix @ classifier.weight)[mapped]
    if classifier.bias is not None:
        head.bias[mapped] = (matrix @ classifier.bias)[mapped]
    return head
