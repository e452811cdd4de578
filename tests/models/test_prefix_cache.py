"""The prefix cache (models/prefix_cache.py) and how texts are grouped by common prefix."""

import pytest
import torch

from rewardlab.data import Text
from rewardlab.inference import RewardModel
from rewardlab.models.backbone import load_backbone
from rewardlab.models.prefix_cache import PrefixCache
from rewardlab.models.layout import group_by_prefix


def _layers(n: int, value: float = 0.0):
    return [(torch.full((1, n, 2), value), torch.full((1, n, 2), value))]  # one layer, one head, dim 2


def test_lookup_finds_the_longest_shared_start_in_whole_blocks_or_more():
    cache = PrefixCache(max_bytes=2**20, block=4)
    cache.add(list(range(10)), _layers(10))
    entry, n = cache.lookup(list(range(7)) + [99, 98])
    assert entry is not None and n == 7  # past the last whole block (4), counted token by token
    assert cache.lookup([0, 1, 2, 99]) == (None, 0)  # shares less than a block
    assert cache.lookup([5, 6, 7, 8, 9]) == (None, 0)  # a shared middle is not a shared start
    assert cache.lookup(list(range(12)))[1] == 10  # the whole entry, and no further
    assert (cache.hits, cache.reused_tokens) == (2, 17)
    cache.add([1, 2], _layers(2))  # shorter than a block: not kept
    assert len(cache) == 1


def test_least_recently_used_prefixes_are_evicted_beyond_the_memory_budget():
    one = 2 * 8 * 2 * 4  # bytes of an 8-token entry: keys and values, 2 floats per token
    cache = PrefixCache(max_bytes=2 * one, block=4)
    a, b, c = [list(range(s, s + 8)) for s in (0, 100, 200)]
    cache.add(a, _layers(8))
    cache.add(b, _layers(8))
    assert cache.lookup(a)[1] == 8  # a is now the most recently used
    cache.add(c, _layers(8))
    assert cache.lookup(b) == (None, 0) and cache.lookup(a)[1] == 8 and cache.lookup(c)[1] == 8
    assert cache.bytes == 2 * one and cache.evicted == 1
    cache.add(list(range(300, 364)), _layers(64))  # larger than the whole budget: not kept
    assert len(cache) == 2


def test_an_evicted_entry_leaves_the_others_that_share_its_blocks_reachable():
    one = 2 * 12 * 2 * 4
    cache = PrefixCache(max_bytes=2 * one, block=4)
    p = list(range(8))
    a, b, c = p + [100, 101, 102, 103], p + [200, 201, 202, 203], list(range(300, 312))
    cache.add(a, _layers(12))
    cache.add(b, _layers(12))  # b is now the newest holder of p's blocks
    assert cache.lookup(a)[1] == 12
    cache.add(c, _layers(12))  # evicts b
    assert cache.lookup(p + [7, 7])[1] == 8 and cache.lookup(a)[1] == 12  # a still answers for p
    cache.add(a, _layers(12))  # already there: only marked as recently used
    assert len(cache) == 2 and cache.bytes == 2 * one


def test_a_prefix_that_extends_a_cached_one_replaces_it():
    cache = PrefixCache(max_bytes=2**20, block=4)
    cache.add(list(range(8)), _layers(8))
    entry, n = cache.lookup(list(range(12)))
    assert n == 8
    cache.add(list(range(12)), _layers(12), extends=entry)
    assert len(cache) == 1 and cache.lookup(list(range(8)))[1] == 8 and cache.bytes == 2 * 12 * 2 * 4


def test_grouping_does_not_merge_prompts_that_only_begin_alike():
    """Two prompts starting with the same 8 tokens (as every HH prompt starts with "Human:"),
    two samples each: one group of four would share 8 tokens; two groups share 28 each."""
    start = list(range(8))
    a, b = start + list(range(100, 120)), start + list(range(200, 220))
    seqs = [a + [1], b + [2], a + [3], b + [4]]
    assert sorted(group_by_prefix(seqs, min_shared=8)) == [[0, 2], [1, 3]]
    assert group_by_prefix([[5, 6], [7, 8]], min_shared=1) == [[0], [1]]


