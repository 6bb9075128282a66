"""Runs a command in a new pseudo-terminal as an interactive shell would: a session whose
controlling terminal is the pty, led by a stand-in for the shell, which runs the command as a job
in a process group of its own, made the terminal's foreground group. Everything printed on the
terminal is copied to stdout (CRLF turned into LF).

Lines on stdin drive it:
  ctrl-c   types Ctrl+C into the terminal: the terminal sends SIGINT to the foreground process
           group, as it does for a person at a keyboard
  quit     ends the shell (as closing the terminal window would), once the job is done

When the job ends, the shell prints `exit N` on the terminal, N being what a shell's $? would
say (128 + the signal for a job killed by one), and stays, as a shell does, so that processes the
job left behind keep their terminal until `quit` (or the end of stdin).

Usage: python3 pty_run.py COMMAND [ARG...]
"""

import os
import pty
import select
import signal
import sys


def shell():
    """The session leader: runs the command as a foreground job, reports, and stays."""
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(0, os.getpgrp())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execvp(sys.argv[1], sys.argv[1:])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Both sides set the job's group, as shells do, so that neither runs ahead of it. The child
    # may have done so and exec'd already: then the kernel refuses (EACCES), and that is fine.
    try:
        os.setpgid(job, job)
    except PermissionError:
        pass
    _, status = os.waitpid(job, 0)
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    os.write(1, f"exit {code}\n".encode())
    while True:
        signal.pause()


pid, master = pty.fork()
if pid == 0:
    shell()

stdin = sys.stdin.fileno()
watched = [master, stdin]
while master in watched:
    ready, _, _ = select.select(watched, [], [])
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every process holding the terminal has ended
            data = b""
        if data:
            sys.stdout.buffer.write(data.replace(b"\r\n", b"\n"))
            sys.stdout.flush()
        else:
            watched.remove(master)
    if stdin in ready:
        line = sys.stdin.readline()
        if line.strip() == "ctrl-c":
            os.write(master, b"\x03")
        elif line == "" or line.strip() == "quit":
            watched.remove(stdin)
            os.kill(pid, signal.SIGHUP)
os.waitpid(pid, 0)
