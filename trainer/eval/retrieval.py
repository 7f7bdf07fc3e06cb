"""Image↔text retrieval recall@k over held-out pairs (row i of each side is one pair)."""

from __future__ import annotations

import torch


def recall_at_k(queries: torch.Tensor, candidates: torch.Tensor, ks: tuple[int, ...]) -> dict[int, float]:
    """For query i the right candidate is i; recall@k = share of queries ranking it in the top k."""
    similarity = queries.float() @ candidates.float().T
    correct = similarity.diagonal().unsqueeze(1)
    rank = (similarity > correct).sum(dim=1)  # how many candidates beat the right one
    return {k: (rank < k).float().mean().item() for k in ks}


def retrieval_metrics(
    image_features: torch.Tensor, text_features: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    if image_features.shape != text_features.shape:
        raise ValueError(
            f"need paired features, got {tuple(image_features.shape)} and {tuple(text_features.shape)}"
        )
    image_to_text = recall_at_k(image_features, text_features, ks)
    text_to_image = recall_at_k(text_features, image_features, ks)
    metrics = {f"image_to_text_R@{k}": value for k, value in image_to_text.items()}
    metrics.update({f"text_to_image_R@{k}": value for k, value in text_to_image.items()})
    return metrics
