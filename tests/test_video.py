"""Video: the One Euro filter and the face smoother, track matching, the tracker on synthetic clips (ids kept,
crossing faces, lost faces, less jitter than per frame), the video measures, and the CLI's streams."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import facemark
from facemark.core.assign import linear_assignment
from facemark.core.smoothing import FaceSmoother, OneEuroFilter
from facemark.evaluation.video import clip_scores, make_clip, pick, second_difference
from facemark.inference.tracker import Tracker
from facemark.io.datasets import read_pts_folder


def _one_euro_reference(xs: list[float], ts: list[float], min_cutoff: float, beta: float,
                        d_cutoff: float) -> list[float]:
    """Casiez et al.'s filter of a scalar signal, written out from the paper's formulas."""
    def a(fc: float, te: float) -> float:
        r = 2 * np.pi * fc * te
        return r / (r + 1)

    out, x_prev, dx_prev, t_prev = [], None, 0.0, None
    for x, t in zip(xs, ts):
        if x_prev is None:
            x_hat = x
        else:
            te = t - t_prev
            dx_hat = a(d_cutoff, te) * (x - x_prev) / te + (1 - a(d_cutoff, te)) * dx_prev
            cutoff = min_cutoff + beta * abs(dx_hat)
            x_hat = a(cutoff, te) * x + (1 - a(cutoff, te)) * x_prev
            dx_prev = dx_hat
        out.append(x_hat)
        x_prev, t_prev = x_hat, t
    return out


def test_one_euro_filter_equals_its_formula_on_a_known_signal():
    ts = list(np.cumsum(np.full(60, 1 / 30)) + np.linspace(0, 0.01, 60))   # uneven frame times
    xs = list(np.sin(np.arange(60) / 5.0) * 20 + np.where(np.arange(60) > 30, 15.0, 0.0))
    want = _one_euro_reference(xs, ts, 1.2, 0.3, 1.0)
    f = OneEuroFilter(1.2, 0.3, 1.0)
    # a point moving along x only: its speed is |dx|, so the 2D filter reduces to the scalar formula
    got = [f(np.array([[x, 5.0]]), t)[0, 0] for x, t in zip(xs, ts)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="time must increase"):
        f(np.array([[0.0, 0.0]]), ts[-1])


def _face(data: Path, k: int = 0) -> np.ndarray:
    return read_pts_folder(data / "faces68" / "test" / "ytf", 68)[k].landmarks


def test_face_smoother_follows_rigid_motion_and_stills_noise(data):
    shape = _face(data)
    rng = np.random.default_rng(0)
    t = np.arange(75) / 25.0
    # a face moving fast (4 inter-ocular distances a second) and turning: followed within 1% of its size
    iod = np.linalg.norm(shape[36] - shape[45])
    sm, worst = FaceSmoother((36, 45)), 0.0
    for k, tk in enumerate(t):
        a = np.deg2rad(10 * np.sin(tk))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        true = (shape - shape.mean(0)) @ rot.T + shape.mean(0) + [4 * iod * tk, 0]
        out = sm(true, tk)
        if k > 5:
            worst = max(worst, float(np.abs(out - true).max()) / iod)
    assert worst < 0.02
    # a still face with noise: the smoothed points shake at most half as much as the raw ones
    sm = FaceSmoother((36, 45))
    raw = [shape + rng.normal(0, 0.01 * iod, shape.shape) for _ in t]
    out = [sm(p, tk) for p, tk in zip(raw, t)]
    shake = lambda ps: np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in zip(ps[10:], ps[11:])])  # noqa: E731
    assert shake(out) < 0.5 * shake(raw)


def test_linear_assignment_is_the_cheapest_matching():
    rng = np.random.default_rng(1)
    for _ in range(60):
        r, c = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((r, c))
        pairs = linear_assignment(cost)
        assert len(pairs) == min(r, c) and len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        perms = (zip(range(r), p) for p in itertools.permutations(range(c), r)) if r <= c else \
            (zip(p, range(c)) for p in itertools.permutations(range(r), c))
        best = min(sum(cost[i, j] for i, j in p) for p in perms)
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(best)


def test_clip_scores_measure_error_jitter_and_lag():
    rng = np.random.default_rng(2)
    base = rng.uniform(100, 200, (68, 2))
    base[36], base[45] = (100, 150), (150, 150)                  # inter-ocular distance 50
    truth = np.stack([base + [3.0 * k, 0] for k in range(40)])     # 3 px a frame to the right
    offset = [p + [5.0, 0.0] for p in truth]                       # a constant error of 5 px: 10%, no jitter
    r = clip_scores(offset, truth, 25.0)
    assert r["found"] == 1 and r["nme"] == pytest.approx(0.1) and r["jitter"] == pytest.approx(0.0, abs=1e-12)
    delayed = [truth[max(k - 2, 0)] for k in range(40)]            # two frames late
    assert clip_scores(delayed, truth, 25.0)["lag_frames"] == pytest.approx(2.0)
    assert clip_scores([None] * 40, truth, 25.0)["found"] == 0
    assert second_difference(list(truth)) == pytest.approx(0.0, abs=1e-12)   # constant speed: no acceleration


@pytest.fixture(scope="module")
def lm():
    return facemark.Landmarker(threads=1)


def test_a_tracked_face_keeps_its_id_and_the_detector_rests(data, lm):
    sample = read_pts_folder(data / "faces68" / "test" / "ytf", 68)[3]
    clip = make_clip(sample, np.random.default_rng(3), frames=30)
    tracker = Tracker(lm, clip.fps, detect_every=10)
    calls = []
    detect = lm.detector.detect_points
    lm.detector.detect_points = lambda im: calls.append(1) or detect(im)
    try:
        found = [tracker.update(f) for f in clip.frames]
    finally:
        del lm.detector.detect_points
    assert all(len(f) == 1 and f[0].track == 0 for f in found)
    assert len(calls) == 3                                        # frames 0, 10, 20: tracked in between
    pred = [pick([x.landmarks for x in f], g) for f, g in zip(found, clip.truth)]
    assert clip_scores(pred, clip.truth, clip.fps)["nme"] < 0.06
    assert found[5][0].to_dict()["track"] == 0


def _canvas(faces: list[tuple[np.ndarray, np.ndarray, tuple[float, float]]], size=(720, 400)) -> np.ndarray:
    """A frame with each (image, landmarks, centre) face pasted with its landmark box's centre at ``centre``."""
    w, h = size
    frame = np.full((h, w, 3), 90, np.uint8)
    for image, pts, (cx, cy) in faces:
        box = np.concatenate([pts.min(0), pts.max(0)])
        side = 1.6 * (box[2] - box[0])
        x0, y0 = int((box[0] + box[2]) / 2 - side / 2), int((box[1] + box[3]) / 2 - side / 2)
        patch = image[max(y0, 0):y0 + int(side), max(x0, 0):x0 + int(side)]
        px, py = int(cx - patch.shape[1] / 2), int(cy - patch.shape[0] / 2)
        frame[py:py + patch.shape[0], px:px + patch.shape[1]] = patch
    return frame


