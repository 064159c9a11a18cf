#!/usr/bin/env python3
"""Child subreaper for libvirtd (started by deploy/libvirt-up.sh).

Why: on these machines PID 1 reaps orphans 1-1.5 s late, and libvirt waits for
the QEMU process to be reaped, so `virsh destroy` took ~2 s. libvirtd -d and
the QEMU processes it double-forks are all orphans; with this process marked
PR_SET_CHILD_SUBREAPER they are re-parented to it instead of PID 1, and it
reaps them at once (destroy ~0.25 s).

What it does:
  1. prctl(PR_SET_CHILD_SUBREAPER, 1);
  2. runs each command given on the command line, in order, waiting for each
     to return (virtlogd -d and libvirtd -d daemonize: the foreground process
     returns once the daemon is up, the daemon stays our descendant);
  3. reaps every child forever (blocking wait(), so reaping is immediate);
  4. exits when the process named in --pidfile (libvirtd's) is gone, checked
     every 2 s, or when it has no children left.

Usage: subreaper.py --pidfile /run/libvirtd.pid -- virtlogd -d -- libvirtd -d
Logs (one line per event) go to stdout; libvirt-up.sh sends them to
/var/log/nubo/libvirt-subreaper.log.
"""
import ctypes
import os
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%S"), "subreaper[%d]:" % os.getpid(), msg, flush=True)


def parse(argv):
    pidfile = None
    cmds, cur = [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--pidfile" and cur is None:
            pidfile = argv[i + 1]
            i += 2
            continue
        if a == "--":
            cur = []
            cmds.append(cur)
        elif cur is None:
            sys.exit("usage: subreaper.py [--pidfile FILE] -- CMD ARGS... [-- CMD ARGS...]")
        else:
            cur.append(a)
        i += 1
    return pidfile, [c for c in cmds if c]


def alive(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def watchdog(pidfile):
    # The daemon writes its pidfile a moment after starting: give it 30 s.
    deadline = time.time() + 30
    while not alive(pidfile):
        if time.time() > deadline:
            log("%s never showed a live pid; exiting" % pidfile)
            os._exit(1)
        time.sleep(0.2)
    while alive(pidfile):
        time.sleep(2)
    log("%s: process gone; exiting" % pidfile)
    os._exit(0)


def main():
    pidfile, cmds = parse(sys.argv[1:])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno())
        sys.exit(1)
    log("subreaper set; starting %s" % " ; ".join(" ".join(c) for c in cmds))
    for cmd in cmds:
        pid = os.fork()
        if pid == 0:
            try:
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        # Wait for this foreground process; reap any other child meanwhile.
        while True:
            got, status = os.wait()
            if got == pid:
                code = os.waitstatus_to_exitcode(status)
                log("%s returned %d" % (cmd[0], code))
                if code != 0:
                    log("giving up")
                    sys.exit(1)
                break
    if pidfile:
        threading.Thread(target=watchdog, args=(pidfile,), daemon=True).start()
    reaped = 0
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            log("no children left (reaped %d); exiting" % reaped)
            return
        reaped += 1


if __name__ == "__main__":
    main()
