"""A saved model's settings are typed and versioned: they round-trip through JSON, folders saved
before they had a version (``fixtures/settings_v1.json``: what rewardlab wrote into config.json
for every kind, from a run of the code as it was, commit 1351589) load and score exactly as the
same weights saved now, and a folder from a newer rewardlab is refused in one line."""

import json
import shutil
from pathlib import Path

import pytest

from rewardlab import RewardModel, kinds
from rewardlab.config import ModelSettings, RewardStats
from rewardlab.errors import ModelError
from rewardlab.inference.rows import score_rows

V1 = json.loads((Path(__file__).parent / "fixtures" / "settings_v1.json").read_text())


@pytest.mark.parametrize("name", sorted(V1))
def test_a_folder_of_the_version_1_format_loads_and_scores_as_today(kind_models, name, tmp_path):
    folder, data = kind_models[name]
    old = tmp_path / "v1"
    shutil.copytree(folder, old)
    config = json.loads((old / "config.json").read_text())
    today = ModelSettings.from_dict(config["rewardlab"])
    config["rewardlab"] = {**V1[name], "backbone": today.backbone}
    config["rewardlab"]["objective"] = {**V1[name]["objective"], **{k: v for k, v in today.objective.items()
                                                                    if k == "genrm_rationale_tokens"}}  # the test's
    (old / "config.json").write_text(json.dumps(config))
    before, now = RewardModel.from_pretrained(str(old)), RewardModel.from_pretrained(folder)
    for field in ("kind", "head", "num_labels", "max_length", "extras", "ensemble_size", "backbone"):
        assert getattr(before.settings, field) == getattr(now.settings, field), field
    # Options added since (ODIN's, RRM's) are absent from a v1 folder and read as their defaults.
    assert kinds.saved_options(before.rules, before.settings) == kinds.saved_options(now.rules, now.settings)
    if name == "preference":
        assert isinstance(before.settings.reward_stats, RewardStats) and before.settings.reward_stats.n == 16
    rows = [json.loads(x) for x in open(data)]
    assert score_rows(before, rows, "rows")[0] == score_rows(now, rows, "rows")[0]


def test_settings_round_trip_through_json_and_a_newer_version_is_refused():
    s = ModelSettings(kind="prm", objective={"aggregate": "prod"}, head="token", extras={"x": [1, 2]},
                      reward_stats=RewardStats(0.5, 2.0, 10), merged={"merge_weights": [0.5, 0.5]})
    assert ModelSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.to_dict()["version"] == 2 and ModelSettings.from_dict(None) == ModelSettings()
    with pytest.raises(ModelError, match="^m: its settings have version 3; .*newer rewardlab"):
        ModelSettings.from_dict({**s.to_dict(), "version": 3}, "m")
    with pytest.raises(ModelError, match="^m: unknown settings colour"):
        ModelSettings.from_dict({**s.to_dict(), "colour": "red"}, "m")
    with pytest.raises(Exception):
        s.kind = "orm"  # frozen: nothing edits a loaded model's settings
