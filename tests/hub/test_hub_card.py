"""The model card rendered from results.json: sections, numbers, YAML metadata and the contribution plot."""

from __future__ import annotations

import sys

import pytest
import yaml
from hub_helpers import TINY_ID, full_results
from huggingface_hub import ModelCard
from PIL import Image

from mllm_balance import BalanceConfig
from mllm_balance.baselines import get_baseline
from mllm_balance.hub import save_adapters
from mllm_balance.model_card import hub_pipeline_tag, render_model_card, usage_snippet, write_model_card
from mllm_balance.plots import plot_model_contributions


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_with_robustness_results(model):
    card = render_model_card(model.config, full_results(), repo_id="me/balanced-kaomoji", plot_file="plot.png")
    text = str(card)
    meta = front_matter(text)
    assert meta["base_model"] == TINY_ID
    assert meta["library_name"] == "mllm-balance"
    assert meta["datasets"] == ["kaomoji-sentiment"]
    assert meta["metrics"] == ["accuracy"]
    assert meta["pipeline_tag"] == "other"
    assert "multimodal-balanced-classification" in meta["tags"]
    assert card.data.base_model == TINY_ID  # what the Hub reads back
    assert "# balanced-kaomoji" in text
    assert "| fusion (text + image + audio) | 81.25 |" in text
    assert "| image alone | 52.12 |" in text and "| audio alone | 40.00 |" in text
    # Shapley 30/18/12 -> normalised 150/90/60 -> deviations 50/10/40, EDM 60
    assert "| text | 30.00 | 150.00 | 50.00 |" in text
    assert "| audio | 12.00 | 60.00 | 40.00 |" in text
    assert "Equilibrium deviation metric (EDM): 60.00" in text
    assert "| 2 | audio → image → text |" in text
    assert "### Robustness to missing modalities" in text
    assert "| 0.1 | 78.00 |" in text and "| 0.5 | 66.50 |" in text
    assert "![Shapley value of each modality after every scored epoch](plot.png)" in text
    assert usage_snippet("me/balanced-kaomoji", model.config.modalities) in text
    assert "@misc{shi2025modality" in text and "Modality Equilibrium Matters" in text


def test_card_without_robustness_results(model):
    results = full_results()
    del results["missing_modality"]
    text = str(render_model_card(model.config, results, repo_id="me/x"))
    assert "Robustness" not in text and "Missing rate" not in text
    assert "| fusion (text + image + audio) | 81.25 |" in text
    assert "Equilibrium deviation metric (EDM): 60.00" in text
    assert "Contributions over training" not in text  # no plot file given
    assert front_matter(text)["base_model"] == TINY_ID


def test_card_without_results(model):
    text = str(render_model_card(model.config, None, repo_id="me/x"))
    assert "No evaluation results were provided" in text
    assert "Shapley value |" not in text and "Training order by epoch" not in text
    assert "| Last training order (weakest first) | audio → image → text |" in text
    assert "datasets" not in front_matter(text)


def test_undefined_edm_renders_as_not_available(model):
    results = full_results(shapley={"text": 5.0, "image": -5.0, "audio": 0.0}, edm=None)
    text = str(render_model_card(model.config, results))
    assert "EDM): n/a" in text
    assert "| text | 5.00 | n/a | n/a |" in text


def test_local_backbone_is_not_named_as_base_model(tmp_path):
    config = BalanceConfig(modality_dims={"text": 4}, num_labels=2, backbone_id=str(tmp_path))
    meta = front_matter(str(render_model_card(config)))
    assert "base_model" not in meta
    assert meta["pipeline_tag"] == "text-classification" == hub_pipeline_tag(["text"])


def test_written_card_and_plot(model, tmp_path):
    write_model_card(tmp_path, model, full_results(), repo_id="me/x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "contributions.png"]
    with Image.open(tmp_path / "contributions.png") as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 300  # two panels (Shapley, EDM)
    text = (tmp_path / "README.md").read_text()
    assert "](contributions.png)" in text
    assert f"({sum(p.numel() for p in model.parameters()):,} values" in text
    assert ModelCard.load(tmp_path / "README.md").data.base_model == TINY_ID


def test_plot_is_skipped_without_history_or_matplotlib(model, tmp_path, monkeypatch):
    assert plot_model_contributions([], tmp_path / "p.png") is None
    model.config.shapley_history = None
    write_model_card(tmp_path, model, None)
    assert not (tmp_path / "contributions.png").exists()
    assert "Contributions over training" not in (tmp_path / "README.md").read_text()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.warns(UserWarning, match="matplotlib is not installed"):
        assert plot_model_contributions([{"text": 1.0}], tmp_path / "p.png") is None


def test_edm_metric_cites_the_paper_as_the_card_does():
    import evaluate

    from mllm_balance.metrics import EDM_METRIC_PATH
    from mllm_balance.model_card import PAPER_CITATION

    assert evaluate.load(EDM_METRIC_PATH).citation == PAPER_CITATION


def test_a_baseline_saves_with_a_card_that_names_its_fusion(tmp_path):
    spec = get_baseline("late_fusion")
    model = spec.build_model(spec.build_config({"text": 4, "image": 3}, 2, hidden_size=4, backbone_id=TINY_ID))
    written = save_adapters(model, tmp_path)
    assert "README.md" in written
    card = (tmp_path / "README.md").read_text()
    assert "| Default inference | late_fusion fusion |" in card


def test_the_readme_cites_the_paper_as_the_card_does():
    from pathlib import Path

    from mllm_balance.model_card import PAPER_CITATION

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"```bibtex\n{PAPER_CITATION.strip()}\n```" in readme
