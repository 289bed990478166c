"""The one number formatter (`nbtrain.text`): metric values, columns, learning rates."""

from __future__ import annotations

import numpy as np
import pytest

from nbtrain.text import as_written, format_learning_rate, format_number, number_format


def test_a_value_has_four_significant_digits_and_no_needless_exponent():
    assert format_number(0.123456) == "0.1235"
    assert format_number(2.302585) == "2.3026"  # under 10: 4 decimals, as Keras
    assert format_number(1.0) == "1.0000" and format_number(0.0) == "0.0000"
    assert format_number(12.5) == "12.50"
    assert format_number(12345.6) == "12346"
    assert format_number(0.00123456) == "0.001235"
    assert format_number(3.2e-6) == "3.200e-06"
    assert format_number(2.5e7) == "2.500e+07"
    assert format_number(None) == "–"
    assert format_number(float("nan")) == "nan" and format_number(float("inf")) == "inf"
    assert format_number(np.float32(0.5)) == "0.5000"


def test_a_column_has_one_number_of_decimals_set_by_its_smallest_value():
    spec = number_format([2.302585, 0.4123, None, float("nan")])
    assert spec == ".4f"
    assert [format_number(v, spec) for v in (2.302585, 0.4123, 1.0)] == [
        "2.3026", "0.4123", "1.0000"]
    spec = number_format([0.9, 0.0123, 0.00098])
    assert [format_number(v, spec) for v in (0.9, 0.00098)] == ["0.9000000", "0.0009800"]
    assert number_format([3e-6, 0.5]) == ".3e"  # decades apart: scientific, all of it
    assert number_format([]) == number_format([0.0]) == ".4f"
    assert number_format([812.4], digits=3) == ".0f"
    # a loss falling from 2.3 to 0.4 keeps its format: no column changes at 1
    assert number_format([2.3]) == number_format([2.3, 0.4]) == ".4f"


@pytest.mark.parametrize("value, text", [
    (0.001, "0.001"), (0.01, "0.01"), (0.1, "0.1"), (1.0, "1"), (0.0033, "0.0033"),
    (3e-4, "3e-4"), (2.5e-4, "2.5e-4"), (1e-5, "1e-5"), (1.5e-7, "1.5e-7"), (1e7, "1e7"),
])
def test_a_learning_rate_reads_as_a_person_writes_it(value, text):
    assert format_learning_rate(value) == text
    noisy = float(np.float32(value))  # what the optimizer's float32 variable holds
    assert format_learning_rate(noisy) == text
    assert as_written(noisy) == value


def test_as_written_keeps_what_is_no_float32_noise():
    assert float(np.float32(0.001)) == 0.0010000000474974513
    assert as_written(0.0010000000474974513) == 0.001
    assert as_written(0.0012345678901) == 0.0012345678901  # a float64 the user wrote
    assert as_written(0.0) == 0.0
    assert format_learning_rate(None) == "–" and format_learning_rate(0.0) == "0"


def test_logs_in_a_line_each_metric_with_its_val_in_one_format():
    from nbtrain.text import format_logs

    logs = {"loss": 0.0123, "val_loss": 0.5, "accuracy": 1.0, "val_accuracy": 0.98,
            "size": "not a number"}
    assert format_logs(logs) == ("loss: 0.01230 - val_loss: 0.50000 - accuracy: 1.0000 - "
                                 "val_accuracy: 0.9800")
    assert format_logs(None) == ""
