"""Run by test_distributed.test_sharded_checkpoint_round_trip under torchrun (2 gloo processes).

Shards a tiny reward model with torch's fully_shard, trains 2 steps, saves a checkpoint through
rewardlab's gather_state/save_checkpoint, loads it into a freshly sharded model, and checks that
one more step from each gives the same loss and weights.
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from rewardlab.models.batch import PaddedBatch
from rewardlab.training.checkpoint import gather_state, load_checkpoint, save_checkpoint
from rewardlab.losses import bradley_terry
from rewardlab.models.backbone import disable_dropout, load_backbone
from rewardlab.models.heads import completion_rewards as PairRewards
from tests.conftest import PAIRS


def build(folder, mesh):
    torch.manual_seed(0)
    hf, tok = load_backbone(folder)
    disable_dropout(hf)
    for layer in hf.model.layers:
        fully_shard(layer, mesh=mesh)
    model = PairRewards(hf, "blocks")
    fully_shard(model, mesh=mesh)
    return model, hf, tok, torch.optim.AdamW(model.parameters(), lr=1e-3)


def step(model, tok, optimizer):
    texts = [p["prompt"] + c + tok.eos_token for p in PAIRS for c in (p["chosen"], p["rejected"])]
    enc = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    rewards = model(PaddedBatch(enc["input_ids"], enc["attention_mask"])).view(-1, 2)
    loss, _ = bradley_terry(rewards[:, 0], rewards[:, 1])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def main():
    folder, out = sys.argv[1], Path(sys.argv[2])
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    model, hf, tok, opt = build(folder, mesh)
    for _ in range(2):
        step(model, tok, opt)
    weights, opt_state = gather_state(model, opt, sharded=True)
    if dist.get_rank() == 0:
        save_checkpoint(str(out), 2, hf, tok, (weights, opt_state), {"config": {}})
        whole = all(tuple(weights["model." + k].shape) == tuple(v.shape) for k, v in hf.state_dict().items()
                    if "model." + k in weights)
    dist.barrier()
    loss_a = step(model, tok, opt)
    after_a = gather_state(model, None, sharded=True)[0]

    model2, hf2, tok2, opt2 = build(folder, mesh)
    torch.manual_seed(123)  # the checkpoint must restore everything that matters
    load_checkpoint(out / "checkpoints" / "step-2", model2, hf2, opt2)
    loss_b = step(model2, tok2, opt2)
    after_b = gather_state(model2, None, sharded=True)[0]
    if dist.get_rank() == 0:
        diff = max((after_a[k] - after_b[k]).abs().max().item() for k in after_a)
        (out / "result.json").write_text(json.dumps({"whole_shapes": whole, "loss_diff": abs(loss_a - loss_b),
                                                     "weight_diff": diff}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
