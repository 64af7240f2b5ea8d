"""The listener's VAD front end, run in the frame reader: silence stays put, speech crosses."""

from __future__ import annotations

from typing import Any, cast

from hana_voice.calls.listener import PRE_ROLL, Listener
from tests.audio.signals import line_noise, to_pcm, voiced

RATE = 8000
FRAME = RATE // 50 * 2  # 20 ms of PCM s16le


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def listener() -> Listener:
    return Listener(cast(Any, None), cast(Any, None))  # hear() touches neither


def test_silence_never_crosses_and_speech_brings_its_pre_roll() -> None:
    heard = listener()
    quiet = to_pcm(line_noise(1.0, RATE, -60))
    speech = to_pcm(voiced(1.0, RATE) + line_noise(1.0, RATE, -60, seed=2))
    tail = to_pcm(line_noise(1.5, RATE, -60, seed=3))
    assert [heard.hear(f, RATE) for f in frames(quiet)] == [None] * len(frames(quiet))
    items = [item for f in frames(speech + tail) if (item := heard.hear(f, RATE)) is not None]
    assert items[0][2] is True and items[0][1] == RATE  # speech started with the first one
    # The onset frame arrives with up to PRE_ROLL of the audio before it.
    assert FRAME < len(items[0][0]) <= FRAME + int(PRE_ROLL * RATE) * 2 + FRAME
    assert [i[3] for i in items].count(True) == 1 and items[-1][3] is True  # then it ended
    assert not any(i[2] for i in items[1:])
    # After the end, silence stays in the reader again.
    assert heard.hear(frames(tail)[-1], RATE) is None


def test_a_dropped_onset_or_end_is_carried_to_the_next_frame() -> None:
    heard = listener()
    quiet = frames(to_pcm(line_noise(1.0, RATE, -60)))
    speech = frames(to_pcm(voiced(0.6, RATE) + line_noise(0.6, RATE, -60, seed=2)))
    for f in quiet:
        heard.hear(f, RATE)
    onset = None
    rest = iter(speech)
    for f in rest:
        onset = heard.hear(f, RATE)
        if onset is not None:
            break
    assert onset is not None and onset[2]
    heard.dropped(onset)  # the channel was full
    following = heard.hear(next(rest), RATE)
    assert following is not None and following[2] is True  # the onset is not lost
