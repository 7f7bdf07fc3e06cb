"""Training metrics to ``metrics.jsonl`` (one JSON object per line) and TensorBoard, on rank 0 only.

A run starting at step S (0, or the step of the checkpoint it resumes) first drops JSONL records
after S (written past the last checkpoint by an interrupted run, or by an earlier run in the same
directory) and TensorBoard purges its events after S, so each step is logged once.
(Named ``metrics_log`` so it does not shadow the standard library's ``logging``.)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    def __init__(
        self, out_dir: Path, enabled: bool = True, tensorboard: bool = True, start_step: int = 0
    ) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self._writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        drop_records_after(self.path, start_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(out_dir) / "tensorboard"), purge_step=start_step + 1)

    def log(self, step: int, metrics: dict[str, Any], split: str = "train") -> None:
        if not self.enabled:
            return
        record = {"step": step, "split": split, "time": round(time.time(), 3), **metrics}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for name, value in metrics.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{split}/{name}", value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_records(path: Path) -> list[dict[str, Any]]:
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def drop_records_after(path: Path, step: int) -> None:
    """Rewrites ``path`` (atomically) without records whose step is greater than ``step``."""
    records = read_records(path)
    kept = [record for record in records if record.get("step", 0) <= step]
    if len(kept) == len(records):
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
    os.replace(tmp, path)
