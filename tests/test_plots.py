"""course_utils.display.plots: labels are wrapped (never cut), the colour bar is labelled, and a fit
line stays inside a bounded scale."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.display.plots import scatter_with_fit, similarity_heatmap  # noqa: E402


def test_heatmap_keeps_whole_labels_and_labels_the_colour_bar():
    labels = ["a sentence much longer than thirty characters, to be wrapped", "short"]
    ax = similarity_heatmap(np.array([[1.0, 0.2], [0.2, 1.0]]), labels)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert [s.replace("\n", " ") for s in shown] == labels and "\n" in shown[0]
    colour_bar = ax.figure.axes[-1]
    assert colour_bar.get_ylabel() == "cosine similarity"
    plt.close(ax.figure)


def test_heatmap_rejects_a_matrix_that_does_not_match_the_labels():
    with pytest.raises(ValueError, match="does not match"):
        similarity_heatmap(np.eye(3), ["a", "b"])


def test_fit_line_stays_within_y_range():
    x = np.linspace(-0.2, 1.0, 50)
    y = np.clip(5 * x, 0, 5)
    ax = scatter_with_fit(x, y, y_range=(0, 5))
    line = ax.get_lines()[0].get_ydata()
    assert line.min() >= 0 and line.max() <= 5
    assert ax.get_ylim()[0] < 0 < 5 < ax.get_ylim()[1]
    free = scatter_with_fit(x, y)                     # without y_range: the whole fitted line
    assert free.get_lines()[0].get_ydata().min() < 0
    plt.close("all")
