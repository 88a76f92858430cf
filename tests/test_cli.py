"""The command line on real inputs: outputs that never overwrite each other, exit statuses, and a big job
killed midway that resumes to every input exactly once."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import facemark


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "facemark", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def inputs(data, tmp_path_factory):
    """A folder with the same file name in two folders, a video, an unreadable file and a faceless image."""
    root = tmp_path_factory.mktemp("in")
    (root / "sub").mkdir()
    shutil.copy(data / "samples/lenna.png", root / "x.png")
    shutil.copy(data / "samples/lenna.png", root / "sub" / "x.png")
    (root / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    cv2.imwrite(str(root / "blank.png"), np.full((100, 120, 3), 90, np.uint8))
    frame = cv2.imread(str(data / "samples/lenna.png"))
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, frame.shape[1::-1])
    for _ in range(3):
        writer.write(frame)
    writer.release()
    return root


def test_drawn_outputs_mirror_the_input_folders_and_videos_stay_videos(tmp_path, inputs):
    r = _cli("detect", inputs, "--draw", tmp_path / "drawn", "--json", "--quiet")
    assert r.returncode == 3                                            # an unreadable input: status 3
    assert "bad.jpg: cannot decode image" in r.stderr and "blank.png: no face found" in r.stderr
    drawn = sorted(p.relative_to(tmp_path / "drawn").as_posix() for p in (tmp_path / "drawn").rglob("*"))
    assert drawn == ["blank.png", "clip.mp4", "sub", "sub/x.png", "x.png"]
    video = cv2.VideoCapture(str(tmp_path / "drawn" / "clip.mp4"))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x.get("frame") for x in lines if "clip" in x.get("image", "")] == [0, 1, 2]
    summary = lines[4]
    assert summary["video"] == str(inputs / "clip.avi") and summary["frames"] == 3 and summary["tracks"] == 1
    assert summary["fps"] > 0
    clip = [x for x in lines if "clip" in x.get("image", "")]
    assert [x["time"] for x in clip] == [0.0, 0.2, 0.4]                   # 5 fps
    assert {f["track"] for x in clip for f in x["faces"]} == {0}          # one face, tracked through


def test_exit_statuses(tmp_path, inputs, data):
    assert _cli("detect", data / "samples/lenna.png", "--quiet").returncode == 0
    assert _cli("detect", inputs / "blank.png", "--quiet").returncode == 1
    assert _cli("detect", inputs / "bad.jpg", inputs / "x.png", "--quiet").returncode == 3
    bad = _cli("detect", inputs / "x.png", "--detector", "foo")
    assert bad.returncode == 2 and "invalid choice: 'foo'" in bad.stderr and "Traceback" not in bad.stderr
    clip = _cli("detect", inputs / "clip.avi", "--draw", tmp_path / "v.png")
    assert clip.returncode == 2 and "a video is drawn as a video" in clip.stderr and not (tmp_path / "v.png").exists()
    video = _cli("detect", inputs / "clip.avi", "--draw", tmp_path / "v.mp4", "--quiet")
    assert video.returncode == 0 and cv2.VideoCapture(str(tmp_path / "v.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 3
    same = _cli("detect", inputs / "x.png", inputs / "sub" / "x.png", "--draw", tmp_path / "d")
    assert same.returncode == 2 and "same output name" in same.stderr and not (tmp_path / "d").exists()


def test_align_keeps_relative_names_and_checks_its_size(tmp_path, inputs):
    two = tmp_path / "two"
    shutil.copytree(inputs, two, ignore=shutil.ignore_patterns("bad.jpg", "blank.png", "clip.avi"))
    r = _cli("align", two, "--out", tmp_path / "al", "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(tmp_path / "al").as_posix() for p in (tmp_path / "al").rglob("*.png")) == \
        ["sub/x_0.png", "x_0.png"]
    r = _cli("align", inputs / "x.png", "--out", tmp_path / "zero", "--size", "0")
    assert r.returncode == 2 and "--size 0" in r.stderr and not (tmp_path / "zero").exists()


def test_a_killed_job_resumes_to_every_image_exactly_once(tmp_path, data):
    folder = tmp_path / "many"
    folder.mkdir()
    for p in sorted((data / "faces68/test/ytf").glob("*.jpg"))[:120]:
        shutil.copy(p, folder / p.name)
    out = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "facemark", "detect", str(folder), "--out", str(out), "--batch", "4", "--quiet",
           "--threads", "1"]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.05)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    partial = out.read_text().count("\n")
    assert 20 <= partial < 120                               # killed midway
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert again.returncode in (0, 1), again.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    names = [r["image"] for r in records]
    assert sorted(names) == sorted(str(p) for p in folder.glob("*.jpg"))     # each once, none missing


BAD = Path(__file__).parent / "fixtures" / "bad_inputs"
# file -> (exit status, what stderr says); status 1: read, no face; 3: unreadable (README "Exit statuses")
CORPUS = {
    "empty.jpg": (3, "empty.jpg: image file is empty"),
    "truncated.jpg": (3, "truncated.jpg: cannot decode image"),
    "huge_header.png": (3, "huge_header.png: image too large: 100000x100000 pixels"),
    "jpeg_named.png": (1, "jpeg_named.png: no face found"),
    "rgba.png": (1, "rgba.png: no face found"),
    "deep16.png": (1, "deep16.png: no face found"),
    "grey.png": (1, "grey.png: no face found"),
    "one_pixel.png": (1, "one_pixel.png: no face found"),
    "cmyk.jpg": (1, "cmyk.jpg: no face found"),
    "animated.gif": (1, "animated.gif: no face found"),
    "exif_rotated.jpg": (0, ""),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_input_corpus_one_line_each(name):
    status, message = CORPUS[name]
    r = _cli("detect", BAD / name, "--json", "--quiet")
    assert r.returncode == status, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 1
    if name == "exif_rotated.jpg":                 # stored sideways, tagged upright: found upright
        rec = json.loads(r.stdout)
        assert (rec["width"], rec["height"]) == (256, 256) and len(rec["faces"]) == 1
        five = np.array(rec["faces"][0]["five"])
        assert five[:2, 1].max() < five[3:, 1].min()            # eyes above the mouth corners


def test_bad_input_corpus_writes_nothing_partial(tmp_path):
    r = _cli("detect", BAD, "--out", tmp_path / "r.jsonl", "--draw", tmp_path / "drawn", "--quiet")
    assert r.returncode == 3
    readable = sorted(n for n, (s, _) in CORPUS.items() if s != 3)
    assert sorted(Path(json.loads(x)["image"]).name for x in (tmp_path / "r.jsonl").read_text().splitlines()) \
        == readable
    assert sorted(p.stem for p in (tmp_path / "drawn").iterdir()) == sorted(Path(n).stem for n in readable)
    assert not list(tmp_path.rglob(".*.tmp*"))     # no temporary files left behind


def test_evaluate_detect_on_dlib_examples(data):
    r = _cli("evaluate-detect", data / "detect/dlib_examples/testing_with_face_landmarks.xml", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["format"] == "dlib" and rep["photos"] == 5 and rep["faces"] > 0
    assert 0.8 < rep["recall"] <= 1 and rep["recall_iou30"] >= rep["recall"] and 0 < rep["ap"] <= 1
    assert rep["landmark_faces"] > 0 and rep["landmark_nme"] < 0.15       # against dlib's own 68 points
    weights = Path(facemark.__file__).parent / "weights" / "detectors" / "facemark_det.onnx"
    strict = _cli("evaluate-detect", data / "detect/dlib_examples/testing_with_face_landmarks.xml", "--json",
                  "--weights", weights, "--min-score", "0.999")     # a candidate's weights, a threshold no face passes
    assert strict.returncode == 0, strict.stderr
    assert json.loads(strict.stdout)["recall"] < rep["recall"]
    r = _cli("evaluate-detect", data / "detect/dlib_examples/testing_with_face_landmarks.xml", "--detector", "haar",
             "--min-score", "0.5")
    assert r.returncode != 0 and r.stderr.strip().endswith("for facemark's own detectors, not haar")


def test_evaluate_pose_on_aflw2000_layout(tmp_path, data):
    for p in sorted((data / "faces3d/aflw2000").glob("*.pts"))[:25]:
        for ext in (".pts", ".jpg", ".mat"):
            shutil.copy(p.with_suffix(ext), tmp_path / p.with_suffix(ext).name)
    r = _cli("evaluate-pose", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["faces"] + rep["dropped"] == 25 and set(rep["mae"]) == {"yaw", "pitch", "roll", "mean"}
    assert 0 < rep["mae"]["mean"] < 20 and 0 < rep["nme_2d"]["all"] < 0.15 and "0-30" in rep["nme_3d_xy"]
    base = json.loads(_cli("evaluate-pose", tmp_path, "--annotations", "--json").stdout)
    assert base["nme_2d"]["all"] == 0.0 and base["model"] is None
    assert base["mae"]["mean"] < 5.0      # the 3D fit on the annotated points (the pose method alone)


def test_version_and_face_repr(data):
    import facemark

    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"facemark {facemark.__version__}"
    image = cv2.cvtColor(cv2.imread(str(data / "samples/lenna.png")), cv2.COLOR_BGR2RGB)
    face = facemark.Landmarker(threads=1).detect(image)[0]
    text = repr(face)
    assert text.startswith("Face(box=[") and "68 points" in text and "yaw=" in text and len(text) < 120


def test_models_names_the_config_of_every_shipped_model():
    """The metafile: each shipped model (landmarks and detectors) with a config that is in configs/."""
    from facemark.cli.models import shipped_models
    from facemark.inference.runtime import available_models

    rows = shipped_models()
    root = Path(__file__).resolve().parents[1]
    assert set(available_models()) <= {r["name"] for r in rows} and {"facemark_det", "mtcnn"} <= {r["name"] for r in rows}
    for r in rows:
        assert r["config"] and (root / r["config"]).is_file(), r["name"]
        assert r["validation"], r["name"]
