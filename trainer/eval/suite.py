"""Evaluations of a trained model: zero-shot on an ImageFolder, and on held-out curated shards
retrieval (two-tower) or synset prediction (CatLIP)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import torch

from trainer.data.heldout import heldout_batches
from trainer.data.meta import resolve_dataset
from trainer.data.samples import BatchCollator, SampleProcessor
from trainer.data.shards import FailureCounter
from trainer.data.transforms import normalize_images
from trainer.eval.batchnorm import has_batchnorm, recalibrate_batchnorm
from trainer.eval.catlip import averaging_matrix, label_mappings, synset_zero_shot_logits
from trainer.eval.image_folder import image_folder_batches, read_image_folder
from trainer.eval.loading import TrainedModel
from trainer.eval.retrieval import retrieval_metrics
from trainer.eval.zero_shot import TEMPLATE_SETS, text_classifier, topk_accuracy


def recalibrate_from_training_data(
    trained: TrainedModel, batches: int, batch_size: int = 64, device: str = "cpu"
) -> int:
    """Precise BN over the first ``batches`` batches of the run's own training data (see batchnorm.py)."""
    if batches <= 0 or not has_batchnorm(trained.model):
        return 0
    meta = resolve_dataset(
        trained.train_config["data"]["paths"], None, None, need_tokenizer=False, need_vocabulary=False
    )
    processor = SampleProcessor(trained.config.vision.image_size, None, need_caption=False)
    stream = heldout_batches(
        list(meta.shard_urls), processor, BatchCollator(None, None), batch_size, FailureCounter()
    )
    return recalibrate_batchnorm(
        trained.model, (batch["image"] for batch in islice(stream, batches)), torch.device(device)
    )


def zero_shot_scorer(
    trained: TrainedModel, labels: list[str], templates: str, device: torch.device
) -> tuple[Callable, dict]:
    """A function images → [B, C] label scores, and what it was built from (for the report)."""
    model = trained.model
    if trained.two_tower:
        classifier = text_classifier(model, trained.tokenizer, labels, TEMPLATE_SETS[templates], device)
        return (lambda images: model.encode_image(images).float() @ classifier.T), {"templates": templates}
    mappings = label_mappings(labels, trained.vocabulary)
    matrix = averaging_matrix(mappings, trained.vocabulary)
    report = {
        "label_mappings": {m.label: {"relation": m.relation, "synsets": list(m.synsets)} for m in mappings}
    }
    return (lambda images: synset_zero_shot_logits(model(images)["logits"], matrix)), report


@torch.no_grad()
def evaluate_image_folder(
    trained: TrainedModel,
    root: str | Path,
    batch_size: int = 64,
    templates: str = "clip",
    device: str = "cpu",
) -> dict[str, Any]:
    """Zero-shot top-1/top-5 over the folder's classes (chance = 1 / classes)."""
    device = torch.device(device)
    folder = read_image_folder(root)
    score, report = zero_shot_scorer(trained, folder.labels, templates, device)
    failures: dict[str, int] = {}
    logits, targets = [], []
    for images, labels in image_folder_batches(
        folder, trained.config.vision.image_size, batch_size, failures
    ):
        logits.append(score(normalize_images(images.to(device))).cpu())
        targets.append(labels)
    metrics = topk_accuracy(torch.cat(logits), torch.cat(targets))
    return {
        "task": "zero_shot",
        **metrics,
        "chance": 1 / len(folder.classes),
        "classes": len(folder.classes),
        "samples": int(sum(t.numel() for t in targets)),
        "skipped": failures,
        **report,
    }


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-column AP of ``scores`` [N, C] against binary ``targets``; NaN where a column has no positive."""
    order = scores.argsort(dim=0, descending=True)
    hits = targets.gather(0, order)
    precision = hits.cumsum(dim=0) / torch.arange(1, len(hits) + 1, dtype=hits.dtype).unsqueeze(1)
    return (precision * hits).sum(dim=0) / hits.sum(dim=0)


@torch.no_grad()
def evaluate_heldout(
    trained: TrainedModel,
    paths: list[str],
    batch_size: int = 64,
    max_samples: int = 10_000,
    device: str = "cpu",
) -> dict[str, Any]:
    """Two-tower: image↔text recall@1/5/10. CatLIP: top-1 synset hit rate and mAP over kept synsets."""
    device = torch.device(device)
    meta = resolve_dataset(paths, None, None, need_tokenizer=False, need_vocabulary=False)
    vocabulary = trained.vocabulary
    processor = SampleProcessor(
        trained.config.vision.image_size,
        None,
        trained.two_tower,
        None if trained.two_tower else vocabulary,
    )
    collator = BatchCollator(
        trained.tokenizer if trained.two_tower else None, None if trained.two_tower else len(vocabulary.ids)
    )
    failures = FailureCounter()
    first, second, seen = [], [], 0
    for batch in heldout_batches(
        list(meta.shard_urls), processor, collator, batch_size, failures, meta.shard_samples
    ):
        images = normalize_images(batch["image"].to(device))
        if trained.two_tower:
            first.append(trained.model.encode_image(images).float().cpu())
            second.append(trained.model.encode_text(batch["tokens"].to(device)).float().cpu())
        else:
            first.append(trained.model(images)["logits"].float().cpu())
            second.append(batch["targets"])
        seen += len(batch["key"])
        if seen >= max_samples:
            break
    if not first:
        raise ValueError(f"no usable sample in {paths} (skipped: {dict(failures)})")
    a, b = torch.cat(first)[:max_samples], torch.cat(second)[:max_samples]
    result: dict[str, Any] = {"samples": len(a), "skipped": dict(failures)}
    if trained.two_tower:
        return {"task": "retrieval", **retrieval_metrics(a, b), **result}
    hit = b.gather(1, a.argmax(dim=1, keepdim=True)).squeeze(1) > 0.5
    ap = average_precision(a, b)
    return {
        "task": "synset_prediction",
        "top1_hit": hit.float().mean().item(),
        "mAP": ap.nanmean().item(),
        **result,
    }
