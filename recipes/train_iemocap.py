"""Train the balanced model on IEMOCAP (audio + text + video).

With `--data_dir` the recipe reads the dataset in its released layout (see `mllm_balance.data`); without it,
it runs on the bundled offline benchmark that stands in for it: kaomoji-speech (text + image + audio).
Features are extracted once by the frozen backbone and cached; `results.json` and a summary table land in
`--output_dir`.

    accelerate launch recipes/train_iemocap.py
    accelerate launch recipes/train_iemocap.py --data_dir /data/iemocap --backbone qwen2.5-omni:Qwen/Qwen2.5-Omni-7B
    accelerate launch --multi_gpu --num_processes 2 recipes/train_iemocap.py --quantization 8bit

Defaults come from `recipes/configs/iemocap.yaml` (or `--config other.yaml`); flags override them.
"""

from pathlib import Path

from mllm_balance.recipe import parse_recipe_args, run_recipe

CONFIG = Path(__file__).with_name("configs") / "iemocap.yaml"


def main() -> None:
    data_args, model_args, training_args = parse_recipe_args(str(CONFIG))
    run_recipe(data_args, model_args, training_args)


if __name__ == "__main__":
    main()
