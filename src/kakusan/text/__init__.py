"""Text for the prompt → image model: the offline sentence encoder (:mod:`kakusan.text.encoder`) and the cache of
caption embeddings (:mod:`kakusan.text.cache`)."""

from kakusan.text.cache import encode_cached
from kakusan.text.encoder import MAX_TOKENS, WIDTH, TextEncoder, check_prompt, get_text_encoder, model_dir

__all__ = ["TextEncoder", "get_text_encoder", "check_prompt", "model_dir", "encode_cached", "MAX_TOKENS", "WIDTH"]
