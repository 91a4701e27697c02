"""Policy protocol errors, the scheduler's state round trip, and the command line."""

import numpy as np
import pytest

from bandit_tune import PolicyError, simulate
from bandit_tune.cli import main
from bandit_tune.policies import ArmPolicy, Decision, Hyperband

CURVES = np.linspace(0.1, 1.0, 4 * 5).reshape(4, 5)


class Maybe(ArmPolicy):
    def on_result(self, arm_id, step, score):
        return "maybe"


class Raises(ArmPolicy):
    def on_result(self, arm_id, step, score):
        raise ZeroDivisionError("boom")


class ResumesAStranger(ArmPolicy):
    def on_result(self, arm_id, step, score):
        return Decision.PAUSE

    def choose_arm_to_resume(self, paused):
        return "nobody" if paused else None


@pytest.mark.parametrize(
    "policy,pattern",
    [
        (Maybe(), r"Maybe\.on_result returned 'maybe' for arm 'arm_00000'.*Decision"),
        (Raises(), r"Raises\.on_result raised ZeroDivisionError for arm 'arm_00000': boom"),
        (
            ResumesAStranger(),
            r"ResumesAStranger\.choose_arm_to_resume returned 'nobody'.*not a paused",
        ),
    ],
)
def test_broken_policies_are_named_with_hook_and_arm(policy, pattern):
    with pytest.raises(PolicyError, match=pattern):
        simulate(policy, CURVES)


def test_plain_strings_are_accepted_as_decisions():
    class Strings(ArmPolicy):
        def on_result(self, arm_id, step, score):
            return "CONTINUE"

    assert simulate(Strings(), CURVES).epochs_used == CURVES.size


def test_scheduler_state_round_trips_through_json(tmp_path):
    from bandit_tune import BanditScheduler

    first = BanditScheduler(Hyperband(9), metric="val_loss", mode="min")
    simulate(first.policy, CURVES)
    first.runner.arms.add("a", {"units": 8})
    first.runner.arms["a"].decisions.append((1, -0.5, "PAUSE"))
    path = tmp_path / "scheduler.json"
    first.save(str(path))
    second = BanditScheduler(Hyperband(9), metric="val_loss", mode="min")
    second.restore(str(path))
    assert second.policy.state_dict() == first.policy.state_dict()
    assert second.history == first.history == {"a": [(1, -0.5, "PAUSE")]}
    assert second.configs == {"a": {"units": 8}}


def test_scheduler_refuses_what_is_not_a_policy():
    from bandit_tune import BanditScheduler

    with pytest.raises(TypeError, match="ArmPolicy"):
        BanditScheduler(object())
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        BanditScheduler(Hyperband(9), mode="maximize")


def test_cli_plan_prints_the_brackets(capsys):
    assert main(["plan", "--max-epochs", "81", "--eta", "3"]) == 0
    out = capsys.readouterr().out
    assert "34 arms x   3 ep" in out and "one pass: 143 arms, 1581 epochs" in out


def test_cli_reports_bad_values_without_a_traceback(capsys):
    assert main(["plan", "--eta", "1"]) == 2
    assert "eta must be a number >= 2" in capsys.readouterr().err


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    assert "bandit-tune plan --max-epochs 81" in capsys.readouterr().out


def _fake_search(tmp_path):
    import json

    project = tmp_path / "proj"
    project.mkdir()
    arms = {
        "objective": ["val_accuracy", "max"],
        "rungs": [1, 3],
        "results": {
            "trial_a": [
                {"epoch": 1, "val_accuracy": 0.5},
                {"epoch": 2, "val_accuracy": 0.7},
                {"epoch": 3, "val_accuracy": 0.8},
            ],
            "trial_b": [{"epoch": 1, "val_accuracy": 0.3}],
        },
        "decisions": {
            "trial_a": [[1, 0.5, "CONTINUE"], [2, 0.7, "CONTINUE"], [3, 0.8, "STOP"]],
            "trial_b": [[1, 0.3, "STOP"]],
        },
    }
    (project / "arms.json").write_text(json.dumps(arms))
    return project


def test_cli_report_prints_the_leaderboard_and_writes_the_plot(tmp_path, capsys):
    project = _fake_search(tmp_path)
    assert main(["report", str(project)]) == 0
    out = capsys.readouterr().out
    assert "2 arms, 4 epochs" in out
    lines = out.splitlines()
    assert lines[2].split()[0] == "trial_a" and lines[3].split()[0] == "trial_b"
    png = project / "curves.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_report_on_a_folder_without_a_search(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no arms.json" in capsys.readouterr().err


def test_cli_report_reads_an_interrupted_search_from_its_snapshot(tmp_path, capsys):
    import json

    from bandit_tune.driver import Runner

    runner = Runner(Hyperband(3), metric="val_accuracy", mode="max")
    for arm, values in {"a": [0.5, 0.7], "b": [0.3]}.items():
        runner.add_arm(arm, {"units": 8})
        for step, value in enumerate(values, 1):
            runner.report(arm, step, value, {"epoch": step, "val_accuracy": value})
    project = tmp_path / "p"
    project.mkdir()
    (project / "state.json").write_text(json.dumps(runner.state()))
    assert main(["report", str(project)]) == 0
    out = capsys.readouterr().out
    assert "interrupted search" in out and "2 arms, 3 epochs" in out
    assert (project / "curves.png").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("def build_model(hp)\n    return None\n", "has a syntax error at line 1"),
        ("import not_a_module_anywhere\n", "failed while loading: ModuleNotFoundError"),
    ],
    ids=["syntax error", "import error inside"],
)
def test_cli_run_with_a_broken_model_file_says_so_and_exits_2(tmp_path, capsys, content, message):
    model = tmp_path / "model.py"
    model.write_text(content)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2)), y=np.zeros(4))
    assert main(["run", f"{model}:build_model", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bandit-tune: error:") and message in err and "Traceback" not in err


def test_cli_run_with_a_missing_module_or_a_truncated_data_file_exits_2(tmp_path, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((40, 2)), y=np.zeros(40))
    assert main(["run", "no_such_package.models:build", "--data", str(data)]) == 2
    assert "no module named 'no_such_package'" in capsys.readouterr().err
    model = tmp_path / "model.py"
    model.write_text("def build_model(hp):\n    return None\n")
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(data.read_bytes()[:50])
    assert main(["run", f"{model}:build_model", "--data", str(truncated)]) == 2
    assert "is not a readable .npz" in capsys.readouterr().err
