import pytest

from kakusan.cli import main


def test_unknown_option_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["tour", "--no-such-option"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unrecognized arguments" in err


def test_unknown_chapter_is_one_line_exit_2(capsys, tmp_path):
    assert main(["tour", "--chapters", "nope", "--runs-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown chapter" in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "tour" in capsys.readouterr().out


def test_ctrl_c_while_the_modules_load_is_one_line_and_status_130(capsys, monkeypatch):
    """A SIGINT that arrives while the command modules (torch among them) load is noted, not raised there (raised
    inside torch's C++ it would abort the process), and acted on once they have loaded; the handler is restored,
    and a process told to ignore SIGINT goes on ignoring it."""
    import os
    import signal

    import kakusan.cli as cli

    real = cli.build_parser

    loaded = []

    def interrupted_build():
        os.kill(os.getpid(), signal.SIGINT)  # delivered at once, to the main thread: the handler only notes it
        sum(range(1000))  # bytecodes where a raising handler would have raised
        loaded.append(True)  # the modules go on loading
        return real()

    monkeypatch.setattr(cli, "build_parser", interrupted_build)
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest-xdist's workers ignore SIGINT
    try:
        assert main(["tour", "--chapters", "nope"]) == 130  # stops before the command runs (it would say "unknown")
        assert capsys.readouterr().err.strip().splitlines() == ["kakusan: interrupted"] and loaded == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):  # after start-up Ctrl-C raises as usual (the run's own handling)
            os.kill(os.getpid(), signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        assert main(["tour", "--chapters", "nope"]) == 2  # ignored: the command runs and refuses the chapter
        assert "unknown chapter" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, saved)
