from neuro_core.progress import Progress, format_duration


def test_durations_read_like_people_write_them():
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(7620) == "2 h 07 min"


def test_eta_from_the_pace_so_far():
    progress = Progress(total=4, started=0.0)
    assert progress.line().endswith("ETA unknown")
    progress.finished(ok=True)
    progress.finished(ok=False)
    import time

    progress.started = time.monotonic() - 60  # two regions took a minute
    line = progress.line()
    assert line.startswith("2/4 regions done, 1 failed, elapsed 1 min 00 s, ETA 1 min 00 s"), line
