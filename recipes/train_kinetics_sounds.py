"""Train the balanced model on Kinetics-Sounds (audio + video).

With `--data_dir` the recipe reads the dataset in its released layout (see `mllm_balance.data`); without it,
it runs on the bundled offline benchmark that stands in for it: none (pass --data_dir).
Features are extracted once by the frozen backbone and cached; `results.json` and a summary table land in
`--output_dir`.

    accelerate launch recipes/train_kinetics_sounds.py
    accelerate launch recipes/train_kinetics_sounds.py --data_dir /data/ks --backbone qwen2.5-omni:Qwen/Qwen2.5-Omni-7B
    accelerate launch --multi_gpu --num_processes 2 recipes/train_kinetics_sounds.py --quantization 8bit

Defaults come from `recipes/configs/kinetics_sounds.yaml` (or `--config other.yaml`); flags override them.
"""

from pathlib import Path

from mllm_balance.recipe import parse_recipe_args, run_recipe

CONFIG = Path(__file__).with_name("configs") / "kinetics_sounds.yaml"


def main() -> None:
    data_args, model_args, training_args = parse_recipe_args(str(CONFIG))
    run_recipe(data_args, model_args, training_args)


if __name__ == "__main__":
    main()
