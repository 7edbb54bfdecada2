"""A recipe's output folder is complete without a push: weights, config, results.json, the rendered model card and
the contribution plot; `pipeline(..., model=<output folder>)` loads it and reproduces the recorded accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_helpers import TINY_ID, TINY_TYPE
from huggingface_hub import ModelCard
from PIL import Image
from transformers import pipeline

from mllm_balance.data import load_dataset_from_dir
from mllm_balance.pipeline import TASK
from mllm_balance.recipe import parse_recipe_args, run_recipe

ROOT = Path(__file__).resolve().parents[2]
#: (text label, image label, words, colour) per class: 20 tweets each in the MVSA-Single layout.
CLASSES = {
    "negative": ("neutral", "negative", "sad awful rainy day", (200, 30, 30)),
    "neutral": ("neutral", "neutral", "a day at the office", (120, 120, 120)),
    "positive": ("positive", "neutral", "happy sunny great day", (30, 200, 30)),
}


@pytest.fixture(scope="module")
def mvsa_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("MVSA_Single")
    (root / "data").mkdir()
    lines = ["ID\ttext,image"]
    for i in range(60):
        text_label, image_label, words, colour = list(CLASSES.values())[i % 3]
        lines.append(f"{i + 1}\t{text_label},{image_label}")
        (root / "data" / f"{i + 1}.txt").write_text(f"{words} number {i}", encoding="utf-8")
        shade = tuple(min(255, c + 3 * (i % 7)) for c in colour)
        Image.new("RGB", (20, 20), shade).save(root / "data" / f"{i + 1}.jpg", format="JPEG")
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory, mvsa_dir) -> Path:
    work = tmp_path_factory.mktemp("recipe")
    flags = ["--data_dir", str(mvsa_dir), "--backbone", f"{TINY_TYPE}:{TINY_ID}",
             "--feature_cache_dir", str(work / "cache"), "--output_dir", str(work / "out"),
             "--num_train_epochs", "3", "--hidden_size", "8", "--learning_rate", "0.05",
             "--per_device_train_batch_size", "16", "--use_cpu", "true", "--disable_tqdm", "true"]  # fmt: skip
    run_recipe(*parse_recipe_args(str(ROOT / "recipes" / "configs" / "mvsa.yaml"), flags))
    return work / "out"


def test_output_folder_holds_weights_config_results_card_and_plot(output_dir):
    files = {p.name for p in output_dir.iterdir() if p.is_file()}
    assert {"model.safetensors", "config.json", "results.json", "README.md", "contributions.png"} <= files
    assert (output_dir / "contributions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_card_has_hub_front_matter_and_the_results_numbers(output_dir):
    results = json.loads((output_dir / "results.json").read_text())
    text = (output_dir / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.library_name == "mllm-balance"
    assert card.data.base_model == TINY_ID  # the recorded backbone
    assert card.data.datasets == ["mvsa-single"]
    assert "text" in card.data.tags and "image" in card.data.tags
    numbers = [results["accuracy"]["fusion"], *results["accuracy"]["per_modality"].values(), results["edm"]]
    numbers += list(results["shapley"].values())
    for value in numbers:
        assert f"{value:.2f}" in card.text, value
    assert "](contributions.png)" in card.text  # the plot beside it is shown


def test_pipeline_loads_the_output_folder_and_reproduces_its_accuracy(output_dir, mvsa_dir):
    classifier = pipeline(TASK, model=str(output_dir), device="cpu")
    test = load_dataset_from_dir("mvsa-single", mvsa_dir)["test"]
    names = test.features["labels"].names
    samples = [{"text": row["text"], "image": row["image"]} for row in test]
    predictions = [result[0]["label"] for result in classifier(samples, top_k=1)]
    accuracy = 100 * sum(p == names[row["labels"]] for p, row in zip(predictions, test)) / len(test)
    results = json.loads((output_dir / "results.json").read_text())
    assert accuracy == pytest.approx(results["accuracy"]["fusion"])
