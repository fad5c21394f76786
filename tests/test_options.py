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
    (["--sparse_depth_weight", "-1"], "--sparse_depth_weight -1.0: must be >= 0"),
    (["--silog_lambda", "1"], "--silog_lambda 1.0: must be in [0, 1)"),
    (["--lidar_beams", "16"], "--lidar_beams 16 thins the sparse depth supervision"),
    (["--lidar_beams", "12"], "invalid choice"),
    (["--dataset", "folder", "--velocity_weight", "1"], "--velocity_weight needs KITTI's oxts"),
    (["--frame_ids", "0", "--velocity_weight", "1"], "--velocity_weight needs temporal source frames"),
    (["--checkpoint_minutes", "-1"], "--checkpoint_minutes -1.0: must be >= 0 (0 = off)"),
    (["--checkpoint_steps", "-5"], "--checkpoint_steps -5: must be >= 0 (0 = off)"),
])
def test_bad_options_refused_with_one_line(argv, expected, capsys):
    err = parse_error(argv, capsys)
    assert err.startswith("train.py: error:") and expected in err


def test_resume_excludes_fine_tuning(tmp_path, capsys):
    err = parse_error(["--resume", str(tmp_path), "--load_weights_folder", str(tmp_path)], capsys)
    assert "exclude each other" in err


# The command-line surface of every script: exactly these flags (each one read by its script).
FLAGS = {
    "app": "--backend --camera --colormap --cpu_threads --device --host --infer_files_dir --load_weights_folder "
           "--max_image_pixels --max_upload_mb --max_video_frames --no-onednn --no-share --onednn --port "
           "--pred_depth_scale_factor --share --trt_precision --use_trt --focal_rescale --no-focal_rescale --eager",
    "calibrate": "--board --calibration --camera_id --format --image_size --images --import --left --out --overwrite "
                 "--rectify --rectify_alpha --right --square",
    "convert_checkpoint": "--load_weights_folder --models_to_convert --output_folder",
    "evaluate_pose": "--batch_size --data_path --device --eval_split --load_weights_folder --no-png --num_threads "
                     "--num_workers --png --save_pred_poses",
    "export": "--batch_coupled_filter --calib_count --calib_images --combined --format --gate_split --height "
              "--load_weights_folder --max_abs_rel_change --max_delta1_change --no-batch_coupled_filter --precision "
              "--save_dir --width "
              "--refine --no-refine --ddim_steps --strength",
    "export_gt_depth": "--data_path --output --source --split",
    "inference": "--backend --calib_path --color_path --colormap --cpu_threads --device --eval_mono --infer_files_dir "
                 "--no-onednn --onednn --output_dir --pred_depth_scale_factor --save_png16 --trt_precision --use_trt "
                 "--velo_filename --camera --save_ply --video_layout --camera_height "
                 "--focal_rescale --no-focal_rescale --temporal --no-temporal --save_raw",
    "precompute_depth_hints": "--data_path --dataset --filenames --height --img_ext --num_workers --overwrite "
                              "--save_path --split --width",
    "predict": "--batch_coupled_filter --calib_path --color_path --colormap --device --eval_mono --load_weights_folder "
               "--no-batch_coupled_filter --num_threads --output_dir --pred_depth_scale_factor "
               "--save_png16 --velo_filename --camera --save_ply --video_layout --camera_height "
               "--refine --no-refine --ddim_steps --strength --noise_seed --focal_rescale --no-focal_rescale "
               "--engine --address --num_actors --worker_cpus --batch_size --temporal --no-temporal --save_raw --eager",
    "serve": "--load_weights_folder --infer_files_dir --backend --onednn --no-onednn --use_trt --trt_precision "
             "--pred_depth_scale_factor --focal_rescale --no-focal_rescale --eager --device --host --port --max_upload_mb "
             "--max_image_pixels --address --replicas --max_replicas --worker_cpus --max_batch_size --batch_wait_ms "
             "--max_ongoing_requests --max_queued_requests",
    "synthetic": "--azimuth_step --drives --frames --height --img_ext --layout --out --overwrite --seed --width",
    "test": "--batch_coupled_filter --batch_size --data_path --dataset --device --eval_metric --eval_mono "
            "--eval_out_dir --eval_split --eval_stereo --ext_disp_to_eval --image_metrics --load_weights_folder --no-batch_coupled_filter --no-png "
            "--num_threads --num_workers --png --post_process --save_pred_disps --camera_height "
            "--refine --no-refine --ddim_steps --strength --noise_seed",
    "train": "--amp --batch_coupled_filter --batch_size --data_path --dataset --depth_hint_path --device "
             "--disparity_smoothness --frame_ids --height --learning_rate --load_weights_folder --log_dir "
             "--log_frequency --lr_decay --max_bad_steps --max_depth --max_steps --min_depth --model_name "
             "--models_to_load --no-amp --no-batch_coupled_filter --no-png --no-use_depth_hints --no-use_stereo "
             "--num_epochs --num_layers --num_log_images --num_threads --num_workers --png --resize_on_device --resume --save_frequency "
             "--scales --scheduler_step_size --seed --skip_missing --split --use_depth_hints --use_stereo "
             "--val_max_images --weights_init --width --sparse_depth_weight --sparse_depth_loss --silog_lambda "
             "--lidar_beams --velocity_weight --checkpoint_steps --checkpoint_minutes --qat",
    "train_refine": "--batch_coupled_filter --batch_size --cond_channels --data_path --dataset --ddim_steps "
                    "--depth_mapping --detach_ddim_target --device --freeze_mlda --grad_steps --height --learning_rate "
                    "--load_weights_folder --log_dir --log_frequency --lr_decay --max_bad_steps --max_steps --model_name "
                    "--no-batch_coupled_filter --no-detach_ddim_target --no-freeze_mlda --no-paper_output_act --no-png "
                    "--noise_seed --num_epochs --num_threads --num_workers --paper_output_act --pixel_loss --png "
                    "--resume --seed --split --strength --w_ddim --warmup_steps --width --checkpoint_steps "
                    "--checkpoint_minutes --val_max_images",
}


