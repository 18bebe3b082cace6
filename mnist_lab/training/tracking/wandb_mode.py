"""Which W&B mode a run gets (``logger.mode``), decided without network or prompt."""

from __future__ import annotations

import os
import secrets
import string

from ...errors import UserError

WANDB_MODES = ("auto", "online", "offline", "disabled")  # logger.wandb.mode


def has_credentials() -> bool:
    """True when a W&B API key is available, without network access or a prompt.

    Looks where wandb looks: ``WANDB_API_KEY``, an identity-token file, wandb's
    settings files, and the ``.netrc`` entry ``wandb login`` writes.
    """
    import wandb
    from wandb.sdk.lib import wbauth

    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    settings = wandb.Settings()
    settings.update_from_system_settings()
    settings.update_from_env_vars(dict(os.environ))
    if settings.api_key:
        return True
    try:
        return bool(wbauth.read_netrc_auth(host=settings.base_url))
    except Exception:  # a malformed .netrc entry counts as no credentials
        return False


def resolve_mode(mode: str) -> str:
    """``logger.mode`` → the mode handed to ``wandb.init``.

    Raises:
        UserError: ``online`` asked for without credentials.
    """
    if mode in ("offline", "disabled"):
        return mode
    logged_in = has_credentials()
    if mode == "online" and not logged_in:
        raise UserError(
            "logger.mode=online, but no W&B credentials were found (no WANDB_API_KEY and "
            "no key saved by `wandb login`). Log in with `wandb login` (or set "
            "WANDB_API_KEY), or run with logger.mode=offline and upload later with "
            "`wandb sync`, or use logger=none."
        )
    return "online" if logged_in else "offline"


def new_run_id() -> str:
    """A W&B run id: 8 random lowercase letters and digits, like wandb's own."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))
