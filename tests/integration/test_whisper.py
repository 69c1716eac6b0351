"""faster-whisper, the default transcriber, on a tiny random Whisper built and converted
here (scripts/make_tiny_whisper.py): its greedy tokens equal transformers' for the same
weights; its voice-activity detector finds flite's sentences where they are said; it runs
through the whole product (what it says is meaningless, where it says it is not); the
default model, absent here, leaves speech off and says why; a new transcriber hears every
file with sound again, once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from support.app import api_client, index_through_api, wait_for
from support.audio_factory import tone, video_with_sound
from support.speech_factory import spoken

from msearch.config import Settings, SpeechSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.media.audio import Samples, pcm_stream
from msearch.speech.whisper import RATE, WhisperTranscriber, speech_spans

BUDGET = "welcome to the budget meeting"
DOG = "the dog is barking at the red car"


def _samples(path: Path) -> Samples:
    with pcm_stream(path, rate=RATE, sample_format="f32le") as stream:
        return np.frombuffer(stream.read(), dtype=np.float32)


def _voiced(samples: Samples, gap_s: float = 0.7) -> list[tuple[float, float]]:
    """Where the signal is loud (10 ms frames), runs closer than ``gap_s`` joined: where
    flite speaks, since it speaks into digital silence."""
    frame = RATE // 100
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 0.01)
    runs: list[list[float]] = []
    for index in loud:
        at = index / 100
        if runs and at - runs[-1][1] <= gap_s:
            runs[-1][1] = at + 0.01
        else:
            runs.append([at, at + 0.01])
    return [(start, end) for start, end in runs]


def test_greedy_tokens_equal_a_transformers_computation(
    tiny_whisper_dir: Path, tmp_path: Path
) -> None:
    """The same weights, through faster-whisper (CTranslate2, float32) and through
    transformers' WhisperForConditionalGeneration decoding greedily: the same tokens."""
    import torch
    from faster_whisper import WhisperModel
    from faster_whisper.audio import pad_or_trim
    from transformers import WhisperForConditionalGeneration

    audio = _samples(spoken(tmp_path / "talk.wav", [(1.0, BUDGET)], 6.0))
    fast = WhisperModel(str(tiny_whisper_dir / "ct2"), device="cpu", compute_type="float32")
    segments, _ = fast.transcribe(
        audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        suppress_blank=False,
        suppress_tokens=[],
        condition_on_previous_text=False,
        no_speech_threshold=None,
        compression_ratio_threshold=None,
        log_prob_threshold=None,
    )
    got = [token for segment in segments for token in segment.tokens]

    model = WhisperForConditionalGeneration.from_pretrained(str(tiny_whisper_dir / "hf")).eval()
    features = fast.feature_extractor(audio)
    window = torch.from_numpy(pad_or_trim(features[:, : features.shape[-1] - 1])[None])
    vocabulary = fast.hf_tokenizer
    prompt = [
        vocabulary.token_to_id(token)
        for token in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
    ]
    end = vocabulary.token_to_id("<|endoftext|>")
    want: list[int] = []
    with torch.no_grad():
        encoded = model.model.encoder(window).last_hidden_state
        step = torch.tensor([prompt])
        cache = None
        # CTranslate2 samples at most half of Whisper's 448-token context, as openai's does
        while len(want) < 448 // 2:
            out = model(
                encoder_outputs=(encoded,),
                decoder_input_ids=step,
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            token = int(out.logits[0, -1].argmax())
            if token == end:
                break
            want.append(token)
            step = torch.tensor([[token]])
    assert len(want) > 10 and got == want


def test_the_voice_activity_detector_finds_each_sentence_within_half_a_second(
    tmp_path: Path,
) -> None:
    recording = spoken(tmp_path / "talk.flac", [(2.0, BUDGET), (9.0, DOG)], 15.0)
    samples = _samples(recording)
    truth = _voiced(samples)
    assert len(truth) == 2 and abs(truth[0][0] - 2.0) < 0.5 and abs(truth[1][0] - 9.0) < 0.5
    found = [(s["start"] / RATE, s["end"] / RATE) for s in speech_spans(samples)]
    assert len(found) == 2, found
    for (start, end), (voice_start, voice_end) in zip(found, truth, strict=True):
        assert abs(start - voice_start) <= 0.5 and abs(end - voice_end) <= 0.5
    # nothing in a tone, noise or silence
    assert speech_spans(_samples(tone(tmp_path / "hum.wav", 5.0))) == []
    assert speech_spans(np.zeros(RATE * 3, dtype=np.float32)) == []


def test_a_long_recording_is_read_in_blocks_and_no_sentence_is_cut(tmp_path: Path) -> None:
    """Blocks bound memory; a sentence said across a block's edge is heard whole in the
    next one, at the second it is said."""
    from msearch.speech import whisper

    said_at = whisper.BLOCK_S - 1.0  # starts a second before the first block ends
    recording = spoken(tmp_path / "long.flac", [(said_at, DOG)], whisper.BLOCK_S + 20.0)
    heard: list[float] = []
    with pcm_stream(recording, rate=RATE, sample_format="f32le") as stream:
        blocks = list(whisper._blocks_of_speech(stream, None, heard.append))
    [(offset, block, spans)] = blocks
    assert len(block) <= (whisper.BLOCK_S + whisper.MAX_SPEECH_S) * RATE
    [span] = spans
    assert abs(offset + span["start"] / RATE - said_at) <= 0.5
    assert heard[-1] == pytest.approx(whisper.BLOCK_S + 20.0, abs=0.1)


def test_the_tiny_whisper_transcribes_through_the_interface(
    tiny_whisper_dir: Path, tmp_path: Path
) -> None:
    """int8 on this CPU; segments only where someone speaks, in order, inside the file."""
    transcriber = WhisperTranscriber(SpeechSettings(model=str(tiny_whisper_dir / "ct2")))
    assert (transcriber.name, transcriber.compute_type, transcriber.device) == (
        "faster-whisper",
        "int8",
        "cpu",
    )
    recording = spoken(tmp_path / "talk.flac", [(3.0, BUDGET), (12.0, DOG)], 18.0)
    voiced = [(s["start"] / RATE, s["end"] / RATE) for s in speech_spans(_samples(recording))]
    segments = list(transcriber.transcribe(recording))
    assert segments and all(s.text for s in segments)
    starts = [s.start for s in segments]
    assert starts == sorted(starts)
    for segment in segments:
        assert any(a - 0.05 <= segment.start <= b + 0.05 for a, b in voiced), (segment, voiced)
        assert segment.start <= segment.end <= 18.0 + 0.05
        assert segment.language in transcriber._model.supported_languages
    assert list(transcriber.transcribe(tone(tmp_path / "hum.wav", 4.0))) == []


def test_a_language_the_model_does_not_know_is_refused_with_the_setting_to_change(
    tiny_whisper_dir: Path,
) -> None:
    from msearch.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match=r"speech\.language"):
        WhisperTranscriber(SpeechSettings(model=str(tiny_whisper_dir / "ct2"), language="xx"))
    with pytest.raises(ModelUnavailable, match=r"no model\.bin"):
        WhisperTranscriber(SpeechSettings(model=str(tiny_whisper_dir / "hf")))


