"""Depth from your own photos and videos.

    python predict.py --load_weights_folder WEIGHTS --color_path photo.jpg [--output_dir OUT]
    python predict.py --load_weights_folder WEIGHTS --color_path folder/ --save_png16
    python predict.py --load_weights_folder WEIGHTS --color_path drive.mp4 [--video_layout stacked]
    python predict.py --load_weights_folder WEIGHTS --color_path photo.jpg --save_ply [--camera camera.json]
    python predict.py --load_weights_folder WEIGHTS --color_path folder/ --engine ray [--num_actors N]

For each image: <stem>_disp.npy (sigmoid disparity at network size), <stem>_disp.jpeg (colour-mapped
disparity at the photo's size), <stem>_depth.npy and with --save_png16 <stem>_depth.png; see
utils/io/image_io.py. A video (anything OpenCV reads) is streamed frame by frame: the same files per frame
in <output_dir>/<stem>/ (<stem>_000000_disp.npy, ...) and <stem>_depth.mp4 (.avi for an .avi), the frames
beside their colour-mapped disparity at the input's fps (utils/io/video.py). --save_ply adds
<stem>_points.ply, the depth back-projected into a coloured point cloud with --camera camera.json (scaled
to a resized photo of the same aspect ratio; another aspect ratio is refused), else the photo's EXIF focal
length (utils/cameras/exif.py; said per photo), else the training camera scaled to the photo (opt.json
"camera", else KITTI's; said once). Metric depth on a photo whose focal length (--camera or EXIF) differs
from the training camera's is multiplied by fx_photo / fx_train at one width (utils/cameras/photo.py; said
per photo and recorded in <stem>_depth.json; --no-focal_rescale turns it off).
Depth is in metres (5.4 x disp_to_depth) for KITTI stereo-trained weights (opt.json use_stereo, or a
folder without opt.json: the original MLDA-Net layout, trained mono+stereo), in metres with factor 1
where opt.json records "metric": true (the folder dataset's stereo with its real baseline) and relative
(factor 1, said once) otherwise, as Monodepth2; --pred_depth_scale_factor F always wins. --camera_height H
(metres; KITTI 1.65) gives relative depth an approximate metric scale per photo from the road plane in its
lower part (utils/geometry/ground_plane.py; the camera as for --save_ply; refused for metric weights, videos and
with --pred_depth_scale_factor; a photo without a road plane is skipped and listed). Default output
folder: outputs/predict/<input name>/ (the photo's or video's stem, or the folder's name; never inside the
input); files of an earlier run are replaced, and the count is said. Two inputs with the same stem (a.jpg, a.png) get the extension appended
(a_jpg_disp.npy, a_png_disp.npy). Unreadable images are reported and skipped; the exit status is non-zero
if any was. An unreadable video, an empty folder or a photo that --camera does not fit: one line, non-zero
exit, nothing written for it. --output_dir naming a file is refused. --engine ray writes the same files of
a folder's photos from a Ray Data actor pool, skipping photos whose files exist (docs/serving.md).

The network runs compiled: exported once per weights folder and input size into a cache ($MLDA_CACHE_DIR,
else ~/.cache/mlda-net; deployment/compiled.py) and run on ONNX Runtime (else Paddle Inference with oneDNN),
agreeing with the eager network to about 1e-4 (bench/RESULTS.md); the first run says how long the build
took, later runs that they used the cache. --eager runs Paddle's dynamic graph instead (several times slower on a CPU).

Python API: deployment.Predictor (deployment/predictor.py), the class this script runs.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import sys

import options
options.check_before_imports("predict", __name__)
import networks
from deployment import Predictor
from utils.geometry import provenance
from utils.io import photo_loop
from utils.io.output_options import OutputOptions
from utils.system import RuntimeSetupError, setup_runtime


def main(argv=None):
    opt = options.parse("predict", argv)
    try:
        setup_runtime(opt.device, opt.num_threads)
    except RuntimeSetupError as e:
        sys.exit(f"predict.py: error: {e}")
    try:
        paths = photo_loop.list_inputs(opt.color_path, opt.velo_filename, opt.calib_path)
        predictor = Predictor(opt.load_weights_folder, opt.pred_depth_scale_factor, opt.batch_coupled_filter,
                              refine=opt.refine, ddim_steps=opt.ddim_steps, strength=opt.strength,
                              noise_seed=opt.noise_seed, focal_rescale=opt.focal_rescale, eager=opt.eager,
                              num_threads=opt.num_threads)
        photo_loop.ground_setup(opt.camera_height, predictor.metric)
        camera = photo_loop.camera_choice(opt.camera, predictor.trained_camera, opt.save_ply, opt.camera_height)
        focal = photo_loop.focal_setup(predictor.focal_rescale, predictor.metric, opt.camera,
                                       predictor.trained_camera, opt.save_ply, opt.camera_height)
    except (photo_loop.InputError, networks.CheckpointError) as e:
        sys.exit(f"predict.py: error: {e}")
    if predictor.scale_note and not opt.camera_height:   # the ground plane gives relative depth metres
        print(predictor.scale_note)
    print(provenance.run_line(predictor.provenance, focal, opt.camera_height))   # what the depth means
    output_dir = opt.output_dir or photo_loop.default_output_dir(opt.color_path, "predict")
    out = OutputOptions.from_run(opt, predictor, camera, output_dir, "predict.py", focal)
    if opt.engine == "ray":   # the same files from a Ray Data actor pool (deployment/ray_batch.py)
        from deployment import ray_batch
        lines, error = ray_batch.predict(opt, paths, out)
    else:
        lines, error = photo_loop.predict_and_report("predict.py", paths, predictor.predict_disp, out)
    if lines:
        print("\n".join(lines))
    if error:
        sys.exit(error)


if __name__ == "__main__":
    main()
