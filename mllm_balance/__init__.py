"""mllm-balance: balanced multimodal classifiers on frozen (multimodal) LLM backbones."""

__version__ = "0.1.0"
