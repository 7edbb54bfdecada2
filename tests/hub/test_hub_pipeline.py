"""The registered pipeline on a tiny backbone gives the scores of calling the model directly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hub_helpers import SAMPLING_RATE, TinyBackbone, make_model, png_bytes, tone
from PIL import Image
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from mllm_balance.hub import save_adapters
from mllm_balance.pipeline import TASK, BalancedClassificationPipeline, register_pipeline


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backbone):
    folder = tmp_path_factory.mktemp("adapters")
    model = make_model(backbone, seed=3)
    save_adapters(model, folder)
    return folder, model


@pytest.fixture(scope="module")
def pipe(saved, backbone):
    return pipeline(TASK, model=str(saved[0]), device="cpu", backbone=backbone)


@pytest.fixture(scope="module")
def samples(media):
    import io

    return [
        {"text": "what a happy day", "image": str(media["image0"]), "audio": str(media["audio0"])},
        {"text": "so sad and angry", "audio": (tone(0.3, 220.0, 16000), 16000)},  # image missing, resampled audio
        {"image": Image.open(io.BytesIO(png_bytes(7)))},
        {"text": "the cat sat on the mat", "image": np.full((9, 9, 3), 0.25, dtype=np.float32)},
        {"audio": str(media["audio1"]), "image": None},  # None = missing
        {"text": "a quiet night", "image": str(media["image1"]), "audio": tone(0.25, 500.0)},
    ]


def direct_scores(model, backbone, sample, mode=None) -> torch.Tensor:
    """The model called directly on the backbone's features of the present modalities only (no mask)."""
    present = {m: v for m, v in sample.items() if v is not None}
    features = backbone.encode({m: [backbone.preprocess_one(m, v)] for m, v in present.items()})
    with torch.no_grad():
        return model(features, inference_mode=mode).logits.softmax(-1)[0]


def as_vector(result, labels=("negative", "neutral", "positive")) -> torch.Tensor:
    scores = {r["label"]: r["score"] for r in result}
    return torch.tensor([scores[label] for label in labels])


