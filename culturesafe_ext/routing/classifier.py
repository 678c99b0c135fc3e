"""The culture router: a linear classifier over the base model's mean-pooled last hidden state.

``culturesafe train router`` fits it (scikit-learn ``LogisticRegression`` on standardised features) and
``hf-router`` uses it for ``routing=learned``. Both compute features with :func:`mean_pooled`, so the
router sees exactly the representation it was trained on. The fitted numbers are stored as JSON
(``router.json``), not pickled: loading a router never runs code from the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from culturesafe_ext.data.manifests import ROUTER_EVAL_FILE, ROUTER_FILE  # noqa: F401 - re-exported

FEATURE = "mean-pooled last hidden state of the base model (adapters off), right padding"

# forward(input_ids, attention_mask) -> last hidden state [batch, tokens, hidden]
Forward = Callable[[Any, Any], Any]


def mean_pooled(
    forward: Forward,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 16,
    max_length: int = 512,
    device=None,
    progress: bool = False,
) -> np.ndarray:
    """Mean of the last hidden state over each text's tokens, as float32 [n, hidden].

    Right padding keeps every row's causal attention identical to running it alone. Pooling runs on the
    features' device in their dtype's float32 upcast; ``progress`` shows a bar over the batches.
    """
    import torch
    from tqdm import tqdm

    rows: list[np.ndarray] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="router features", unit="batch", disable=not progress or len(starts) < 2):
            chunk = list(texts[start : start + batch_size])
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            ids, mask = enc["input_ids"], enc["attention_mask"]
            if device is not None:
                ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                hidden = forward(ids, mask).float()
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            rows.append(pooled.cpu().numpy())
    finally:
        tokenizer.padding_side = old_side
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), dtype=np.float32)


def hf_forward(model: Any, **extra: Any) -> Forward:
    """A :data:`Forward` for a transformers (or peft) causal LM; ``extra`` may hold per-batch callables."""

    def forward(ids, mask):
        kwargs = {k: (v(len(ids)) if callable(v) else v) for k, v in extra.items()}
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **kwargs)
        return out.hidden_states[-1]

    return forward


@dataclass
class CultureRouter:
    """Standardise, then multinomial logistic regression; ``classes`` are culture slugs."""

    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    info: dict[str, Any]

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[str], c: float = 1.0, seed: int = 0, **info) -> CultureRouter:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        if len(set(labels)) < 2:
            raise ValueError(f"a router needs at least two cultures in its training data, got {sorted(set(labels))}")
        scaler = StandardScaler().fit(features)
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(scaler.transform(features), labels)
        return cls(
            [str(x) for x in model.classes_], scaler.mean_, scaler.scale_, model.coef_, model.intercept_, dict(info)
        )

    def _estimator(self):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression()
        model.classes_ = np.array(self.classes)
        model.coef_ = self.coef
        model.intercept_ = self.intercept
        model.n_features_in_ = self.coef.shape[1]
        return model

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self._estimator().predict_proba((features - self.mean) / self.scale)

    def predict(self, features: np.ndarray) -> list[str]:
        if len(features) == 0:
            return []
        return [self.classes[i] for i in self.predict_proba(features).argmax(axis=1)]

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        body = {
            "classes": self.classes,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "feature": FEATURE,
            **self.info,
        }
        path = folder / ROUTER_FILE
        path.write_text(json.dumps(body) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> CultureRouter:
        path = Path(folder).expanduser()
        path = path / ROUTER_FILE if path.is_dir() else path
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            hint = "train one with `culturesafe train router`"
            raise ValueError(f"{path}: not a readable culturesafe router ({err}); {hint}") from err
        missing = [k for k in ("classes", "mean", "scale", "coef", "intercept") if k not in raw]
        if missing:
            raise ValueError(f"{path}: router file lacks the field(s) {', '.join(missing)}")
        arrays = {k: np.asarray(raw.pop(k), dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")}
        classes = [str(c) for c in raw.pop("classes")]
        if arrays["coef"].shape[0] not in (1, len(classes)) or arrays["coef"].shape[1] != arrays["mean"].shape[0]:
            raise ValueError(f"{path}: field 'coef' has shape {arrays['coef'].shape}, inconsistent with the classes")
        return cls(classes, arrays["mean"], arrays["scale"], arrays["coef"], arrays["intercept"], raw)


def file_fingerprint(paths: Sequence[Path]) -> str:
    """Short content hash of files (adapters, router): part of the ``--use_cache`` key."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]