async def _file(client: httpx.AsyncClient, file_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/api/v1/files/{file_id}")).json())


async def test_the_default_transcriber_is_off_until_its_model_is_here_then_hears_all(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    tiny_whisper_dir: Path,
    media_dir: Path,
) -> None:
    """Default settings: faster-whisper ``base``, which cannot be downloaded here. Files
    are indexed without words and /health says why and what to set. With a model there,
    the files with sound are transcribed (once); with another engine, again."""
    talk = spoken(media_dir / "talk.mp4", [(2.0, BUDGET)], 8.0, video=True)
    mute = video_with_sound(media_dir / "mute.mp4", 2.0, sound=None)
    async with api_client(make_settings(), tiny_engine) as client:
        health = (await client.get("/health")).json()
        assert health["speech"] is None
        [off] = [e for e in health["engines_off"] if e["kind"] == "speech"]
        assert "Systran/faster-whisper-base" in off["reason"]
        assert "MSEARCH_SPEECH__MODEL (speech.model)" in off["reason"]
        assert "pocketsphinx" in off["reason"]  # what works offline
        files = await index_through_api(client, [talk, mute])
        assert files["talk.mp4"]["status"] == "indexed"
        assert "speech" not in files["talk.mp4"]["audio"]
        talk_id = files["talk.mp4"]["file_id"]

    whisper = {"model": str(tiny_whisper_dir / "ct2")}
    key = f"faster-whisper:{whisper['model']}"
    async with api_client(make_settings(speech=whisper), tiny_engine) as client:
        health = (await client.get("/health")).json()
        assert health["speech"] == {"engine": "faster-whisper", "transcribed_by": key}

        async def transcribed() -> dict[str, Any] | None:
            record = await _file(client, talk_id)
            speech = (record.get("audio") or {}).get("speech") or {}
            return record if speech.get("by") == key and record["status"] == "indexed" else None

        record = await wait_for(transcribed, limit_s=240)
        assert record["audio"]["speech"]["engine"] == "faster-whisper"
        assert record["audio"]["speech"]["segments"] > 0
        transcript = (await client.get(f"/api/v1/files/{talk_id}/transcript")).json()
        first = transcript["segments"][0]
        assert 1.0 <= first["start"] <= 8.0 and first["language"]
        # what it said (meaningless, but said) is found by its words, at its second
        word = next(w for s in transcript["segments"] for w in s["text"].split() if len(w) >= 3)
        reply = await client.post(
            "/api/v1/search/text", json={"query": word, "modalities": ["speech"]}
        )
        [hit] = reply.json()["results"]
        assert hit["file_id"] == talk_id and f"<mark>{word}</mark>" in hit["speech"]["text"]
        services = client.app.state.services  # type: ignore[attr-defined]
        assert await services.adapter.requeue_untranscribed(key) == 0  # heard once

    async with api_client(make_settings(speech={"engine": "pocketsphinx"}), tiny_engine) as c:

        async def by_sphinx() -> bool:
            speech = ((await _file(c, talk_id)).get("audio") or {}).get("speech") or {}
            return speech.get("by") == "pocketsphinx"

        await wait_for(by_sphinx, limit_s=240)
        transcript = (await c.get(f"/api/v1/files/{talk_id}/transcript")).json()
        assert [s["text"] for s in transcript["segments"]] == [BUDGET]


@pytest.mark.slow
def test_an_hour_is_transcribed_in_bounded_memory_with_progress(
    tiny_whisper_dir: Path, tmp_path: Path
) -> None:
    """Held whole, an hour of 16 kHz floats is 230 MB; read in blocks, a block is all
    there is. The one sentence, said at the end, is heard there."""
    import resource

    hour = spoken(tmp_path / "hour.flac", [(3590.0, BUDGET)], 3600.0)
    transcriber = WhisperTranscriber(SpeechSettings(model=str(tiny_whisper_dir / "ct2")))
    heard: list[float] = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    segments = list(transcriber.transcribe(hour, progress=heard.append))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 150, grown_mb
    assert segments and all(3589.0 <= s.start <= 3600.0 for s in segments), segments
    assert heard == sorted(heard) and heard[-1] == pytest.approx(3600.0, abs=0.5)
