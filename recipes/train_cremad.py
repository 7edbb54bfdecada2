"""Train the balanced model on CREMA-D (audio + video frames).

With `--data_dir` the recipe reads the dataset in its released layout (see `mllm_balance.data`); without it,
it runs on the bundled offline benchmark that stands in for it: fashion-speech (audio + image).
Features are extracted once by the frozen backbone and cached; `results.json` and a summary table land in
`--output_dir`.

    accelerate launch recipes/train_cremad.py
    accelerate launch recipes/train_cremad.py --data_dir /data/crema-d --backbone qwen2.5-omni:Qwen/Qwen2.5-Omni-7B
    accelerate launch --multi_gpu --num_processes 2 recipes/train_cremad.py --quantization 8bit

Defaults come from `recipes/configs/cremad.yaml` (or `--config other.yaml`); flags override them.
"""

from pathlib import Path

from mllm_balance.recipe import parse_recipe_args, run_recipe

CONFIG = Path(__file__).with_name("configs") / "cremad.yaml"


def main() -> None:
    data_args, model_args, training_args = parse_recipe_args(str(CONFIG))
    run_recipe(data_args, model_args, training_args)


if __name__ == "__main__":
    main()
