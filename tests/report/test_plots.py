from yolo_compress.report.plots import _place_labels, _plt


def test_labels_of_nearly_coinciding_points_do_not_overlap():
    """A pruned model and its INT8 copy land on almost the same spot of the accuracy-vs-latency plot."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    xs, ys = [7.20, 4.16, 4.11], [0.123, 0.123, 0.120]
    ax.scatter(xs, ys)
    ax.margins(0.15, 0.15)
    ax.autoscale_view()
    _place_labels(ax, ["baseline\n5.1 MB", "distill\n2.0 MB", "int8\n1.0 MB"], xs, ys, [30.0] * 3)
    boxes = [t.get_window_extent(fig.canvas.get_renderer()) for t in ax.texts]
    plt.close(fig)
    assert len(boxes) == 3
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