def test_every_option_is_defined_once():
    names = [name for _, table in options.GROUPS.values() for name in table]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"defined in more than one group: {twice}"
    # a script's replacement keywords only name options the script has
    for script, overrides in options.SCRIPT_DEFAULTS.items():
        used = {n for _, group_names in options._selected(options.SCRIPT_GROUPS[script]) for n in group_names}
        assert set(overrides) <= used, (script, set(overrides) - used)


@pytest.mark.parametrize("script", sorted(FLAGS))
def test_each_script_keeps_its_flags(script):
    parser = options.build_parser(script)
    flags = sorted(f for action in parser._actions for f in action.option_strings if f not in ("-h", "--help"))
    assert flags == sorted(FLAGS[script].split())
    usage = parser.format_help()   # --help works and shows every flag
    assert all(flag in usage for flag in FLAGS[script].split())


def test_shared_options_take_each_script_s_defaults():
    defaults = {script: {a.dest: a.default for a in options.build_parser(script)._actions} for script in FLAGS}
    assert (defaults["train"]["data_path"], defaults["evaluate_pose"]["data_path"]) == ("kitti_data", "kitti_odom")
    assert (defaults["train"]["png"], defaults["test"]["png"], defaults["evaluate_pose"]["png"]) == (False, False, True)
    assert (defaults["train"]["batch_size"], defaults["test"]["batch_size"], defaults["evaluate_pose"]["batch_size"]) \
        == (12, 16, 16)
    assert (defaults["train"]["height"], defaults["export"]["height"], defaults["precompute_depth_hints"]["height"],
            defaults["synthetic"]["height"]) == (192, None, 320, 188)
    assert (defaults["train"]["device"], defaults["inference"]["device"]) == ("auto", "cpu")
    assert (defaults["train"]["split"], defaults["export_gt_depth"]["split"]) == ("eigen_zhou", "eigen")
    assert (defaults["test"]["eval_split"], defaults["evaluate_pose"]["eval_split"]) == ("eigen", "odom_9")
    help_text = options.build_parser("export_gt_depth").format_help()
    assert "--data_path DATA_PATH" in help_text and "KITTI raw root" in help_text


@pytest.mark.parametrize("script, argv", [
    ("train", ["--height", "96", "--width", "48"]),
    ("export", ["--load_weights_folder", ".", "--save_dir", "x", "--width", "48"]),
])
def test_one_network_size_rule_for_train_and_export(script, argv, capsys):
    with pytest.raises(SystemExit):
        options.parse(script, argv)
    err = capsys.readouterr().err
    assert err.startswith(f"{script}.py: error: --width 48: must be a multiple of 32 and at least 64")
    assert options.network_size_error("width", 96) is None and options.network_size_error("width", 100)


def test_mono_and_stereo_scaling_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        options.parse("test", ["--ext_disp_to_eval", __file__, "--eval_mono", "--eval_stereo"])
    assert "not allowed with argument" in capsys.readouterr().err
    # sizes that are not network inputs (the synthetic images) need not be multiples of 32
    assert options.parse("synthetic", ["--width", "100", "--height", "50"]).width == 100


def test_one_line_help_and_the_rest_in_docs():
    """--help says each option in one short line (no sources such as M2 there); docs/options.md says the
    rest, and names every option."""
    import os
    import re
    texts = [kw.get("help") or "" for _, table in options.GROUPS.values() for kw in table.values()]
    texts += [kw.get("help") or "" for table in options.SCRIPT_DEFAULTS.values() for kw in table.values()]
    for text in texts:
        assert "\n" not in text and len(text) <= 90, text
        assert not re.search(r"\b(M2|DH|orig|PM)\b", text), text
    docs = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "options.md")).read()
    missing = [n for _, table in options.GROUPS.values() for n in table if f"`--{n}`" not in docs]
    assert not missing, f"not in docs/options.md: {missing}"
    assert "(default: 640)" in options.build_parser("train").format_help()   # the formatter adds defaults


def test_checks_belong_to_groups_and_scripts():
    assert set(options.GROUP_CHECKS) <= set(options.GROUPS) and set(options.SCRIPT_CHECKS) <= set(options.SCRIPT_GROUPS)
    # a group's check runs for a script with only part of the group: test.py's --batch_size
    with pytest.raises(SystemExit):
        options.parse("test", ["--ext_disp_to_eval", __file__, "--batch_size", "0"])