def test_two_faces_crossing_keep_their_ids_and_a_lost_face_ends_its_track(data, lm):
    samples = read_pts_folder(data / "faces68" / "test" / "ytf", 68)
    a, b = samples[3], samples[40]
    ia, ib = a.load_image(), b.load_image()
    frames = [_canvas([(ia, a.landmarks, (120 + 16 * k, 130)), (ib, b.landmarks, (600 - 16 * k, 270))])
              for k in range(31)]
    tracker = Tracker(lm, 25.0, detect_every=5)
    found = [tracker.update(f) for f in frames]
    start = {f.track: f.landmarks.mean(0)[0] for f in found[0]}
    end = {f.track: f.landmarks.mean(0)[0] for f in found[-1]}
    assert len(start) == 2 and set(end) == set(start)             # the same two tracks at the end
    left, right = min(start, key=start.get), max(start, key=start.get)
    assert end[left] > end[right]                                 # each id went with its face across
    # the faces leave: after max_missed frames both tracks have ended; a face coming back gets a new id
    empty = np.full_like(frames[0], 90)
    for _ in range(tracker.max_missed + 3):
        assert tracker.update(empty) == []
    assert tracker.tracks == []
    back = tracker.update(frames[0])
    assert len(back) == 2 and {f.track for f in back} == {2, 3}


def test_a_still_face_jitters_less_tracked_than_per_frame(data, lm):
    sample = read_pts_folder(data / "faces68" / "test" / "ytf", 68)[7]
    clip = make_clip(sample, np.random.default_rng(4), frames=25, still=True)
    per = [pick([x.landmarks for x in lm.detect(f)], g) for f, g in zip(clip.frames, clip.truth)]
    tracked = [pick([x.landmarks for x in faces], g) for faces, g in zip(lm.track(clip.frames, clip.fps), clip.truth)]
    j_per, j_tr = (clip_scores(p, clip.truth, clip.fps)["jitter"] for p in (per, tracked))
    assert j_tr < 0.6 * j_per


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facemark", *map(str, args)], capture_output=True, text=True)


def test_cli_reads_sequences_and_keeps_what_a_broken_video_gave(tmp_path, data):
    image = cv2.imread(str(data / "samples" / "lenna.png"))
    seq = tmp_path / "seq"
    seq.mkdir()
    for k in (1, 2, 10):                                  # frame-number order: 1, 2, 10 (not 1, 10, 2)
        cv2.imwrite(str(seq / f"f{k}.png"), np.roll(image, 4 * k, axis=1))
    r = _cli("detect", seq, "--sequence", "--fps", "10", "--json", "--quiet")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    assert [x["time"] for x in lines[:3]] == [0.0, 0.1, 0.2] and lines[3]["frames"] == 3
    assert lines[2]["faces"][0]["box"][0] > lines[1]["faces"][0]["box"][0] + 20      # f10 came last
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, image.shape[1::-1])
    for k in range(10):
        writer.write(np.roll(image, 3 * k, axis=1))
    writer.release()
    whole = (tmp_path / "clip.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(whole[:len(whole) // 2])
    r = _cli("detect", tmp_path / "cut.avi", "--json", "--draw", tmp_path / "cut.mp4", "--quiet")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "decoding stopped after frame" in r.stderr
    assert 0 < lines[-1]["frames"] < 10 and len(lines) == lines[-1]["frames"] + 1
    assert cv2.VideoCapture(str(tmp_path / "cut.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == lines[-1]["frames"]
    r = _cli("detect", "--camera", "97", "--json", "--quiet")
    assert r.returncode == 3 and "camera:97: cannot open camera" in r.stderr
