"""A tiny random-weight XTTS v2 checkpoint, written to disk in the layout of a released one.

CI has no GPU and no model hub, so the XTTS engine is tested on this: the real architecture
(GPT with the perceiver resampler, HiFi-GAN decoder, ResNet speaker encoder) shrunk where the
config allows it (one GPT layer of 32 channels, 2 heads, 32 audio codes), a small BPE
vocabulary trained on a few Arabic sentences, and one built-in speaker. The files are loaded
by the engine through the same ``load_xtts`` path a released checkpoint takes. Random weights
make noise, which is all the tests need.

The decoder and speaker encoder have fixed sizes (about 22 M parameters, 90 MB). Their large
tensors are saved as overlapping strided views of one small shared buffer, which
``torch.save`` stores once, so ``model.pth`` stays near 1 MB; ``load_state_dict`` copies the
views into ordinary parameters.

Used by tests/engines/test_xtts.py (a session fixture) and bench/bench_tts_xtts.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: The name of the built-in speaker in the tiny ``speakers_xtts.pth``.
TINY_SPEAKER = "Tiny Speaker"

#: Tensors with more elements than this become views of the shared buffer.
_SHARE_ABOVE = 4096
_SHARED_LEN = 1 << 14
_STRIDE_STEPS = (1, 3, 7, 13, 29)

_CORPUS = (
    "مرحبا، معك هناء من المستشفى. كيف حالك اليوم؟",
    "هل تناولت الدواء في موعده بعد الخروج من المستشفى؟",
    "موعدك القادم في العيادة يوم الأحد الساعة عشرة صباحا.",
    "هل تشعر بألم أو حرارة أو ضيق في التنفس؟ أجب بنعم أو لا.",
    "شكرا لوقتك، نتمنى لك الشفاء العاجل. مع السلامة!",
    "واحد اثنان ثلاثة أربعة خمسة ستة سبعة ثمانية تسعة عشرة مئة ألف",
)
_SPECIAL_TOKENS = ("[STOP]", "[UNK]", "[SPACE]", "[START]", "[ar]", "[en]")
_ARABIC_LETTERS = [chr(c) for c in range(0x0621, 0x064B)] + [chr(c) for c in range(0x064B, 0x0653)]
_PUNCTUATION = list(".,!?;:'-،؛؟")


def tiny_config_dict(max_audio_tokens: int = 6) -> dict[str, Any]:
    """The tiny model's ``config.json`` content (an ``XttsConfig`` with shrunk model args).

    The random GPT rarely emits its stop code, so a sentence runs to ``max_audio_tokens - 3``
    codes of 1024 samples at 22050 Hz; the tests keep that short, the benchmark longer.
    """
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig

    args = XttsArgs(
        gpt_layers=1,
        gpt_n_model_channels=32,
        gpt_n_heads=2,
        gpt_num_audio_tokens=34,
        gpt_start_audio_token=32,
        gpt_stop_audio_token=33,
        gpt_max_audio_tokens=max_audio_tokens,
        gpt_max_text_tokens=402,
        gpt_max_prompt_tokens=70,
        gpt_use_perceiver_resampler=True,
        gpt_use_masking_gt_prompt_approach=True,
        decoder_input_dim=32,
    )
    config = XttsConfig(model_args=args)
    data: dict[str, Any] = json.loads(config.to_json())
    return data


def write_vocab(path: Path) -> None:
    """Train a small BPE vocabulary holding the special and language tokens XTTS expects."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=160,
        special_tokens=list(_SPECIAL_TOKENS),
        initial_alphabet=_ARABIC_LETTERS + _PUNCTUATION,
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer.save(str(path))


def _share_storage(state: dict[str, Any], parameters: set[str]) -> dict[str, Any]:
    """Replace large parameters by overlapping views of a few small random buffers.

    Each buffer holds uniform noise of one standard deviation (a power of two), and a tensor
    takes the buffer nearest its own initial spread, so activations keep roughly the scale
    the layer's initialiser intended. Buffers (mel filter banks, windows) are kept as they are.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    shared: dict[int, Any] = {}
    out: dict[str, Any] = {}
    for name, tensor in state.items():
        if name not in parameters or tensor.numel() <= _SHARE_ABOVE:
            out[name] = tensor.clone()
            continue
        steps = _STRIDE_STEPS[: tensor.dim()][::-1]
        reach = sum((size - 1) * step for size, step in zip(tensor.shape, steps, strict=True))
        if reach >= _SHARED_LEN:
            raise ValueError(f"{name} {tuple(tensor.shape)} is too large for the shared buffer")
        exponent = round(math.log2(max(float(tensor.float().std()), 1e-4)))
        if exponent not in shared:
            noise = torch.rand(_SHARED_LEN, generator=generator) - 0.5
            shared[exponent] = noise * math.sqrt(12.0) * 2.0**exponent
        out[name] = shared[exponent].as_strided(tuple(tensor.shape), steps).to(tensor.dtype)
    return out


def write_tiny_xtts(target: Path, max_audio_tokens: int = 6) -> Path:
    """Write config.json, vocab.json, model.pth and speakers_xtts.pth into ``target``."""
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    write_vocab(target / "vocab.json")
    (target / "config.json").write_text(json.dumps(tiny_config_dict(max_audio_tokens), indent=2))

    config = XttsConfig()
    config.load_json(str(target / "config.json"))
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(target / "vocab.json"))
    model.init_models()
    parameters = {name for name, _ in model.named_parameters()}
    state = _share_storage(model.state_dict(), parameters)
    torch.save({"model": state}, target / "model.pth")

    # The built-in speaker's latents come from the saved weights, as Coqui's own file does.
    model.load_state_dict(state)
    model.eval()
    voice = torch.randn(1, 22050 * 2, generator=torch.Generator().manual_seed(1)) * 0.1
    latents = model.get_gpt_cond_latents(voice, 22050, length=30, chunk_length=6)
    embedding = model.get_speaker_embedding(voice, 22050)
    speakers = {
        TINY_SPEAKER: {
            "gpt_cond_latent": latents.detach().clone(),
            "speaker_embedding": embedding.detach().clone(),
        }
    }
    torch.save(speakers, target / "speakers_xtts.pth")
    return target
