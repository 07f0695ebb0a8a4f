"""Without a terminal the progress bar is silent and tqdm is not imported (its import costs a command 17-40 ms)."""

from __future__ import annotations

import subprocess
import sys


def test_without_a_terminal_the_bar_is_silent_and_tqdm_is_not_loaded():
    code = ("import sys; from sequencer.adapters.progress import progress_bar\n"
            "with progress_bar(10, 'read') as bar:\n"
            "    bar.update(3); bar.total = 20; bar.refresh(); bar.update()\n"
            "print(bar.n, bar.total, 'tqdm' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (done.stdout.strip(), done.stderr) == ("4 20 False", "")
