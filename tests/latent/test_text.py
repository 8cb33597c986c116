"""The text encoder (kakusan.text): offline loading, sentence-transformers' own embedding, padding and masks,
and the one-line errors for bad prompts."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from kakusan.diffusion.conditioning import TextCondition
from kakusan.errors import DataError
from kakusan.text import MAX_TOKENS, WIDTH, check_prompt, model_dir

PROMPTS = ["a handwritten 7", "a photo of a sneaker", "someone wrote the digit nine by hand, slowly and with care",
           "bag", "a grayscale picture of a pair of trousers"]

BLOCK_SOCKETS = '''
import socket

ATTEMPTS = []


def _refuse(*args, **kwargs):
    ATTEMPTS.append(repr(args[:2]))
    raise ConnectionRefusedError("network blocked by the kakusan offline test")


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
socket.KAKUSAN_ATTEMPTS = ATTEMPTS
'''

OFFLINE_SCRIPT = '''
import json, os, socket
import torch

torch.set_num_threads(1)
assert hasattr(socket, "KAKUSAN_ATTEMPTS"), "sitecustomize did not run"
from kakusan.text import TextEncoder

cond = TextEncoder("cpu").encode(["a handwritten 7", "a photo of a sneaker"])
attempts_while_loading = list(socket.KAKUSAN_ATTEMPTS)
try:
    socket.create_connection(("huggingface.co", 443), timeout=2)
    refused = False
except OSError:
    refused = True
try:
    s = socket.socket()
    s.connect(("127.0.0.1", 9))
    refused_raw = False
except OSError:
    refused_raw = True
print(json.dumps({"norms": cond.pooled.norm(dim=1).tolist(), "shape": list(cond.tokens.shape),
                  "attempts_while_loading": attempts_while_loading, "refused": refused, "refused_raw": refused_raw,
                  "attempts_after": len(socket.KAKUSAN_ATTEMPTS)}))
'''


def test_loads_and_encodes_with_the_hub_disabled_and_sockets_blocked(tmp_path):
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCK_SOCKETS)
    hf_home = tmp_path / "hf-home"
    hf_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(hf_home), PYTHONPATH=str(block),
               OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1", HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(OFFLINE_SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shape"][0] == 2 and out["shape"][2] == WIDTH
    assert out["norms"] == pytest.approx([1.0, 1.0], abs=1e-5)
    # the block was active: our own connections were refused (both paths), and loading tried none
    assert out["refused"] and out["refused_raw"]
    assert out["attempts_while_loading"] == []
    assert out["attempts_after"] == 2
    # nothing was downloaded into the (empty) Hugging Face cache
    assert not [p for p in hf_home.rglob("*") if p.is_file()]


def test_pooled_and_tokens_equal_sentence_transformers(text_encoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    st_module = pytest.importorskip("sentence_transformers")
    st = st_module.SentenceTransformer(str(model_dir()), local_files_only=True, device="cpu")
    ref = st.encode(PROMPTS, normalize_embeddings=True, convert_to_tensor=True).float()
    ref_tokens = st.encode(PROMPTS, output_value="token_embeddings")
    cond = text_encoder.encode(PROMPTS)
    assert cond.pooled.shape == (len(PROMPTS), WIDTH)
    torch.testing.assert_close(cond.pooled, ref, atol=1e-5, rtol=0)
    for i, toks in enumerate(ref_tokens):
        assert int(cond.mask[i].sum()) == len(toks)
        torch.testing.assert_close(cond.tokens[i][cond.mask[i]], toks.float(), atol=1e-5, rtol=0)


def test_condition_shapes_masks_and_unit_norm(text_encoder):
    cond = text_encoder.encode(PROMPTS)
    n = len(PROMPTS)
    lengths = [text_encoder.n_tokens(p) for p in PROMPTS]
    assert isinstance(cond, TextCondition) and len(cond) == n and cond.dim == WIDTH
    assert cond.tokens.shape == (n, max(lengths), WIDTH) and cond.tokens.dtype == torch.float32
    assert cond.mask.dtype == torch.bool and cond.mask.sum(1).tolist() == lengths
    for i, L in enumerate(lengths):  # the real tokens come first, the padding after
        assert cond.mask[i, :L].all() and not cond.mask[i, L:].any()
    torch.testing.assert_close(cond.pooled.norm(dim=1), torch.ones(n), atol=1e-6, rtol=0)
    # pooled is the masked mean of the token states, normalised: recomputed from tokens and mask
    m = cond.mask[..., None].float()
    mean = (cond.tokens * m).sum(1) / m.sum(1)
    torch.testing.assert_close(cond.pooled, mean / mean.norm(dim=1, keepdim=True), atol=1e-6, rtol=0)
    # one string is one row
    assert len(text_encoder.encode("a handwritten 7")) == 1


def test_padded_prompts_equal_the_prompts_alone(text_encoder):
    batch = text_encoder.encode(PROMPTS)
    for i, p in enumerate(PROMPTS):
        alone = text_encoder.encode([p])
        assert alone.mask.all()
        L = int(alone.mask.sum())
        torch.testing.assert_close(batch.pooled[i], alone.pooled[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(batch.tokens[i, :L], alone.tokens[0], atol=1e-5, rtol=0)
    # encoding in chunks (padded per chunk, then stacked by TextCondition.cat) gives the same condition
    chunked = text_encoder.encode(PROMPTS, batch_size=2)
    assert torch.equal(chunked.mask, batch.mask)
    torch.testing.assert_close(chunked.pooled, batch.pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked.tokens[batch.mask], batch.tokens[batch.mask], atol=1e-5, rtol=0)


def test_null_is_the_empty_prompt(text_encoder):
    null = text_encoder.null()
    again = text_encoder.encode([""], check=False)
    assert len(null) == 1 and null.mask.tolist() == [[True, True]]  # [CLS] [SEP]
    assert torch.equal(null.tokens, again.tokens) and torch.equal(null.pooled, again.pooled)
    assert abs(float(null.pooled.norm()) - 1) < 1e-6
    assert not torch.allclose(null.pooled, text_encoder.encode(["a handwritten 7"]).pooled, atol=1e-2)


@pytest.mark.parametrize("prompt", ["", " ", "   \t ", "a\x07b", "a handwritten\n7", "tab\there", "zero\u200bwidth",
                                    "\x00", "a\rb"])
def test_bad_prompts_get_one_line_data_errors(text_encoder, prompt):
    with pytest.raises(DataError) as e:
        check_prompt(prompt)
    assert "\n" not in str(e.value) and "\r" not in str(e.value)
    with pytest.raises(DataError) as e:
        text_encoder.encode(["a handwritten 7", prompt])
    assert "\n" not in str(e.value) and "\r" not in str(e.value)


def test_non_strings_and_no_prompts_are_errors(text_encoder):
    for bad in (None, 7, b"a 7"):
        with pytest.raises(DataError, match="must be a string"):
            check_prompt(bad)
    with pytest.raises(DataError, match="no prompts"):
        text_encoder.encode([])
    assert check_prompt("a handwritten 7") == "a handwritten 7"


def test_prompt_length_limit_is_exactly_256_word_pieces(text_encoder):
    longest = "a " * (MAX_TOKENS - 2)  # + [CLS] and [SEP]
    assert text_encoder.n_tokens(longest) == MAX_TOKENS
    assert text_encoder.encode([longest]).mask.sum() == MAX_TOKENS
    too_long = "a " * (MAX_TOKENS - 1)
    assert text_encoder.n_tokens(too_long) == MAX_TOKENS + 1
    with pytest.raises(DataError) as e:
        text_encoder.encode(["a handwritten 7", too_long])
    msg = str(e.value)
    assert "\n" not in msg and str(MAX_TOKENS) in msg and str(MAX_TOKENS + 1) in msg
    with pytest.raises(DataError):
        text_encoder.encode(["seven " * 300])
