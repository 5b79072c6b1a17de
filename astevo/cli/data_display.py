"""The data set prepared before any work, with a progress bar while an image folder is decoded the first time."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from astevo.cli.terminal import errors
from astevo.data.prepared import PreparedData, data_line, prepare_data
from astevo.settings import FitnessSettings


def prepared_data(settings: FitnessSettings) -> PreparedData:
    """Prepare the data, showing decoding progress on stderr."""
    display = Progress(
        TextColumn("decoding images once into the cache"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    )
    task = display.add_task("decode", total=None)

    def on_progress(done: int, total: int) -> None:
        if not display.live.is_started:
            display.start()
        display.update(task, completed=done, total=total)

    try:
        data = prepare_data(settings, on_progress)
    finally:
        display.stop()
    return data


def say_data(data: PreparedData) -> None:
    """Say once what the data is and how its images were shaped."""
    errors.print(data_line(data.record()), highlight=False, soft_wrap=True, markup=False)
