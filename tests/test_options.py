"""options.py: defaults, real booleans, presets and one-line refusals of bad values."""
import pytest

import options


def parse_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        options.parse("train", argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, "error must be one line"
    return err


def test_defaults_follow_monodepth2_and_depth_hints():
    opt = options.parse("train", [])
    assert (opt.batch_size, opt.learning_rate, opt.num_epochs, opt.scheduler_step_size, opt.lr_decay) == \
        (12, 1e-4, 20, 15, 0.1)
    assert (opt.height, opt.width, opt.num_layers, opt.scales) == (192, 640, 18, [0, 1, 2, 3])
    assert (opt.min_depth, opt.max_depth, opt.disparity_smoothness) == (0.1, 100.0, 1e-3)
    assert opt.frame_ids == [0, -1, 1] and opt.use_stereo is True and opt.use_depth_hints is True
    assert opt.depth_hint_path.endswith("depth_hints")


def test_booleans_switch_off_and_on():
    opt = options.parse("train", ["--no-use_stereo", "--no-use_depth_hints", "--amp"])
    assert opt.use_stereo is False and opt.use_depth_hints is False and opt.amp is True


def test_synthetic_preset_is_overridden_by_explicit_flags():
    opt = options.parse("train", ["--dataset", "synthetic", "--batch_size", "3"])
    preset = options.PRESETS["synthetic"]
    assert opt.height == preset["height"] and opt.num_epochs == preset["num_epochs"]
    assert opt.batch_size == 3


def test_group_subset_builds_a_smaller_parser():
    parser = options.build_parser(groups=("model",))
    ns = parser.parse_args(["--height", "96"])
    assert ns.height == 96 and not hasattr(ns, "batch_size")


@pytest.mark.parametrize("argv, expected", [
    (["--height", "100"], "--height 100: must be a multiple of 32"),
    (["--width", "32"], "--width 32: must be a multiple of 32 and at least 64"),
    (["--frame_ids", "-1", "0", "1"], "must start with the target frame 0"),
    (["--frame_ids", "0", "1", "1"], "frame ids must be distinct"),
    (["--no-use_stereo"], "--use_depth_hints needs stereo"),
    (["--frame_ids", "0", "--no-use_stereo", "--no-use_depth_hints"], "leaves no source frame"),
    (["--scales", "0", "4"], "--scales 0 4: must be distinct values from 0 1 2 3"),
    (["--min_depth", "10", "--max_depth", "1"], "need 0 < min_depth < max_depth"),
    (["--batch_size", "0"], "--batch_size 0: must be at least 1"),
    (["--learning_rate", "-1"], "--learning_rate -1.0: must be > 0"),
    (["--weights_init", "/no/such.pdparams"], "not 'pretrained', 'scratch' or an existing .pdparams"),
    (["--resume", "/no/such/folder"], "--resume /no/such/folder: no such folder"),
    (["--load_weights_folder", "/no/such/folder"], "--load_weights_folder /no/such/folder: no such folder"),
    (["--num_layers", "20"], "invalid choice"),
])
def test_bad_options_refused_with_one_line(argv, expected, capsys):
    err = parse_error(argv, capsys)
    assert err.startswith("train.py: error:") and expected in err


def test_resume_excludes_fine_tuning(tmp_path, capsys):
    err = parse_error(["--resume", str(tmp_path), "--load_weights_folder", str(tmp_path)], capsys)
    assert "exclude each other" in err
