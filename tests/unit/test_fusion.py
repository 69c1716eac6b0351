"""Engines side by side, as pure logic: which engine embeds and reads what, and how their
rankings merge (reciprocal-rank fusion)."""

from __future__ import annotations

import pytest
from support.engines import HashEngine

from msearch.embedding.registry import EngineKind, EngineRegistry, QueryKind
from msearch.search import RRF_K, fuse_by_rank
from msearch.store.adapter import StoredHit
from msearch.store.records import FileRecord, SceneRecord


def _hit(file_id: str, score: float, kind: str, scene: int | None = None) -> StoredHit:
    found = SceneRecord(scene, scene, scene + 1.0, scene + 0.5) if scene is not None else None
    return StoredHit(FileRecord(id=file_id, path=f"/m/{file_id}", folder="/m"), score, found, kind)


def test_rank_fusion_rewards_agreement_and_keeps_each_hits_own_score_and_kind() -> None:
    visual = [_hit("a", 0.9, "visual"), _hit("b", 0.8, "visual"), _hit("c", 0.7, "visual")]
    audio = [_hit("c", 0.31, "audio"), _hit("d", 0.30, "audio"), _hit("a", 0.29, "audio")]
    fused = fuse_by_rank([visual, audio], by_file=True)
    # a: ranks 1 and 3; c: ranks 3 and 1 -> tied, the better single rank (a's 1st... and
    # c's 1st) ties too, so insertion order decides; b and d: found once, 2nd each
    assert [h.file.id for h in fused] == ["a", "c", "b", "d"]
    assert fused[0].rank_score == round(1 / (RRF_K + 1) + 1 / (RRF_K + 3), 6)
    by_id = {h.file.id: h for h in fused}
    # shown as the engine that ranked it best found it, with that model's own score
    assert (by_id["c"].kind, by_id["c"].score) == ("audio", 0.31)
    assert (by_id["a"].kind, by_id["a"].score) == ("visual", 0.9)
    assert (by_id["d"].kind, by_id["d"].score) == ("audio", 0.30)


def test_rank_fusion_keeps_scenes_apart_unless_grouped_by_file() -> None:
    first = [_hit("v", 0.9, "visual", scene=0), _hit("v", 0.8, "visual", scene=2)]
    second = [_hit("v", 0.5, "audio", scene=2)]
    assert [h.scene.index for h in fuse_by_rank([first, second], by_file=False) if h.scene] == [
        2,
        0,
    ]
    assert len(fuse_by_rank([first, second], by_file=True)) == 1


async def test_registry_defaults_and_overrides() -> None:
    visual, other = HashEngine(), HashEngine(dim=16)
    registry = EngineRegistry({EngineKind.VISUAL: visual, EngineKind.AUDIO: other})
    assert [k for k, _ in registry.embedding("image")] == [EngineKind.VISUAL]
    assert [k for k, _ in registry.reading(QueryKind.TEXT)] == ["visual", "audio"]
    assert [k for k, _ in registry.reading(QueryKind.IMAGE)] == ["visual"]
    widened = EngineRegistry(
        {EngineKind.VISUAL: visual, EngineKind.AUDIO: other},
        embeds={EngineKind.AUDIO: frozenset({"video"})},
    )
    assert [k for k, _ in widened.embedding("video")] == ["visual", "audio"]
    assert [k for k, _ in widened.for_queries().embedding("video")] == ["visual", "audio"]
    with pytest.raises(KeyError, match="no speech engine"):
        registry.get(EngineKind.SPEECH)
    await registry.start()
    assert visual.started and other.started
    await registry.stop()
    assert not visual.started and not other.started


def test_a_pages_looks_and_words_fuse_into_one_result_showing_the_words() -> None:
    from msearch.store.records import Passage

    def page(number: int, kind: str, marked: str | None = None) -> StoredHit:
        hit = _hit("doc", 0.5, kind)
        hit.page, hit.marked = number, marked
        if marked is not None:
            hit.spoken = Passage("page", number - 1, number, number, marked)
        return hit

    looks = [page(7, "visual"), page(2, "visual")]  # a tie at rank 1: the looks lead
    words = [page(7, "text", "the <mark>budget</mark> meeting")]
    fused = fuse_by_rank([looks, words], by_file=False)
    assert [(h.page, h.kind) for h in fused] == [(7, "visual"), (2, "visual")]
    assert fused[0].marked == "the <mark>budget</mark> meeting"
    assert fused[1].marked is None and [m.kind for m in fused[0].more] == ["text"]
