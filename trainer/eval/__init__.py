"""Evaluation: zero-shot classification (prompt templates, or CatLIP's synset head), image↔text
retrieval recall@k, CatLIP Transfer Init and few-shot head fitting, and the checkpoint / ImageFolder readers they use."""

from __future__ import annotations

from trainer.eval.batchnorm import has_batchnorm, recalibrate_batchnorm
from trainer.eval.catlip import averaging_matrix, label_mappings, synset_zero_shot_logits, transfer_init
from trainer.eval.few_shot import head_learning_curves
from trainer.eval.image_folder import ImageFolder, image_folder_batches, read_image_folder
from trainer.eval.loading import TrainedModel, load_trained
from trainer.eval.retrieval import recall_at_k, retrieval_metrics
from trainer.eval.suite import evaluate_heldout, evaluate_image_folder, recalibrate_from_training_data
from trainer.eval.zero_shot import CLIP_TEMPLATES, TEMPLATE_SETS, text_classifier, topk_accuracy

__all__ = [
    "CLIP_TEMPLATES",
    "TEMPLATE_SETS",
    "ImageFolder",
    "TrainedModel",
    "averaging_matrix",
    "evaluate_heldout",
    "evaluate_image_folder",
    "has_batchnorm",
    "head_learning_curves",
    "image_folder_batches",
    "label_mappings",
    "load_trained",
    "read_image_folder",
    "recalibrate_batchnorm",
    "recalibrate_from_training_data",
    "recall_at_k",
    "retrieval_metrics",
    "synset_zero_shot_logits",
    "text_classifier",
    "topk_accuracy",
    "transfer_init",
]
