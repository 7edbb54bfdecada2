"""Equilibrium deviation metric (EDM) as an `evaluate` metric module.

Load it offline by path: `evaluate.load(mllm_balance.metrics.EDM_METRIC_PATH)`.
"""

import datasets
import evaluate

from mllm_balance.model_card import PAPER_CITATION
from mllm_balance.shapley import equilibrium_deviation

_DESCRIPTION = """
EDM measures how far a multimodal model is from modality equilibrium. With Shapley values phi_m of the n
modalities, phi~_m = 100 * n * phi_m / sum_j phi_j (100 for every modality of a perfectly balanced model) and
EDM = sum_m |100 - phi~_m|, in percent; lower is more balanced. NaN (with a warning) when sum_j phi_j <= 0.
"""

_KWARGS_DESCRIPTION = """
Args:
    contributions (`list[float]`): the Shapley value of every modality.
    modalities (`list[str]`): the modality names, in the same order.
Returns:
    edm (`float`): EDM in percent.
    terms (`dict[str, float]`): |100 - phi~_m| of every modality.
Example:
    >>> edm = evaluate.load(EDM_METRIC_PATH)
    >>> edm.compute(contributions=[30.0, 10.0], modalities=["text", "image"])["edm"]
    100.0
"""

_CITATION = PAPER_CITATION


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EDM(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"contributions": datasets.Value("float64"), "modalities": datasets.Value("string")}
            ),
        )

    def _compute(self, contributions, modalities):
        if not contributions:
            raise ValueError("EDM needs the Shapley value of at least one modality")
        if len(set(modalities)) != len(modalities):
            raise ValueError(f"modality names must be distinct, got {modalities}")
        edm, terms = equilibrium_deviation(dict(zip(modalities, contributions)), return_terms=True)
        return {"edm": edm, "terms": terms}