@pytest.mark.parametrize("name, budget", [("tiny_llama", 2**24), ("tiny_llama_wide", 2**24), ("tiny_llama", 10000)])
def test_rewards_with_the_cache_equal_rewards_alone(name, budget, request):
    """Samples of one prompt scored over several calls (a batch boundary among them, samples
    mixed with other prompts', a text repeated, a text that is the prompt alone, a text sharing
    nothing) get exactly the rewards each gets alone, and later calls process fewer tokens.
    Both models have grouped-query attention (keys and values repeated to the query heads: 4
    heads on 2, 2 on 1); a budget of 10000 bytes holds one prompt (256 bytes a token), so entries are evicted."""
    model, tok = load_backbone(request.getfixturevalue(name))
    torch.nn.init.normal_(model.score.weight, std=1.0)
    rm = RewardModel(model, tok, 256, "cpu")
    p1 = "\n\nHuman: Tell me a joke about cats, please, and make it short and kind to the cat.\n\nAssistant:"
    p2 = "\n\nHuman: Which is larger, the Pacific Ocean or the Atlantic Ocean, and by how much?\n\nAssistant:"
    calls = [[p1 + " Why?", p1 + " Cats sleep a lot."],
             [p1 + " No.", p2 + " The Pacific.", p1 + " Why?"],
             [p2 + " The Pacific, by far.", p1, "Something else entirely, with its own words."],
             [p2 + " The Atlantic."]]
    alone = {t: rm.score_texts([Text("", t)], share_prefixes=False)[0][0] for c in calls for t in c}
    cache = PrefixCache(budget)
    for i, call in enumerate(calls):
        got, counts = rm.score_texts([Text("", t) for t in call], cache=cache)
        torch.testing.assert_close(torch.tensor(got), torch.tensor([alone[t] for t in call]), rtol=1e-5, atol=1e-5)
        if i and budget > 10000:
            assert counts.processed < counts.sent, i  # cached prompts were not encoded again
    assert cache.hits >= (4 if budget > 10000 else 1) and cache.bytes <= budget
    assert budget > 10000 or cache.evicted > 0


def test_two_threads_share_one_cache_and_get_exact_rewards(tiny_llama):
    """A served model's cache can be reached from two threads (the server's model thread and a
    caller's own ``score``): lookups and additions stay consistent and rewards exact."""
    import threading

    model, tok = load_backbone(tiny_llama)
    torch.nn.init.normal_(model.score.weight, std=1.0)
    rm = RewardModel(model, tok, 256, "cpu")
    prompts = [f"\n\nHuman: Question number {i}: how many legs does a spider have, and why?\n\nAssistant:"
               for i in range(4)]
    texts = [p + r for p in prompts for r in (" Eight.", " Eight legs, like every arachnid.", " Six?")]
    alone = [rm.score_texts([Text("", t)], share_prefixes=False)[0][0] for t in texts]
    cache = PrefixCache(2**24)
    got: dict[int, list] = {}

    def work(k: int) -> None:
        order = texts if k == 0 else texts[::-1]
        for _ in range(3):
            got.setdefault(k, []).append(dict(zip(order, (rm.score_texts([Text("", t)], cache=cache)[0][0] for t in order))))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rounds in got.values():
        for rewards in rounds:
            torch.testing.assert_close(torch.tensor([rewards[t] for t in texts]), torch.tensor(alone),
                                       rtol=1e-5, atol=1e-5)
    assert cache.hits > 0


def test_room_is_unbounded_until_a_token_has_a_known_cost():
    cache = PrefixCache(max_bytes=1000, block=4)
    assert cache.room_tokens() == float("inf")
    cache.add(list(range(300)), _layers(300))  # 16 bytes a token: too large to keep, but now priced
    assert len(cache) == 0 and cache.room_tokens() == 1000 // 16
