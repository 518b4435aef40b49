"""vosk download / vosk where: the speech model that transcribes voicemail."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from callcenter.cli.common import settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("vosk", help="the Vosk speech model for voicemail transcription",
                       description="Install or locate the offline speech model (Vosk).")
    vsub = p.add_subparsers(dest="vosk_command", metavar="ACTION", required=True)
    d = vsub.add_parser(
        "download", help="download and unpack a model into <data_dir>/models",
        description="Download a Vosk model (default: the Mandarin vosk-model-small-cn-0.22, "
                    "42 MB) from alphacephei.com and unpack it under <data_dir>/models, where "
                    "the server finds it without further configuration.")
    d.add_argument("model", nargs="?", default=None,
                   help="model name (e.g. vosk-model-cn-0.22) or a URL of a model zip")
    d.add_argument("--dest", type=Path, help="default: <data_dir>/models")
    d.set_defaults(func=cmd_download)
    w = vsub.add_parser("where", help="say which model the server would load",
                        description="Print the model folder the server would load, or why none.")
    w.set_defaults(func=cmd_where)


def cmd_download(args: argparse.Namespace) -> int:
    from recordings.model_download import DEFAULT_MODEL, ModelDownloadError, download_model
    from recordings.vosk_model import MODELS_FOLDER

    settings = settings_from_args(args)
    dest = args.dest or settings.data_dir / MODELS_FOLDER
    shown = [-1]

    def progress(done: int, total: int | None) -> None:
        if total:
            percent = done * 100 // total
            if percent // 10 != shown[0] // 10:
                shown[0] = percent
                print(f"  {percent}% ({done // 1_000_000} MB)", file=sys.stderr)

    try:
        model = download_model(args.model or DEFAULT_MODEL, dest, progress=progress)
    except ModelDownloadError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"模型已安装 / model installed: {model}")
    if args.dest is not None:
        print(f"设置 / set [vosk] model_path = \"{model}\"")
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    from recordings.errors import ModelNotFound
    from recordings.vosk_model import find_model, model_in_data_dir

    settings = settings_from_args(args)
    try:
        if settings.vosk.model_path is not None:
            print(find_model(settings.vosk.model_path))
            return 0
        found = model_in_data_dir(settings.data_dir)
    except ModelNotFound as exc:
        print(exc, file=sys.stderr)
        return 1
    if found is None:
        print("没有语音模型：运行 `callcenter vosk download` / no model: run "
              "`callcenter vosk download`", file=sys.stderr)
        return 1
    print(found)
    return 0
