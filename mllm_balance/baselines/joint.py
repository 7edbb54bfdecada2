"""Joint: input-level fusion, every modality a token of one backbone input, LoRA (peft) + a classification head."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, inject_adapter_in_model
from torch import nn
from transformers import AutoConfig, AutoModel

from .base import BaselineModel, Features, Mask
from .config import JointConfig

TINY_BACKBONE = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 8,
    "max_position_embeddings": 16,
    "type_vocab_size": 1,
}


def build_backbone(backbone_config: dict[str, Any] | None = None) -> nn.Module:
    """A transformer built from a config (random weights): `AutoModel.from_config(AutoConfig.for_model(**kw))`."""
    kwargs = dict(backbone_config or TINY_BACKBONE)
    model_type = kwargs.pop("model_type", None)
    if model_type is None:
        raise ValueError("transformer_config needs a 'model_type' (e.g. 'bert')")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **kwargs))


def linear_module_names(module: nn.Module) -> list[str]:
    """Names of every `nn.Linear` inside `module`."""
    return [name for name, sub in module.named_modules() if isinstance(sub, nn.Linear)]


class JointModel(BaselineModel):
    """**Joint** baseline: fine-tuning the backbone itself with all modalities in one input (input-level fusion),
    through LoRA adapters (peft) and a linear classification head.

    The "Joint" row of Table 3 of "Modality Equilibrium Matters" (standard fine-tuning of an MLLM with the
    modalities fused at its input); LoRA: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
    ICLR 2022. Each modality's cached feature becomes one input token: `e_m = P_m x_m` (a frozen connector, the
    identity when `D_m` equals the backbone's hidden size), the tokens go through the frozen backbone with LoRA on
    its linear layers (and on the connectors) via `inputs_embeds` (one position per declared modality) and an
    attention mask that hides missing modalities, the outputs of the present tokens are mean-pooled and a linear head
    classifies them. Only the LoRA matrices and the head train.

    Args:
        config ([`JointConfig`]): its fields set LoRA and, without `backbone`, the backbone's config.
        backbone (`nn.Module`, *optional*): a transformers model that accepts `inputs_embeds` and `attention_mask`
            and returns `last_hidden_state` (e.g. a pretrained `BertModel` or an MLLM's language model). Its weights
            are kept (frozen); without it a backbone is built from `config.transformer_config` (random weights,
            for tests).

    On cached features the backbone sees one pooled vector per modality instead of the raw token sequence; to
    fine-tune on raw inputs, pass a backbone whose input embeddings come from the raw modalities (the features
    are then that backbone's input embeddings).
    """

    config_class = JointConfig

    def __init__(self, config: JointConfig, backbone: nn.Module | None = None):
        super().__init__(config, build_adapters=False)
        backbone = backbone if backbone is not None else build_backbone(config.transformer_config)
        hidden = backbone.config.hidden_size
        generator = torch.Generator().manual_seed(config.connector_seed)
        connectors = nn.ModuleDict()
        for m, dim in config.modality_dims.items():
            if dim == hidden:
                connectors[m] = nn.Identity()
            else:
                proj = nn.Linear(dim, hidden, bias=False)
                with torch.no_grad():
                    proj.weight.copy_(torch.randn(hidden, dim, generator=generator) / dim**0.5)
                connectors[m] = proj
        self.joint = nn.ModuleDict({"connectors": connectors, "backbone": backbone})
        self.joint.requires_grad_(False)
        targets = config.target_modules or linear_module_names(self.joint)
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
        )
        inject_adapter_in_model(lora, self.joint)
        for name, p in self.joint.named_parameters():
            p.requires_grad_("lora_" in name)
        self.head = nn.Linear(hidden, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "head", None):
            module.reset_parameters()  # the backbone, connectors and LoRA keep their own initialisation

    def adapt(self, features: Features, present: Mask) -> dict[str, torch.Tensor]:
        """Input tokens `{m: (B, H)}` of the present modalities (connector outputs)."""
        return {m: self.joint["connectors"][m](features[m]) for m in present}

    def fuse(self, adapted: Features, present: Mask):
        # one token per declared modality, always at the same position; a missing one is zero and masked out
        ref = next(iter(adapted.values()))
        zeros = ref.new_zeros(ref.shape)
        off = torch.zeros(ref.shape[0], dtype=torch.long, device=ref.device)
        tokens = torch.stack([adapted.get(m, zeros) for m in self.modalities], dim=1)  # (B, T, H)
        mask = torch.stack([present[m].long() if m in present else off for m in self.modalities], dim=1)  # (B, T)
        hidden = self.joint["backbone"](inputs_embeds=tokens, attention_mask=mask).last_hidden_state  # (B, T, H)
        weight = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weight).sum(1) / weight.sum(1)  # (B, H)
        return self.head(pooled), pooled

    def training_loss(self, adapted, present, labels, logits, features):
        return F.cross_entropy(logits, labels)


__all__ = ["JointModel", "build_backbone", "TINY_BACKBONE"]
