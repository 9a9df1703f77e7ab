"""The one place `.env` is read, so settings, the launcher and every `manage.py` command agree.

The launcher needs values (the embedded Redis port, the var directory) before
Django's settings load; it calls this first, and its children inherit the
result through their environment. Variables already set win over the file.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def load_dotenv() -> None:
    path = Path(os.environ.get("WAP_ENV_FILE", BASE_DIR / ".env"))
    if path.exists():
        environ.Env.read_env(path, overwrite=False)