def test_registered_task(pipe):
    from transformers import AutoModel

    assert isinstance(pipe, BalancedClassificationPipeline)
    task = PIPELINE_REGISTRY.supported_tasks[TASK]
    assert task["impl"] is BalancedClassificationPipeline and task["pt"] == (AutoModel,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_pipeline()  # idempotent: importing twice neither fails nor overwrites


@pytest.mark.parametrize("index", [0, 1, 2, 4])  # full inputs, and samples missing one or two modalities
def test_pipeline_matches_direct_model_call(pipe, saved, backbone, samples, index):
    result = pipe(samples[index])
    assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
    torch.testing.assert_close(as_vector(result), direct_scores(saved[1], backbone, samples[index]), atol=1e-6, rtol=0)


def test_batch_sizes_agree(pipe, saved, backbone, samples):
    one = pipe(samples, batch_size=1)
    four = pipe(samples, batch_size=4)  # chunks of 4 and 2, mixed presence patterns in each
    assert len(one) == len(four) == len(samples)
    for i, (a, b) in enumerate(zip(one, four)):
        assert [r["label"] for r in a] == [r["label"] for r in b], i
        torch.testing.assert_close(as_vector(a), as_vector(b), atol=1e-6, rtol=0)
        torch.testing.assert_close(as_vector(b), direct_scores(saved[1], backbone, samples[i]), atol=1e-6, rtol=0)
    assert pipe(tuple(samples[:2]), batch_size=2) == pipe(samples[:2], batch_size=2)
    streamed = list(pipe((s for s in samples), batch_size=4))
    assert [[r["label"] for r in x] for x in streamed] == [[r["label"] for r in x] for x in four]


def test_dataset_rows_stream(pipe):
    import datasets

    rows = datasets.Dataset.from_dict({"text": ["a happy day", "a sad night", "music"], "image": [None] * 3})
    streamed = pipe(rows, batch_size=2)
    assert not isinstance(streamed, list)
    assert list(streamed) == pipe([{"text": t} for t in rows["text"]], batch_size=2)


def test_top_k(pipe, samples):
    assert [len(pipe(samples[0], top_k=k)) for k in (1, 2, 3, 10)] == [1, 2, 3, 3]
    best = pipe(samples[0], top_k=1)[0]
    assert best == pipe(samples[0])[0]


@pytest.mark.parametrize("mode", ["hybrid", "train_order", "entropy"])
def test_inference_modes(pipe, saved, backbone, samples, mode):
    result = pipe(samples[0], inference_mode=mode)
    torch.testing.assert_close(
        as_vector(result), direct_scores(saved[1], backbone, samples[0], mode), atol=1e-6, rtol=0
    )


def test_hybrid_is_the_default_and_differs_from_the_training_order(pipe, samples):
    default = as_vector(pipe(samples[0]))
    torch.testing.assert_close(default, as_vector(pipe(samples[0], inference_mode="hybrid")), atol=0, rtol=0)
    assert not torch.allclose(default, as_vector(pipe(samples[0], inference_mode="train_order")), atol=1e-5)


def test_modality_scores(pipe, saved, backbone, samples):
    model = saved[1]
    label_index = {label: i for i, label in model.config.id2label.items()}
    results = pipe(samples[:2], return_modality_scores=True, top_k=2)
    assert set(results[0]["modality_scores"]) == {"text", "image", "audio"}
    assert set(results[1]["modality_scores"]) == {"text", "audio"}  # image missing: no image scores
    for sample, result in zip(samples[:2], results):
        assert len(result["scores"]) == 2
        for m, ranked in result["modality_scores"].items():
            features = backbone.encode({m: [backbone.preprocess_one(m, sample[m])]})
            with torch.no_grad():
                expected = model.classifier(model.adapters[m](features[m])).softmax(-1)[0]  # chain over {m}: g(a_m(x))
            assert len(ranked) == 2
            for r in ranked:
                assert r["score"] == pytest.approx(float(expected[label_index[r["label"]]]), abs=1e-6)


def test_backbone_loads_from_the_recorded_reference(saved, samples, pipe):
    loaded = pipeline(TASK, model=str(saved[0]), device="cpu")
    assert isinstance(loaded.backbone, TinyBackbone)
    torch.testing.assert_close(as_vector(loaded(samples[0])), as_vector(pipe(samples[0])), atol=1e-6, rtol=0)


def test_mismatched_backbone_is_refused(saved, samples):
    with pytest.raises(ValueError, match=r"backbone mismatch(.|\n)*feature size of 'image': adapters expect 12"):
        pipeline(TASK, model=str(saved[0]), device="cpu", backbone=TinyBackbone(image_size=16))
    with pytest.raises(ValueError, match=r"layer: recorded -1, this backbone has 3"):
        pipeline(TASK, model=str(saved[0]), device="cpu", backbone=TinyBackbone(layer=3))
    other = TinyBackbone(seed=1, revision="retrained")
    with pytest.warns(UserWarning, match="backbone revision"):
        forced = pipeline(TASK, model=str(saved[0]), device="cpu", backbone=other, allow_backbone_mismatch=True)
    assert len(forced(samples[0])) == 3


def test_pipeline_on_a_model_object(saved, backbone, samples, pipe):
    direct = BalancedClassificationPipeline(model=saved[1], backbone=backbone, device="cpu")
    assert direct(samples[3]) == pipe(samples[3])
    assert direct([]) == []


def test_audio_at_another_rate_is_resampled(pipe, samples):
    wave = tone(0.3, 220.0, 16000)
    at_16k = as_vector(pipe({"audio": (wave, 16000)}))
    at_8k = as_vector(pipe({"audio": (wave[::2].copy(), SAMPLING_RATE)}))
    torch.testing.assert_close(at_16k, at_8k, atol=2e-3, rtol=0)


def test_bfloat16_model(saved, backbone, samples, pipe):
    half = pipeline(TASK, model=str(saved[0]), device="cpu", backbone=backbone, dtype=torch.bfloat16)
    assert half.model.dtype == torch.bfloat16
    for a, b in zip(half(samples, batch_size=4), pipe(samples, batch_size=4)):
        torch.testing.assert_close(as_vector(a), as_vector(b), atol=2e-2, rtol=0)
