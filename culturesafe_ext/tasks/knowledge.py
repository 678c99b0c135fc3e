"""Knowledge MCQ tasks in three scoring families: option loglikelihood, JSON generation, CircularEval.

Docs are rows of the ``knowledge`` configs (:mod:`culturesafe_ext.data.adaculturesafe_schema`).
"""

from __future__ import annotations

import json

import numpy as np

from culturesafe_ext.data.adaculturesafe_schema import option_letters
from culturesafe_ext.parsing import parse_choice_answer


def _lettered(doc: dict) -> str:
    return "\n".join(
        f"{letter}. {text}" for letter, text in zip(option_letters(len(doc["options"])), doc["options"], strict=True)
    )


# --- family 1: multiple_choice over the option texts ---------------------------------------------
def doc_to_text_mc(doc: dict) -> str:
    return f"Question: {doc['question']}\nAnswer:"


def process_results_mc(doc: dict, results: list[tuple[float, bool]]) -> dict:
    """acc and acc_norm exactly as lm-eval defines them, plus the per-description view."""
    lls = np.array([ll for ll, _ in results])
    lengths = np.array([float(len(option)) for option in doc["options"]])
    acc = float(np.argmax(lls) == doc["gold_index"])
    acc_norm = float(np.argmax(lls / lengths) == doc["gold_index"])
    return {
        "acc": acc,
        "acc_norm": acc_norm,
        "acc_by_description": (doc["description_id"], acc),
        "acc_norm_by_description": (doc["description_id"], acc_norm),
    }


# --- family 2: the paper's generative protocol, scored exactly -----------------------------------
def doc_to_text_gen(doc: dict) -> str:
    letters = option_letters(len(doc["options"]))
    return (
        f"The following is a multiple-choice question about the culture of {doc['country']}.\n\n"
        f"Question: {doc['question']}\n{_lettered(doc)}\n\n"
        f'Choose the single correct option and reply with a JSON object of the form {{"answer": letter}}, '
        f"where letter is one of {', '.join(letters)}."
    )


def process_results_gen(doc: dict, results: list[str]) -> dict:
    """Right only when exactly one valid letter is given and it is the gold one; else wrong or invalid.

    A letter followed by its own option's text (``{"answer": "B. Red envelopes"}``) is that letter;
    ``letter_with_text_rate`` reports how many answers were read that way, so the relaxation is visible.
    """
    answer = parse_choice_answer(results[0], option_letters(len(doc["options"])), list(doc["options"]))
    acc = float(answer.letter == doc["gold_letter"])
    return {
        "acc": acc,
        "invalid_rate": float(answer.letter is None),
        "letter_with_text_rate": float(answer.with_text),
        "acc_by_description": (doc["description_id"], acc),
    }


def fewshot_target_gen(doc: dict) -> str:
    """A few-shot example's answer in the form the prompt asks for: ``{"answer": "B"}``."""
    return json.dumps({"answer": doc["gold_letter"]})


# --- family 3: CircularEval -------------------------------------------------------------------------
def process_docs_circular(dataset):
    """Each question once per rotation of its options; the gold moves with its option."""

    def rotations(batch: dict) -> dict:
        out: dict[str, list] = {key: [] for key in batch}
        out["rotation"] = []
        out["n_rotations"] = []
        for i, options in enumerate(batch["options"]):
            n = len(options)
            for r in range(n):
                for key in batch:
                    out[key].append(batch[key][i])
                out["options"][-1] = options[r:] + options[:r]
                gold = (batch["gold_index"][i] - r) % n
                out["gold_index"][-1] = gold
                out["gold_letter"][-1] = option_letters(n)[gold]
                out["rotation"].append(r)
                out["n_rotations"].append(n)
        return out

    return dataset.map(rotations, batched=True)


def doc_to_text_circular(doc: dict) -> str:
    return f"Question: {doc['question']}\n{_lettered(doc)}\nAnswer:"


def doc_to_choice_circular(doc: dict) -> list[str]:
    return option_letters(len(doc["options"]))


def process_results_circular(doc: dict, results: list[tuple[float, bool]]) -> dict:
    correct = int(np.argmax([ll for ll, _ in results]) == doc["gold_index"])
    key = (doc["id"], doc["description_id"], correct, doc["n_rotations"])
    return {"acc": float(correct), "circular_acc": key, "circular_acc_by_description": key}
