"""The peer benchmark's Pipecat server: the keypad questionnaire's prompts over Twilio streams.

Runs in Pipecat's own virtual environment (bench/bench_peer.py makes it), never in the
service's; it imports nothing from hana_voice. A FastAPI app under uvicorn, one Pipecat
pipeline per WebSocket, built the way Pipecat's Twilio examples build theirs:

    FastAPIWebsocketTransport(TwilioFrameSerializer)  ->  VADProcessor(Silero)
        ->  PromptPlayer  ->  transport output (Pipecat paces the audio in real time)

PromptPlayer plays the recorded prompts (8 kHz mu-law files from this service, so both
servers stream the same audio) in order: the first when the pipeline starts, each next one
when the caller presses a key, as the keypad questionnaire does. The pipeline runs at 8 kHz
in and out, so Pipecat resamples nothing: the cheapest configuration, which flatters Pipecat.
``--vad none`` drops the VAD (cheaper still; this service always runs its VAD).

    <pipecat-venv>/bin/python bench/pipecat_server.py --port 8766 --prompts DIR [--vad none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # deprecated, still in 3.11: the mu-law of the recorded prompts

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.frames.frames import Frame, InputDTMFFrame, OutputAudioRawFrame, StartFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

RATE = 8000
warnings.filterwarnings("ignore", category=DeprecationWarning)  # PipelineTask and its runner


class PromptPlayer(FrameProcessor):
    def __init__(self, prompts: list[bytes]) -> None:
        super().__init__()
        self.prompts = prompts
        self.position = 0

    async def _play_next(self) -> None:
        if self.position < len(self.prompts):
            pcm = self.prompts[self.position]
            self.position += 1
            await self.push_frame(OutputAudioRawFrame(audio=pcm, sample_rate=RATE, num_channels=1))

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._play_next()
        elif isinstance(frame, InputDTMFFrame) and frame.button.value in "12":
            await self._play_next()  # "1#" is one answer: only its first key moves on


def build_app(prompts: list[bytes], vad: str) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        stream_sid = call_sid = ""
        # Twilio's first two messages, read before the pipeline starts (as Pipecat's
        # parse_telephony_websocket does): "connected", then "start" with the stream's ids.
        for _ in range(2):
            message: dict[str, Any] = json.loads(await websocket.receive_text())
            if message.get("event") == "start":
                stream_sid = message["start"]["streamSid"]
                call_sid = message["start"].get("callSid", "")
                break
        serializer = TwilioFrameSerializer(
            stream_sid=stream_sid,
            call_sid=call_sid,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        processors: list[Any] = [transport.input()]
        if vad == "silero":
            from pipecat.audio.vad.silero import SileroVADAnalyzer
            from pipecat.processors.audio.vad_processor import VADProcessor

            processors.append(VADProcessor(vad_analyzer=SileroVADAnalyzer(sample_rate=RATE)))
        processors += [PromptPlayer(prompts), transport.output()]
        task = PipelineTask(
            Pipeline(processors),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, client: Any) -> None:
            await task.cancel()

        await PipelineRunner(handle_sigint=False).run(task)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--prompts", type=Path, required=True)
    parser.add_argument("--vad", choices=("silero", "none"), default="silero")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    prompts = [audioop.ulaw2lin(p.read_bytes(), 2) for p in sorted(args.prompts.glob("*.ulaw"))]
    app = build_app(prompts, args.vad)
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
