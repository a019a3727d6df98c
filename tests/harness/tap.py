"""
tap.py: the few lines of TAP the Python integration tests print, so
automake's tap-driver counts every check by its sentence. The plan ("1..N")
comes last; an uncaught exception becomes "not ok" plus "Bail out!" so the
driver reports an error instead of a silent partial run.
"""

import signal
import sys
import traceback

_n = 0
_failed = 0
_failure_hooks = []


def _line(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def diag(text):
    """Prints text as TAP comment lines ("# ...")."""
    for line in str(text).splitlines() or [""]:
        _line("# " + line)


def ok(cond, name, diag_text=None):
    """One check. Returns cond as a bool so callers can stop early."""
    global _n, _failed
    _n += 1
    name = " ".join(str(name).split())
    if cond:
        _line("ok %d - %s" % (_n, name))
        return True
    _failed += 1
    _line("not ok %d - %s" % (_n, name))
    caller = traceback.extract_stack(limit=3)[0]
    diag("  failed at %s:%d" % (caller.filename, caller.lineno))
    if diag_text is not None:
        diag(diag_text)
    return False


def is_(got, want, name):
    """ok(got == want) with both values shown on failure."""
    return ok(got == want, name, "     got: %r\nexpected: %r" % (got, want))


def skip(name, reason):
    """Counts a check that could not run, as TAP's "# SKIP"."""
    global _n
    _n += 1
    _line("ok %d - %s # SKIP %s" % (_n, name, reason))


def failed():
    """How many checks have failed so far."""
    return _failed


def on_failure(hook):
    """Runs hook() once from done() or bail_out() when anything failed
    (e.g. to print the tails of the server logs while they still exist)."""
    _failure_hooks.append(hook)


def _run_failure_hooks():
    hooks = list(_failure_hooks)
    del _failure_hooks[:]
    for hook in hooks:
        try:
            hook()
        except Exception as e:  # a broken hook must not hide the result
            diag("failure hook raised %r" % (e,))


def bail_out(reason):
    """Stops the whole test: TAP drivers report it as an error."""
    global _n, _failed
    _n += 1
    _failed += 1
    reason = " ".join(str(reason).split())
    _line("not ok %d - %s" % (_n, reason))
    _run_failure_hooks()
    _line("Bail out! %s" % reason)
    sys.exit(1)


def done():
    """Prints the plan and exits: status 1 if any check failed."""
    if _failed:
        _run_failure_hooks()
    _line("1..%d" % _n)
    if _failed:
        diag("%d of %d checks failed" % (_failed, _n))
    sys.exit(1 if _failed else 0)


def _excepthook(etype, value, tb):
    diag("".join(traceback.format_exception(etype, value, tb)))
    if issubclass(etype, KeyboardInterrupt):
        reason = "interrupted"
    else:
        first = (str(value).splitlines() or [""])[0]
        reason = "%s: %s" % (etype.__name__, first)
    global _n
    _n += 1
    _line("not ok %d - uncaught exception %s" % (_n, " ".join(reason.split())))
    _run_failure_hooks()
    _line("Bail out! %s" % " ".join(reason.split())[:200])
    sys.stdout.flush()


sys.excepthook = _excepthook


class Timeout(Exception):
    pass


def watchdog(seconds):
    """Bounds the whole test file: after seconds, an exception unwinds
    (stopping every server on the way out) and the run bails out."""

    def fire(signum, frame):
        raise Timeout("test file took longer than %d s" % seconds)

    signal.signal(signal.SIGALRM, fire)
    signal.alarm(int(seconds))
