"""Bad input through the pipeline: a clear ValueError naming the sample and the problem, and nothing else."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hub_helpers import make_model, tone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from PIL import Image

from mllm_balance.pipeline import BalancedClassificationPipeline
from mllm_balance.pipeline_inputs import parse_sample

MODALITIES = ["text", "image", "audio"]


@pytest.fixture(scope="module")
def pipe(backbone):
    return BalancedClassificationPipeline(model=make_model(backbone), backbone=backbone, device="cpu")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({}, "no modality given; pass a non-empty subset of ['text', 'image', 'audio']"),
        ({"text": None, "image": None}, "no modality given"),
        ({"txt": "hello"}, "unknown modality key(s) 'txt'; this model was trained on ['text', 'image', 'audio']"),
        ({"text": "hi", 3: "x"}, "unknown modality key(s) 3;"),
        ({"text": 3}, "text: text must be a str, got int"),
        ({"text": "   "}, "text: text is empty"),
        ({"image": 2.5}, "image: image must be a local path, PIL image or array, got float"),
        ({"image": "/nonexistent/cat.png"}, "image: image file '/nonexistent/cat.png' does not exist"),
        ({"image": "https://example.com/cat.png"}, "URLs are not downloaded, pass a local file"),
        ({"image": np.zeros((5, 5, 2), dtype=np.uint8)}, "image: image array has unsupported shape (5, 5, 2)"),
        ({"audio": {1, 2}}, "audio: audio must be a local path or (waveform, sampling_rate), got set"),
        ({"audio": (tone(0.1, 200.0), 0)}, "audio sampling rate must be an integer in 1..1000000 Hz, got 0"),
        ({"audio": (tone(0.1, 200.0), "16k")}, "audio sampling rate must be a positive integer (Hz), got str"),
        ({"audio": (tone(0.1, 200.0), True)}, "audio sampling rate must be a positive integer (Hz), got bool"),
        ({"audio": (tone(0.1, 200.0), 16000, 1)}, "audio tuple must be (waveform, sampling_rate), got 3 elements"),
        ({"audio": np.array([0.1, np.nan], dtype=np.float32)}, "audio: audio contains NaN or infinite samples"),
        ({"audio": np.zeros(0, dtype=np.float32)}, "audio: audio has no samples"),
    ],
)
def test_bad_sample_names_the_problem(pipe, bad, message):
    with pytest.raises(ValueError, match="^sample(, |: )") as info:
        pipe(bad)
    assert message in str(info.value)


def test_files_that_cannot_be_read(pipe, media):
    cases = [
        ({"image": str(media["corrupt_image"])}, f"sample 1, image: image file {str(media['corrupt_image'])!r} cannot"),
        ({"image": str(media["text_file"])}, f"sample 1, image: image file {str(media['text_file'])!r} cannot"),
        ({"audio": str(media["corrupt_audio"])}, f"sample 1, audio: audio file {str(media['corrupt_audio'])!r} cannot"),
        ({"audio": str(media["image0"])}, "sample 1, audio: audio file"),
    ]
    good = {"text": "fine"}
    for bad, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            pipe([good, bad, good], batch_size=2)


def test_error_names_the_index_in_a_list(pipe):
    with pytest.raises(ValueError, match=r"^sample 2: no modality given"):
        pipe([{"text": "a"}, {"text": "b"}, {}], batch_size=4)
    with pytest.raises(ValueError, match=r"^sample 1: expected a dict \{modality: input\}"):
        pipe([{"text": "a"}, "just a string"])


@pytest.mark.parametrize("bad", [42, "a sentence", None, b"bytes", np.zeros(3)])
def test_wrong_top_level_type(pipe, bad):
    with pytest.raises(ValueError, match="expected one sample as a dict"):
        pipe(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"top_k": True}, "top_k must be a positive integer"),
        ({"inference_mode": "average"}, "inference_mode must be one of"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"return_modality_scores": "yes"}, "return_modality_scores must be a bool"),
        ({"temperature": 2.0}, "unknown parameter(s) ['temperature']"),
    ],
)
def test_bad_parameters(pipe, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pipe({"text": "hello"}, **kwargs)


def test_none_counts_as_missing(pipe):
    assert pipe({"text": "hello there", "image": None, "audio": None}) == pipe({"text": "hello there"})


# ------------------------------------------------------------------------------------------- property-based tests
def _media_paths(media) -> list[str]:
    return [str(media[k]) for k in ("image0", "audio0", "corrupt_image", "corrupt_audio", "text_file")] + [
        "/nonexistent/file.wav",
        str(media["image0"].parent),
        "http://example.com/a.png",
        "",
        "\x00",
    ]


def _values(media) -> st.SearchStrategy:
    dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_, np.complex64])
    any_array = arrays(dtypes, array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    rates = st.one_of(
        st.sampled_from([8000, 16000, 22050, 44100, 0, -1, 2_000_000]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.none(),
        st.booleans(),
        st.text(max_size=3),
    )
    images = st.builds(
        Image.new,
        st.sampled_from(["RGB", "L", "RGBA", "P", "1", "I", "F", "I;16", "CMYK", "LA"]),
        st.tuples(st.integers(0, 6), st.integers(0, 6)),
    )
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.binary(max_size=48)
    )
    leaves = st.one_of(
        scalars,
        any_array,
        any_array.map(torch.from_numpy),
        st.sampled_from(_media_paths(media)),
        images,
        st.tuples(any_array, rates),
        st.builds(lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32)).to(torch.bfloat16), any_array),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.tuples(inner, inner),
            st.dictionaries(st.sampled_from(["array", "sampling_rate", "bytes", "path", "x"]), inner, max_size=3),
        ),
        max_leaves=6,
    )


def _modality_values(media) -> dict[str, st.SearchStrategy]:
    """Inputs close to what each modality accepts: right types with odd shapes, dtypes, sizes and contents."""
    from hub_helpers import png_bytes

    floats = st.sampled_from([np.float16, np.float32, np.float64])
    pixels = st.sampled_from([np.uint8, np.float32, np.int16, np.bool_])
    image_arrays = arrays(pixels, array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=8))
    waves = arrays(floats, array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=300))
    rates = st.one_of(
        st.sampled_from([8000, 16000, 22050, 44100, 48000, 0, -8000, 2_000_000, 16000.0, 16000.5]),
        st.none(),
        st.booleans(),
        st.text(max_size=3),
    )
    return {
        "text": st.one_of(st.text(max_size=30), st.integers(), st.binary(max_size=8)),
        "image": st.one_of(
            image_arrays,
            image_arrays.map(torch.from_numpy),
            st.builds(
                Image.new,
                st.sampled_from(["RGB", "L", "RGBA", "P", "1", "I", "F", "I;16", "CMYK", "LA"]),
                st.tuples(st.integers(0, 6), st.integers(0, 6)),
            ),
            st.integers(0, 9).map(png_bytes),
            st.tuples(st.integers(0, 9), st.integers(0, 200)).map(lambda t: png_bytes(t[0])[: t[1]]),
            st.sampled_from(_media_paths(media)),
            st.fixed_dictionaries(
                {}, optional={"bytes": st.binary(max_size=16), "path": st.sampled_from(_media_paths(media))}
            ),
        ),
        "audio": st.one_of(
            waves,
            waves.map(torch.from_numpy),
            st.tuples(waves, rates),
            st.tuples(st.lists(st.floats(width=32), max_size=20), rates),
            st.fixed_dictionaries({"array": waves, "sampling_rate": rates}),
            st.binary(max_size=64),
            st.sampled_from([("audio0", None), ("audio1", 60)]).map(lambda key: media[key[0]].read_bytes()[: key[1]]),
            st.sampled_from(_media_paths(media)),
        ),
    }


def _samples(media) -> st.SearchStrategy:
    per_modality = _modality_values(media)
    anything = _values(media)
    well_keyed = st.fixed_dictionaries(
        {}, optional={m: st.one_of(per_modality[m], per_modality[m], anything) for m in MODALITIES}
    )
    keys = st.one_of(st.sampled_from(MODALITIES), st.text(max_size=4), st.integers(), st.none())
    return st.one_of(well_keyed, well_keyed, well_keyed, st.dictionaries(keys, anything, max_size=3), anything)


_PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy casts and empty means inside rejected inputs
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # long reprs of the input strategy
@given(data=st.data())
@_PROPERTY
def test_parser_raises_only_value_errors_naming_the_sample(backbone, media, data):
    sample = data.draw(_samples(media))
    index = data.draw(st.integers(0, 1000))
    try:
        parsed = parse_sample(sample, MODALITIES, backbone.preprocess_one, index)
    except ValueError as error:
        assert str(error).startswith(f"sample {index}"), str(error)
        return
    assert parsed and set(parsed) <= set(MODALITIES)
    for m, item in parsed.items():
        if m == "text":
            assert isinstance(item, str) and item.strip() == item and item
        elif m == "image":
            assert isinstance(item, Image.Image) and item.mode == "RGB" and item.size == (16, 16)
        else:
            assert isinstance(item, np.ndarray) and item.dtype == np.float32 and item.ndim == 1 and item.size
            assert np.isfinite(item).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pipeline_raises_only_value_errors(pipe, media, data):
    inputs = data.draw(st.one_of(_samples(media), st.lists(_samples(media), max_size=4)))
    batch_size = data.draw(st.integers(1, 3))
    try:
        result = pipe(inputs, batch_size=batch_size)
    except ValueError as error:
        assert re.match(r"^(sample|samples|expected one sample)", str(error)), str(error)
        return
    results = result if isinstance(inputs, (list, tuple)) else [result]
    for ranked in results:
        assert len(ranked) == 3
        assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-5)
